"""Finding a freely lying part: its pose over the full circle and its position anywhere in the frame.

Two ways to get candidate poses, both followed by the same sub-pixel ECC refinement
(:func:`refine_ecc`):

**Shape-based matching** (:class:`ShapeModel`, the default), in the spirit of HALCON's
``find_shape_model`` (Steger 2002): the model is a set of edge points of the taught part, each with
its gradient direction. The score of a pose is the mean, over the model points, of the dot product of
the model direction with the *normalised* image gradient at the transformed point -- 1 for a perfect
match, independent of the light level and of contrast (edges count by direction, not strength),
lowered in proportion where the part is occluded or runs out of the frame, and near zero on clutter,
whose gradient directions are random. The search runs over an image pyramid: on the coarsest level
every angle of the full circle (at a step of about one pixel of arc at the part's rim) and every
position is scored at once (the score of all positions for one angle is two correlations of the
normalised gradient components with the rotated model, ``cv2.filter2D``); the best distinct
candidates are then followed down the pyramid, each level searching angle and position around the
previous estimate at its own finer step.

**Contour moments** (:func:`moment_candidates`): the centroid and principal axis of the segmented
part give the position and the angle modulo 180 degrees; both directions are candidates. Faster,
but it needs a clean segmentation (a plain, contrasting background) and an elongated part: the axis
of a round or square part is undefined, and a textured background or a shadow shifts the centroid.

Rotational symmetry: a part that looks (nearly) the same after a turn has several poses with (nearly)
the same coarse score. All candidates within a margin of the best are refined by ECC on the gray
values inside the part mask, which sees the small asymmetric details (a notch, a mark, the thread's
slant) that the coarse edge score may blur, and the candidate with the best fine correlation wins.
A truly symmetric part gives identical aligned images for each of its equivalent poses, so whichever
wins, the model does not smear.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

_ECC_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-5)
TOP_RADIUS_PX = 14.0  # the coarsest pyramid level keeps the part's radius at least this large
MAX_LEVELS = 5


@dataclass(frozen=True)
class Pose:
    """Where a model's origin lies in an image (pixels), its rotation, and the match score (0..1).

    A model point at offset ``o`` from the model origin lies at ``(x, y) + R(angle) o`` in the image,
    with ``R(a) = [[cos a, -sin a], [sin a, cos a]]`` in image coordinates (y down).
    """

    x: float
    y: float
    angle_deg: float
    score: float


def rotation(angle_deg: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


def _gradients(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = cv2.GaussianBlur(np.asarray(gray, np.float32), (0, 0), 1.0)
    return cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)


class _Level:
    """The model at one pyramid level: point offsets from the origin and unit gradient directions."""

    def __init__(self, gray: np.ndarray, region: np.ndarray, origin: tuple[float, float],
                 max_points: int, rng: np.random.Generator) -> None:
        gx, gy = _gradients(gray)
        mag = np.hypot(gx, gy)
        inside = region & (mag > 0)
        if not inside.any():
            raise ValueError("the free-pose alignment found no part with edges in the training images; "
                             "check the images or teach with -p align=rigid")
        strong = float(np.percentile(mag[inside], 95))
        picked = inside & (mag >= 0.25 * strong)
        ys, xs = np.nonzero(picked)
        if len(xs) > max_points:  # a deterministic, spatially even subset
            keep = np.sort(rng.choice(len(xs), max_points, replace=False))
            ys, xs = ys[keep], xs[keep]
        m = mag[ys, xs]
        self.offsets = np.stack([xs - origin[0], ys - origin[1]], axis=1).astype(np.float64)
        self.directions = np.stack([gx[ys, xs] / m, gy[ys, xs] / m], axis=1).astype(np.float64)
        self.contrast = float(np.median(m))  # the soft floor of the image gradient normalisation
        self.radius = float(np.hypot(*self.offsets.T).max()) if len(xs) else 1.0
        self.angle_step = math.degrees(1.0 / max(self.radius, 4.0))

    def normalised_gradient(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The image gradient divided by its (softly floored) magnitude: direction, not strength."""
        gx, gy = _gradients(gray)
        norm = np.sqrt(gx * gx + gy * gy + (0.2 * self.contrast) ** 2)
        return gx / norm, gy / norm

    def rotated(self, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
        r = rotation(angle_deg)
        return self.offsets @ r.T, self.directions @ r.T

    def score_map(self, nx: np.ndarray, ny: np.ndarray, angle_deg: float) -> np.ndarray:
        """The score of every origin position for one angle: two correlations with sparse kernels."""
        off, d = self.rotated(angle_deg)
        half = int(math.ceil(np.abs(off).max())) + 1
        k = 2 * half + 1
        kx = np.zeros((k, k), np.float32)
        ky = np.zeros((k, k), np.float32)
        ix = np.rint(off[:, 0]).astype(int) + half
        iy = np.rint(off[:, 1]).astype(int) + half
        np.add.at(kx, (iy, ix), d[:, 0])
        np.add.at(ky, (iy, ix), d[:, 1])
        score = cv2.filter2D(nx, -1, kx, anchor=(half, half), borderType=cv2.BORDER_CONSTANT)
        score += cv2.filter2D(ny, -1, ky, anchor=(half, half), borderType=cv2.BORDER_CONSTANT)
        return score / len(off)

    def scores_at(self, nx: np.ndarray, ny: np.ndarray, angles: np.ndarray, xs: np.ndarray,
                  ys: np.ndarray) -> np.ndarray:
        """Scores ``(len(angles), len(xs))`` of the origin at the given positions (sub-pixel)."""
        out = np.empty((len(angles), len(xs)), np.float32)
        for i, a in enumerate(angles):
            off, d = self.rotated(float(a))
            mx = (xs[:, None] + off[None, :, 0]).astype(np.float32)
            my = (ys[:, None] + off[None, :, 1]).astype(np.float32)
            sx = cv2.remap(nx, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
            sy = cv2.remap(ny, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
            out[i] = (sx * d[None, :, 0] + sy * d[None, :, 1]).mean(axis=1)
        return out


class ShapeModel:
    """Edge-direction model of a part, found at any angle and position (see the module docstring).

    Parameters
    ----------
    template
        Gray image of the part (float32 or uint8).
    region
        Boolean mask of the part in ``template`` (edges outside it are not part of the model);
        ``None`` = the whole template.
    origin
        The model's reference point in ``template`` pixels (poses say where it lies).
    max_points
        Most edge points per pyramid level (more cost time, not accuracy, beyond a few hundred).
    """

    def __init__(self, template: np.ndarray, region: np.ndarray | None, origin: tuple[float, float],
                 max_points: int = 500) -> None:
        gray = np.asarray(template, np.float32)
        if gray.ndim != 2:
            raise ValueError("the shape model needs a gray template")
        region = np.ones(gray.shape, bool) if region is None else np.asarray(region, bool)
        if region.shape != gray.shape:
            raise ValueError("the shape model's region and template differ in size")
        self.template, self.region, self.origin = gray, region, (float(origin[0]), float(origin[1]))
        # the outline's edges lie on the region border: take a little of the outside too
        region = cv2.dilate(region.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        rng = np.random.default_rng(0)
        self.levels: list[_Level] = []
        ox, oy = origin
        for k in range(MAX_LEVELS):
            f = 0.5 ** k
            level = _Level(gray, region, ((ox + 0.5) * f - 0.5, (oy + 0.5) * f - 0.5),
                           max_points, rng)
            self.levels.append(level)
            if level.radius / 2 < TOP_RADIUS_PX or min(gray.shape) < 32:
                break
            gray = cv2.pyrDown(gray)
            region = cv2.resize(region.astype(np.uint8), (gray.shape[1], gray.shape[0]),
                                interpolation=cv2.INTER_NEAREST) > 0

    def find(self, image: np.ndarray, max_candidates: int = 4, angle_range: float = 180.0,
             min_score: float = 0.2) -> list[Pose]:
        """The best distinct poses of the model in ``image`` (gray, any size), best first.

        ``angle_range``: rotations searched either way (180 = the full circle). Candidates that
        differ in angle by at least 10 degrees or in position by a quarter of the part's radius are
        distinct -- so the rival poses of a symmetric part are all returned."""
        pyramid = [np.asarray(image, np.float32)]
        for _ in range(1, len(self.levels)):
            pyramid.append(cv2.pyrDown(pyramid[-1]))
        grads = [lv.normalised_gradient(im) for lv, im in zip(self.levels, pyramid, strict=True)]
        top = self.levels[-1]
        nx, ny = grads[-1]
        step = top.angle_step
        full = angle_range >= 180.0
        n = max(1, math.ceil(angle_range / step))
        angles = np.linspace(-angle_range, angle_range, 2 * n + 1)[:-1] if full else \
            np.linspace(-angle_range, angle_range, 2 * n + 1) if angle_range > 0 else np.zeros(1)
        found = []
        for a in angles:
            smap = top.score_map(nx, ny, float(a))
            peaks = (smap >= cv2.dilate(smap, np.ones((5, 5), np.uint8))) & (smap >= min_score)
            for y, x in zip(*np.nonzero(peaks), strict=True):
                found.append((float(smap[y, x]), float(a), float(x), float(y)))
        found.sort(reverse=True)
        chosen: list[tuple[float, float, float, float]] = []
        for cand in found:
            if len(chosen) >= 2 * max_candidates or cand[0] < 0.7 * found[0][0]:
                break
            if all(_angle_gap(cand[1], c[1]) >= 10.0 or math.hypot(cand[2] - c[2], cand[3] - c[3])
                   >= 0.25 * top.radius for c in chosen):
                chosen.append(cand)
        refined = [self._refine(grads, a, x, y, step) for _, a, x, y in chosen]
        refined.sort(key=lambda p: -p.score)
        distinct: list[Pose] = []
        for p in refined:
            if all(_angle_gap(p.angle_deg, q.angle_deg) >= 10.0 or math.hypot(p.x - q.x, p.y - q.y)
                   >= 0.25 * self.levels[0].radius for q in distinct):
                distinct.append(p)
        return distinct[:max_candidates]

    def _refine(self, grads: list[tuple[np.ndarray, np.ndarray]], angle: float, x: float, y: float,
                step: float) -> Pose:
        """Follow one coarse candidate down the pyramid; sub-pixel and sub-step at the finest level."""
        score = 0.0
        for k in range(len(self.levels) - 1, -1, -1):
            level = self.levels[k]
            if k < len(self.levels) - 1:
                x, y = 2 * x + 0.5, 2 * y + 0.5  # pixel centres of the finer level
            nx, ny = grads[k]
            fine = level.angle_step
            span = step if k < len(self.levels) - 1 else 0.0
            n = max(1, math.ceil(span / fine))
            angles = angle + np.linspace(-n, n, 2 * n + 1) * fine if span > 0 else np.array([angle])
            for reach in (2, 1):  # hill-climb position at this level's angle grid
                gx, gy = np.meshgrid(np.arange(-reach, reach + 1) + x, np.arange(-reach, reach + 1) + y)
                s = level.scores_at(nx, ny, angles, gx.ravel(), gy.ravel())
                ia, ip = np.unravel_index(int(np.argmax(s)), s.shape)
                angle, x, y, score = float(angles[ia]), float(gx.ravel()[ip]), float(gy.ravel()[ip]), float(s[ia, ip])
                angles = angle + np.array([-1.0, 0.0, 1.0]) * fine
            step = fine
        # sub-pixel / sub-step: parabola through the neighbours of the finest maximum
        level = self.levels[0]
        nx, ny = grads[0]
        d = np.array([-1.0, 0.0, 1.0])
        sx = level.scores_at(nx, ny, np.array([angle]), x + d, np.full(3, y))[0]
        sy = level.scores_at(nx, ny, np.array([angle]), np.full(3, x), y + d)[0]
        sa = level.scores_at(nx, ny, angle + d * step, np.array([x]), np.array([y]))[:, 0]
        x += _vertex(sx)
        y += _vertex(sy)
        angle += _vertex(sa) * step
        angle = (angle + 180.0) % 360.0 - 180.0
        return Pose(x, y, angle, score)


def _vertex(s: np.ndarray) -> float:
    d = float(s[0] - 2 * s[1] + s[2])
    return 0.0 if d >= 0 else float(np.clip(0.5 * (s[0] - s[2]) / d, -0.5, 0.5))


def _angle_gap(a: float, b: float) -> float:
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


# --- segmentation and moments ---------------------------------------------------------------------
def background_model(grays: list[np.ndarray]) -> np.ndarray | None:
    """What the scene looks like without the part: the per-pixel median of images in which the part
    lies in different places (``None`` for fewer than 6 images). A fixed textured surface is learned
    exactly; a pixel the part covers in most images is not background-like, which the caller checks."""
    if len(grays) < 6:
        return None
    idx = np.linspace(0, len(grays) - 1, min(len(grays), 25)).round().astype(int)
    return np.median(np.stack([np.asarray(grays[i], np.float32) for i in idx]), axis=0).astype(np.float32)


def foreground_mask(gray: np.ndarray, background: np.ndarray | None = None) -> np.ndarray | None:
    """The part in one image: pixels that differ from the background -- the ``background`` model
    (scaled to this image's light level) or, without one, the median seen along the image border --
    split by Otsu on the smoothed difference; largest component, holes filled. ``None`` if no part
    stands out."""
    g = np.asarray(gray, np.float32)
    h, w = g.shape
    side = max(h, w)
    sigma = max(1.0, 0.008 * side)
    g = cv2.GaussianBlur(g, (0, 0), sigma)
    if background is not None:
        bg = cv2.GaussianBlur(np.asarray(background, np.float32), (0, 0), sigma)
        gain = float(np.median(g / np.maximum(bg, 1.0)))
        diff = np.abs(g - gain * bg)
        spread = 1.4826 * float(np.median(np.abs(diff - np.median(diff)))) + 1.0
        base = float(np.median(diff))
    else:
        b = max(2, round(0.02 * side))
        ring = np.concatenate([g[:b].ravel(), g[-b:].ravel(), g[:, :b].ravel(), g[:, -b:].ravel()])
        med = float(np.median(ring))
        spread = 1.4826 * float(np.median(np.abs(ring - med))) + 1.0
        diff = np.abs(g - med)
        base = 0.0
    top = max(float(diff.max()), 1e-6)
    d8 = np.clip(diff * (255.0 / top), 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(d8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    thr = max(otsu * top / 255.0, base + 3.0 * spread)
    part = (diff > thr).astype(np.uint8)
    part = cv2.morphologyEx(part, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(part, connectivity=8)
    if n <= 1:
        return None
    region = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    flood = np.pad(1 - region, 1, constant_values=1)
    cv2.floodFill(flood, None, (0, 0), 2)
    region = flood[1:-1, 1:-1] != 2
    if region.sum() < 16 or region.mean() > 0.9:
        return None
    return region


def part_masks(grays: list[np.ndarray]) -> list[np.ndarray | None]:
    """The part in each of a set of images of a freely lying part: from the background model where
    that gives a consistent part size, else from the border's background."""
    bg = background_model(grays)
    border = [foreground_mask(g) for g in grays]
    if bg is None:
        return border
    modelled = [foreground_mask(g, bg) for g in grays]
    areas = [int(m.sum()) for m in modelled if m is not None]
    if len(areas) < len(grays) // 2:
        return border
    typical = float(np.median(areas))
    return [m if m is not None and 0.6 * typical <= m.sum() <= 1.6 * typical else b
            for m, b in zip(modelled, border, strict=True)]


def centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


def moment_candidates(mask: np.ndarray) -> list[Pose]:
    """Two poses from the segmented part's centroid and principal axis (both directions of the
    axis); angles relative to the image axes, scores 0 (ECC decides)."""
    m = cv2.moments(mask.astype(np.uint8), binaryImage=True)
    if m["m00"] <= 0:
        return []
    x, y = m["m10"] / m["m00"], m["m01"] / m["m00"]
    axis = 0.5 * math.degrees(math.atan2(2 * m["mu11"], m["mu20"] - m["mu02"]))
    return [Pose(x, y, axis, 0.0), Pose(x, y, (axis + 360.0) % 360.0 - 180.0, 0.0)]


# --- sub-pixel refinement -------------------------------------------------------------------------
def refine_ecc(reference: np.ndarray, frame: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, float]:
    """The small Euclidean correction ``D`` (reference frame -> ``frame`` coordinates) that best
    aligns ``frame`` to ``reference`` by ECC on the gray values inside ``mask``, and its
    correlation. ``(identity, -1)`` if ECC fails or wanders off (a damaged or absent part)."""
    ident = np.eye(2, 3, dtype=np.float32)
    m = None if mask is None else mask.astype(np.uint8)
    try:
        cc, d = cv2.findTransformECC(np.asarray(reference, np.float32), np.asarray(frame, np.float32),
                                     ident.copy(), cv2.MOTION_EUCLIDEAN, _ECC_CRITERIA, m, 3)
    except cv2.error:
        return ident, -1.0
    if not np.all(np.isfinite(d)) or np.abs(d[:, 2]).max() > 0.08 * max(frame.shape) or abs(d[1, 0]) > 0.2:
        return ident, -1.0
    return d.astype(np.float32), float(cc)


def masked_correlation(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None) -> float:
    """Normalised cross-correlation of two gray images inside ``mask``."""
    sel = np.ones(a.shape, bool) if mask is None else mask
    x, y = a[sel].astype(np.float64), b[sel].astype(np.float64)
    x -= x.mean()
    y -= y.mean()
    den = math.sqrt(float((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / den) if den > 0 else 0.0
