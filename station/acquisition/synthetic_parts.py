"""A freely lying synthetic part: a screw drawn procedurally at any angle and anywhere in the frame.

The demo washer (:mod:`station.acquisition.synthetic`) sits in a fixture; this part does not. Each
screw lies at a random angle over the full circle and at a random position (often close to the image
border), under a light whose level and direction change from part to part, on a plain or a textured
background, with a soft shadow. The screw itself varies slightly (thread phase, length, surface
grain), as real screws do. Defects and their exact masks:

``scratch``         a thin bright or dark line on the head or the shaft
``spot``            a dark pit or a bright nick with an irregular outline
``missing_thread``  a stretch of the thread worn flat (crests gone from the outline, ridges gone)
``broken_tip``      the point broken off

Everything is a pure function of ``(seed, index)``. Images are gray ``uint8`` (as the screw of MVTec
AD); masks are ``True`` where a defect covers at least half of the pixel.

>>> screw = SyntheticScrew(seed=0, size=256, background="textured")
>>> train = screw.good_images(40)
>>> sample = screw.render(1000, defect="missing_thread")   # image, mask, label, pose
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from station.acquisition.synthetic import GOOD, CoverageCanvas, SyntheticSample, write_mvtec

SCREW_DEFECTS = ("scratch", "spot", "missing_thread", "broken_tip")
BACKGROUNDS = ("plain", "textured")

# Geometry of the screw at 256 px (part coordinates: u along the axis from head to tip, v across).
_HEAD = (-60.0, -40.0, 16.0)  # u from, u to, half-width
_SHAFT = (-40.0, 46.0)  # u range of the threaded shaft; the tip runs from its end to _TIP
_TIP = 60.0
_CORE, _CREST = 6.5, 2.5  # half-width of the shaft core and height of a thread crest
_PITCH, _SLANT = 6.0, 0.35  # thread pitch (px) and the slant of the crest lines across the shaft


def _tri(phase: np.ndarray) -> np.ndarray:
    """A triangle wave in 0..1 with period 1 (1 at the crest)."""
    return 1.0 - 2.0 * np.abs(phase - np.floor(phase) - 0.5)


class SyntheticScrew(CoverageCanvas):
    """A procedurally drawn screw lying freely in the frame.

    Parameters
    ----------
    seed
        Selects the lot: the same seed and index always give the same image and mask.
    size
        Image side in pixels (square); the geometry scales with it.
    background
        ``"plain"`` or ``"textured"`` (a fixed, strongly structured surface the screw lies on).
    """

    def __init__(self, seed: int = 0, size: int = 256, background: str = "plain") -> None:
        if not 96 <= int(size) <= 2048:
            raise ValueError(f"synthetic screw size must be 96..2048 pixels, not {size}")
        if background not in BACKGROUNDS:
            raise ValueError(f"unknown background {background!r}; use one of {', '.join(BACKGROUNDS)}")
        super().__init__(size)
        self.seed = int(seed)
        self.scale = self.size / 256.0
        self.background = background
        lot = np.random.default_rng([self.seed, 0x5C2E])
        S, s = self.size, self.scale
        base = np.full((S, S), 0.72, np.float32)
        if background == "textured":  # a woven / grainy surface: fine grain plus coarse blotches
            grain = cv2.GaussianBlur(lot.standard_normal((S, S)).astype(np.float32), (0, 0), 0.8 * s)
            blotch = cv2.GaussianBlur(lot.standard_normal((S, S)).astype(np.float32), (0, 0), 6.0 * s)
            weave = np.sin(self._xx * (2 * math.pi / (9 * s))) * np.sin(self._yy * (2 * math.pi / (9 * s)))
            base += 0.05 * grain / grain.std() + 0.06 * blotch / blotch.std() + 0.03 * weave
        else:
            grain = cv2.GaussianBlur(lot.standard_normal((S, S)).astype(np.float32), (0, 0), 2.0 * s)
            base += 0.01 * grain / grain.std()
        self._background = base.astype(np.float32)

    # --- public API ---------------------------------------------------------------------------------
    def render(self, index: int = 0, defect: str | None = None) -> SyntheticSample:
        """Screw number ``index``; ``defect`` is ``None`` (good), one of :data:`SCREW_DEFECTS` or
        ``"random"``."""
        rng = np.random.default_rng([self.seed, int(index)])
        defect_rng = np.random.default_rng([self.seed, int(index), 2])
        if defect == "random":
            defect = SCREW_DEFECTS[int(defect_rng.integers(len(SCREW_DEFECTS)))]
        if defect is not None and defect not in SCREW_DEFECTS:
            raise ValueError(f"unknown defect {defect!r}; use one of {', '.join(SCREW_DEFECTS)} or 'random'")
        return self._render(rng, defect_rng, defect)

    def good_images(self, n: int, start: int = 0) -> list[np.ndarray]:
        return [self.render(start + i).image for i in range(n)]

    # --- drawing ------------------------------------------------------------------------------------
    def _render(self, rng: np.random.Generator, drng: np.random.Generator, defect: str | None) -> SyntheticSample:
        S, s = self.size, self.scale
        angle = float(rng.uniform(0.0, 360.0))
        theta = math.radians(angle)
        c, sn = math.cos(theta), math.sin(theta)
        # the whole screw stays in view, but it may come within two pixels of the border
        ex = abs(c) * _TIP * s + abs(sn) * _HEAD[2] * s
        ey = abs(sn) * _TIP * s + abs(c) * _HEAD[2] * s
        cx = float(rng.uniform(ex + 2, S - ex - 2))
        cy = float(rng.uniform(ey + 2, S - ey - 2))
        dx, dy = self._xx - cx, self._yy - cy
        u = (c * dx + sn * dy) / s  # image -> part coordinates, in 256-px units
        v = (-sn * dx + c * dy) / s
        phase0 = float(rng.normal(0.0, 0.06))  # the thread starts a little differently on every screw
        stretch = float(1.0 + rng.normal(0.0, 0.004))
        u = u / stretch

        def to_image(pu: np.ndarray, pv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            pu, pv = pu * stretch * s, pv * s
            return c * pu - sn * pv + cx, sn * pu + c * pv + cy

        tip = _TIP
        flat = np.zeros_like(u)  # 1 where the thread is worn flat
        if defect == "broken_tip":
            tip = _TIP - float(drng.uniform(8.0, 12.0))
        elif defect == "missing_thread":
            u0 = float(drng.uniform(_SHAFT[0] + 6, _SHAFT[1] - 22))
            length = float(drng.uniform(3.0, 4.5)) * _PITCH
            flat = (np.clip(u - u0 + 0.5, 0, 1) * np.clip(u0 + length - u + 0.5, 0, 1)).astype(np.float32)
        good_cover, shade = self._screw(u, v, _TIP, np.zeros_like(u), phase0)
        cover = good_cover
        if defect in ("broken_tip", "missing_thread"):
            cover, worn = self._screw(u, v, tip, flat, phase0)
            shade = worn if defect == "missing_thread" else shade
        grain = cv2.GaussianBlur(rng.standard_normal((S, S)).astype(np.float32), (0, 0), 1.2 * s)
        shade = shade + 0.015 * grain / max(float(grain.std()), 1e-6)  # surface grain of this screw
        mask = np.zeros((S, S), bool)
        defects = []
        if defect == "broken_tip":
            mask = (good_cover >= 0.5) & (cover < 0.5)
        elif defect == "missing_thread":
            mask = (flat >= 0.5) & (np.abs(v) <= _CORE + _CREST) & ((good_cover >= 0.5) | (cover >= 0.5))
        elif defect in ("scratch", "spot"):
            for _attempt in range(20):
                alpha, change = self._surface_defect(defect, drng, to_image)
                dmask = (alpha >= 0.5) & (good_cover >= 0.5)
                if dmask.sum() >= 12 * s * s:
                    break
            shade = shade + change * alpha
            mask = dmask
        if defect is not None:
            ys, xs = np.nonzero(mask)
            defects.append({"type": defect,
                            "bbox": [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1],
                            "area_px": int(mask.sum())})

        gain = float(rng.uniform(0.82, 1.15))
        ldir = float(rng.uniform(0, 2 * math.pi))
        light = gain * (1.0 + 0.08 * (dx * math.cos(ldir) + dy * math.sin(ldir)) / (S / 2))
        shadow = cv2.GaussianBlur(cover, (0, 0), 3.0 * s)
        shadow = np.roll(shadow, (round(2 * s), round(2 * s)), axis=(0, 1))
        bg = self._background * (1.0 - 0.25 * shadow)
        image = (cover * shade + (1.0 - cover) * bg) * light
        image = image + rng.normal(0.0, 0.008, image.shape).astype(np.float32)
        image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return SyntheticSample(image=image, mask=mask, label=defect or GOOD, defects=defects,
                               pose={"x": cx, "y": cy, "angle": angle, "gain": gain})

    def _screw(self, u: np.ndarray, v: np.ndarray, tip: float, flat: np.ndarray,
               phase0: float) -> tuple[np.ndarray, np.ndarray]:
        """Coverage and shade (0..1) of the screw in part coordinates."""
        h0, h1, hw = _HEAD
        # head: a rounded box, domed (brighter in its middle)
        qu = np.abs(u - (h0 + h1) / 2) - (h1 - h0) / 2 + 3.0
        qv = np.abs(v) - hw + 3.0
        sdf = np.hypot(np.maximum(qu, 0), np.maximum(qv, 0)) + np.minimum(np.maximum(qu, qv), 0) - 3.0
        head = np.clip(0.5 - sdf, 0, 1)
        # shaft: the outline has the thread's crests; the tip tapers to a point
        edge_phase = (u + _SLANT * np.sign(v) * _CORE) / _PITCH + phase0
        half = _CORE + _CREST * _tri(edge_phase) * (1.0 - flat)
        half = half * np.clip((tip - u) / (_TIP - _SHAFT[1]), 0.0, 1.0)
        shaft = np.clip(half - np.abs(v) + 0.5, 0, 1) * np.clip(u - h1 + 1.5, 0, 1) * np.clip(tip - u + 0.5, 0, 1)
        cover = np.maximum(head, shaft).astype(np.float32)
        across = np.clip(1.0 - (v / (_CORE + _CREST)) ** 2, 0.0, 1.0)
        ridges = 0.10 * np.cos(2 * math.pi * ((u + _SLANT * v) / _PITCH + phase0)) * (1.0 - flat)
        shaft_shade = 0.22 + 0.22 * np.sqrt(across) + ridges
        dome = np.clip(1.0 - ((u - (h0 + h1) / 2) / 12.0) ** 2 - (v / hw) ** 2, 0.0, 1.0)
        head_shade = 0.25 + 0.25 * np.sqrt(dome)
        slot = np.clip(1.6 - np.abs(u - (h0 + h1) / 2), 0, 1) * (np.abs(v) < hw - 4)
        head_shade = head_shade - 0.12 * slot
        shade = np.where(head >= shaft, head_shade, shaft_shade)
        return cover, shade.astype(np.float32)

    def _surface_defect(self, kind: str, rng: np.random.Generator, to_image) -> tuple[np.ndarray, float]:
        """Coverage of a scratch or spot somewhere on the screw and its change of shade."""
        s = self.scale
        on_head = rng.random() < 0.3
        if on_head:
            pu, pv = rng.uniform(_HEAD[0] + 4, _HEAD[1] - 4), rng.uniform(-_HEAD[2] + 5, _HEAD[2] - 5)
        else:
            pu, pv = rng.uniform(_SHAFT[0] + 4, _SHAFT[1]), rng.uniform(-_CORE + 2, _CORE - 2)
        if kind == "scratch":
            length = rng.uniform(10, 22)
            ang = rng.uniform(-0.5, 0.5) if not on_head else rng.uniform(0, math.pi)
            t = np.linspace(-0.5, 0.5, 12)
            bend = rng.uniform(-0.2, 0.2) * length
            cu = pu + t * length * math.cos(ang) - (1 - 4 * t * t) * bend * math.sin(ang)
            cv_ = pv + t * length * math.sin(ang) * (0.4 if not on_head else 1.0)
            xs, ys = to_image(cu, cv_)
            alpha = self._polyline_coverage(xs, ys, rng.uniform(0.9, 1.3) * s)
            return alpha, float(rng.choice([-1.0, 1.0]) * rng.uniform(0.22, 0.3))
        radius = rng.uniform(2.8, 4.5)
        alpha = self._blob_coverage(rng, to_image, pu, pv, radius * s, lobes=3, roughness=0.3)
        return alpha, float(rng.choice([-0.25, 0.3]))


def export_screws_mvtec(root: str | Path, seed: int = 0, size: int = 256, background: str = "plain",
                        n_train: int = 40, n_test_good: int = 20, n_per_defect: int = 8) -> Path:
    """Write screws as an MVTec AD style category (``train/good``, ``test/<type>``,
    ``ground_truth/<type>/NNN_mask.png``) for ``station train/eval``. Returns ``root``."""
    return write_mvtec(root, SyntheticScrew(seed=seed, size=size, background=background), SCREW_DEFECTS,
                       n_train, n_test_good, n_per_defect)
