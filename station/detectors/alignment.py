"""Aligning part images to a reference pose: a rigid fit plus an optional smooth local refinement.

Rigid fit (:func:`estimate_rigid`)
    1. **Coarse search** at a small resolution (``coarse_side``): the image is rotated over a grid
       of angles covering ``±max_rotation_deg`` and, for each angle, the translation and its
       confidence come from FFT phase correlation against the reference. Phase correlation is
       insensitive to global brightness changes and finds shifts of any size in one step; the
       angle grid is fine enough (about one pixel of arc at the part's rim) that the next step
       starts inside its basin of convergence.
    2. **Refinement** with OpenCV's ECC (``findTransformECC``, Euclidean or translation motion) at
       ``align_side``: sub-pixel, and robust to gain/offset changes because ECC maximises a
       normalised correlation. ECC alone only converges from near the answer; the coarse search
       gives it that start. If ECC does not converge, the coarse estimate is kept.

   A feature-based fit (ORB + RANSAC) was not chosen: many inspected parts (turned, moulded,
   glass) have few repeatable corners, and a dense, intensity-based fit uses every pixel.
   OpenCV's ``phaseCorrelate`` is not used either: in OpenCV 5.0 it returned different answers
   for repeated calls with identical inputs, so phase correlation is done here with numpy's FFT.

Local refinement (:func:`smooth_flow`)
    Real parts are not perfectly rigid in the image: a tilted bottle's rim and base shift by
    different amounts (parallax), so after the rigid fit edges still disagree by one to a few
    pixels. A dense optical flow (Farnebäck) to the reference, **heavily smoothed and clipped**,
    removes such slow, smooth distortions but cannot "explain away" a local defect, which would
    need a sharp, large displacement.

Conventions: a transform ``W`` is a ``2x3`` float32 matrix mapping *reference* coordinates to
*image* coordinates, so ``warp_to_reference(image, W)`` = ``image(W·x)`` lies in the reference
pose and ``warp_from_reference(map, W)`` takes a map computed there back to the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

AlignMode = Literal["rigid", "translation", "none"]
ALIGN_MODES: tuple[str, ...] = ("rigid", "translation", "none")

_ECC_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 60, 1e-5)
RIVAL_SEPARATION_DEG = 15.0  # coarse maxima closer than this are one pose


@dataclass(frozen=True)
class RigidFit:
    """A rigid transform (reference -> image coordinates) and how well it fits."""

    matrix: np.ndarray  # (2, 3) float32
    angle_deg: float  # rotation of the image relative to the reference (counter-clockwise)
    shift: tuple[float, float]  # x, y translation of the transform
    correlation: float  # ECC correlation coefficient (or phase-correlation peak if ECC failed)
    refined: bool  # False if ECC did not converge and the coarse estimate was kept


def _h3(m: np.ndarray) -> np.ndarray:
    return np.vstack([np.asarray(m, dtype=np.float64), [0.0, 0.0, 1.0]])


def scale_transform(matrix: np.ndarray, fx: float, fy: float) -> np.ndarray:
    """The same transform expressed on images scaled by ``(fx, fy)``."""
    s = np.diag([fx, fy, 1.0])
    return (s @ _h3(matrix) @ np.linalg.inv(s))[:2].astype(np.float32)


def identity_transform() -> np.ndarray:
    return np.eye(2, 3, dtype=np.float32)


def _hann(h: int, w: int) -> np.ndarray:
    return np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)


class PhaseCorrelator:
    """FFT phase correlation against one fixed reference (its spectrum is computed once)."""

    def __init__(self, reference: np.ndarray) -> None:
        ref = np.asarray(reference, dtype=np.float32)
        self.shape = ref.shape
        self._window = _hann(*ref.shape)
        self._ref_spectrum = np.conj(np.fft.rfft2((ref - ref.mean()) * self._window))

    def shift(self, image: np.ndarray) -> tuple[float, float, float]:
        """``(dx, dy, peak)`` such that ``image(x) ≈ reference(x - (dx, dy))``; ``peak`` (0..1) is
        the height of the correlation peak, a confidence."""
        img = np.asarray(image, dtype=np.float32)
        cross = np.fft.rfft2((img - img.mean()) * self._window) * self._ref_spectrum
        cross /= np.abs(cross) + 1e-12
        corr = np.fft.irfft2(cross, s=self.shape)
        iy, ix = np.unravel_index(int(np.argmax(corr)), corr.shape)
        h, w = corr.shape

        def vertex(cm: float, c0: float, cp: float) -> float:  # parabola through three samples
            d = cm - 2.0 * c0 + cp
            return 0.0 if d >= 0 else 0.5 * (cm - cp) / d

        c0 = float(corr[iy, ix])
        y = iy + vertex(float(corr[(iy - 1) % h, ix]), c0, float(corr[(iy + 1) % h, ix]))
        x = ix + vertex(float(corr[iy, (ix - 1) % w]), c0, float(corr[iy, (ix + 1) % w]))
        if y > h / 2:
            y -= h
        if x > w / 2:
            x -= w
        return float(x), float(y), c0


def _resize_gray(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Float32 gray at ``size`` = ``(width, height)``, lightly smoothed (alignment ignores fine noise)."""
    g = image if image.ndim == 2 else image.mean(axis=2)
    g = cv2.resize(np.asarray(g, dtype=np.float32), size, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(g, (0, 0), 1.0)


def coarse_angle_step(side: int) -> float:
    """Angle grid step (degrees) that moves a point on a circle of radius ``side / 2`` by about
    1.5 pixels: fine enough for ECC to converge from the nearest grid angle."""
    return math.degrees(1.5 / max(4.0, side / 2.0))


class RigidAligner:
    """Estimates the rigid pose of images relative to one reference image.

    Parameters
    ----------
    reference
        The reference (gray, float32) at the alignment resolution.
    mode
        ``"rigid"`` (rotation + translation), ``"translation"`` or ``"none"``.
    max_rotation_deg
        Largest rotation searched, either way (``180`` = any orientation).
    coarse_side
        Longer side of the images used for the coarse angle search.
    """

    def __init__(self, reference: np.ndarray, mode: AlignMode = "rigid", max_rotation_deg: float = 20.0,
                 coarse_side: int = 64) -> None:
        if mode not in ALIGN_MODES:
            raise ValueError(f"unknown alignment mode {mode!r}; use one of {', '.join(ALIGN_MODES)}")
        self.reference = np.ascontiguousarray(reference, dtype=np.float32)
        self.mode = mode
        self.max_rotation_deg = float(min(180.0, max(0.0, max_rotation_deg)))
        h, w = self.reference.shape
        f = min(1.0, coarse_side / max(h, w))
        self._coarse_size = (max(8, round(w * f)), max(8, round(h * f)))
        self._coarse_scale = (self._coarse_size[0] / w, self._coarse_size[1] / h)
        self._coarse = PhaseCorrelator(_resize_gray(self.reference, self._coarse_size))
        if mode == "rigid" and self.max_rotation_deg > 0:
            step = coarse_angle_step(max(self._coarse_size))
            n = max(1, math.ceil(self.max_rotation_deg / step))
            angles = np.linspace(-self.max_rotation_deg, self.max_rotation_deg, 2 * n + 1)
            if self.max_rotation_deg >= 180.0:
                angles = angles[:-1]  # -180 and +180 are the same
            self._angles = angles
        else:
            self._angles = np.zeros(1)

    def estimate(self, image: np.ndarray) -> RigidFit:
        """The transform taking reference coordinates to ``image`` coordinates (``image`` gray,
        float32, at the reference's size)."""
        img = np.asarray(image, dtype=np.float32)
        if img.shape != self.reference.shape:
            raise ValueError(f"image {img.shape} and alignment reference {self.reference.shape} differ in size")
        if self.mode == "none":
            return RigidFit(identity_transform(), 0.0, (0.0, 0.0), 1.0, True)
        small = _resize_gray(img, self._coarse_size)
        cw, ch = self._coarse_size
        centre = ((cw - 1) / 2.0, (ch - 1) / 2.0)
        found = []
        for angle in self._angles:
            rot = cv2.getRotationMatrix2D(centre, float(angle), 1.0)
            rotated = small if angle == 0 else cv2.warpAffine(small, rot, (cw, ch), borderMode=cv2.BORDER_REPLICATE)
            dx, dy, peak = self._coarse.shift(rotated)
            found.append((peak, float(angle), dx, dy))
        best: RigidFit | None = None
        for peak, angle, dx, dy in self._candidates(found):
            # rotated(x) = image(R^-1 x) and reference(x) ≈ rotated(x + d): W = R^-1 · T(d)
            rot = _h3(cv2.getRotationMatrix2D(centre, angle, 1.0))
            coarse = (np.linalg.inv(rot) @ np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1.0]]))[:2]
            fit = self._refine(img, scale_transform(coarse, 1.0 / self._coarse_scale[0],
                                                    1.0 / self._coarse_scale[1]), peak)
            if best is None or (fit.refined, fit.correlation) > (best.refined, best.correlation):
                best = fit
        assert best is not None
        return best

    def _candidates(self, found: list[tuple[float, float, float, float]]) -> list[tuple[float, float, float, float]]:
        """The best coarse pose, plus up to two other local maxima over the angle, at least
        ``RIVAL_SEPARATION_DEG`` away, that come close to it: parts with a near-symmetry (a ring light
        on a round part) can have rival poses whose coarse scores are too close to call, so ECC
        decides between them. Nearby maxima are the same pose and not refined twice."""
        n = len(found)
        peaks = [f[0] for f in found]
        order = sorted(range(n), key=lambda i: -peaks[i])
        best = order[0]
        chosen = [best]
        wrap = self.max_rotation_deg >= 180.0
        for i in order[1:]:
            if len(chosen) == 3 or peaks[i] < 0.6 * peaks[best]:
                break
            left, right = i - 1, i + 1
            if wrap:
                left, right = left % n, right % n
            # an end of a limited range is no rival: the score there still rises towards angles
            # that are not allowed
            is_local_max = all(0 <= j < n and peaks[j] <= peaks[i] for j in (left, right))
            apart = [abs(self._angles[i] - self._angles[c]) for c in chosen]
            if wrap:
                apart = [min(a, 360.0 - a) for a in apart]
            if is_local_max and min(apart) >= RIVAL_SEPARATION_DEG:
                chosen.append(i)
        return [found[i] for i in chosen]

    def _refine(self, img: np.ndarray, matrix: np.ndarray, peak: float) -> RigidFit:
        motion = cv2.MOTION_EUCLIDEAN if self.mode == "rigid" else cv2.MOTION_TRANSLATION
        refined, correlation = False, float(peak)
        # OpenCV's Euclidean ECC keeps the angle as asin(sin θ), so it cannot represent |θ| > 90°:
        # for large rotations the image is first turned back by the coarse angle and ECC refines the
        # small remainder; the two transforms are composed afterwards.
        coarse_angle = math.degrees(math.atan2(-float(matrix[1, 0]), float(matrix[0, 0])))
        pre = None
        target, start = img, matrix
        if abs(coarse_angle) > 45.0:
            h, w = img.shape
            pre = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), coarse_angle, 1.0)
            target = warp_to_reference(img, pre)  # target(y) = img(pre · y)
            start = (np.linalg.inv(_h3(pre)) @ _h3(matrix))[:2].astype(np.float32)
        try:
            cc, ecc = cv2.findTransformECC(self.reference, target, start.copy(), motion, _ECC_CRITERIA, None, 1)
            # ECC can wander off on a featureless or heavily damaged part: keep it only near the start
            if np.all(np.isfinite(ecc)) and np.abs(ecc[:, 2] - start[:, 2]).max() < 0.1 * max(img.shape):
                if pre is not None:
                    ecc = (_h3(pre) @ _h3(ecc))[:2]
                matrix, correlation, refined = ecc.astype(np.float32), float(cc), True
        except cv2.error:
            pass
        angle_deg = math.degrees(math.atan2(-float(matrix[1, 0]), float(matrix[0, 0])))
        return RigidFit(matrix, angle_deg, (float(matrix[0, 2]), float(matrix[1, 2])), correlation, refined)


def warp_to_reference(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``image`` resampled into the reference pose (same size; borders replicated)."""
    h, w = image.shape[:2]
    out = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(image.shape)


def warp_from_reference(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """A map computed in the reference pose, resampled back into the image's pose."""
    h, w = image.shape[:2]
    out = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(image.shape)


def smooth_flow(reference: np.ndarray, image: np.ndarray, sigma: float, max_shift: float,
                window: int = 31) -> np.ndarray:
    """A smooth displacement field ``f`` (``(H, W, 2)`` float32, pixels) with
    ``image(x + f(x)) ≈ reference(x)``: Farnebäck optical flow, Gaussian-smoothed with ``sigma`` and
    clipped to ``max_shift`` pixels. Inputs are ``uint8`` gray of one size."""
    flow = cv2.calcOpticalFlowFarneback(reference, image, None, 0.5, 3, int(window) | 1, 3, 7, 1.5, 0)
    if sigma > 0:
        flow = cv2.GaussianBlur(flow, (0, 0), sigma)
    length = np.sqrt(flow[..., 0] ** 2 + flow[..., 1] ** 2)
    flow *= np.minimum(1.0, max_shift / np.maximum(length, 1e-6))[..., None]
    return flow.astype(np.float32)


def apply_flow(image: np.ndarray, flow: np.ndarray, inverse: bool = False) -> np.ndarray:
    """``image(x + f(x))`` (into the reference pose), or with ``inverse`` ``image(x - f(x))``, the
    approximate way back for a smooth, small field."""
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    s = -1.0 if inverse else 1.0
    out = cv2.remap(image, xs + s * flow[..., 0], ys + s * flow[..., 1], cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(image.shape)


def to_gray_u8(image: np.ndarray) -> np.ndarray:
    """Gray ``uint8`` of an RGB/gray float or integer image (for the optical flow)."""
    g = image if image.ndim == 2 else image[..., :3].mean(axis=2)
    return np.clip(np.rint(g), 0, 255).astype(np.uint8)


def resize_gray(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Float32 gray at ``size`` = ``(width, height)``, lightly smoothed: the alignment input."""
    return _resize_gray(image, size)
