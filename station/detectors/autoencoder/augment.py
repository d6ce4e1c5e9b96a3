"""Training samples drawn from good images, with the augmentation of the MVTec AD paper.

- Objects: the whole image at the network's input size, randomly translated and rotated, and
  mirrored where the part allows it (``mirror``), with reflected borders.
- Textures: square patches cut at a random position and a random rotation from the image at its
  working size; the rotated patch always lies inside the image where the image is large enough.

Everything is numpy + OpenCV and driven by one ``numpy.random.Generator``, so a seed fixes the
sample stream exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

MIRROR_MODES = ("none", "horizontal", "vertical", "both")


@dataclass(frozen=True)
class Augmentation:
    """``max_rotation_deg``: rotations are uniform in ``[-max, +max]`` degrees; ``max_shift``: objects
    are shifted by up to this fraction of the image side in x and y; ``mirror``: which flips (each
    with probability 1/2) keep the part a good part."""

    max_rotation_deg: float = 15.0
    max_shift: float = 0.05
    mirror: str = "none"

    def __post_init__(self) -> None:
        if self.mirror not in MIRROR_MODES:
            raise ValueError(f"unknown mirror mode {self.mirror!r}; use one of {', '.join(MIRROR_MODES)}")
        if not 0 <= self.max_rotation_deg <= 180:
            raise ValueError(f"max_rotation_deg must lie in [0, 180]; got {self.max_rotation_deg}")
        if not 0 <= self.max_shift < 0.5:
            raise ValueError(f"max_shift must lie in [0, 0.5); got {self.max_shift}")


def _flip(sample: np.ndarray, mirror: str, rng: np.random.Generator) -> np.ndarray:
    if mirror in ("horizontal", "both") and rng.random() < 0.5:
        sample = sample[:, ::-1]
    if mirror in ("vertical", "both") and rng.random() < 0.5:
        sample = sample[::-1]
    return np.ascontiguousarray(sample)


def object_samples(
    images: Sequence[np.ndarray], n: int, aug: Augmentation, rng: np.random.Generator
) -> np.ndarray:
    """``n`` augmented copies of randomly chosen ``images`` (all ``(S, S[, C])`` uint8), as
    ``(n, S, S, C)`` uint8."""
    out = []
    for _ in range(n):
        im = images[int(rng.integers(len(images)))]
        h, w = im.shape[:2]
        angle = rng.uniform(-aug.max_rotation_deg, aug.max_rotation_deg)
        tx, ty = rng.uniform(-aug.max_shift, aug.max_shift, size=2) * (w, h)
        m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), float(angle), 1.0)
        m[:, 2] += (tx, ty)
        s = cv2.warpAffine(im, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        out.append(_as_hwc(_flip(s, aug.mirror, rng)))
    return np.stack(out)


def texture_patches(
    images: Sequence[np.ndarray], n: int, patch: int, aug: Augmentation, rng: np.random.Generator,
    border: int = cv2.BORDER_REFLECT_101,
) -> np.ndarray:
    """``n`` randomly placed, randomly rotated ``patch`` x ``patch`` crops of ``images``, as
    ``(n, patch, patch, C)`` uint8. ``border`` (an OpenCV border mode) only matters for images too
    small to hold a rotated patch."""
    out = []
    half = (patch - 1) / 2.0
    for _ in range(n):
        im = images[int(rng.integers(len(images)))]
        h, w = im.shape[:2]
        theta = math.radians(rng.uniform(-aug.max_rotation_deg, aug.max_rotation_deg))
        cos, sin = math.cos(theta), math.sin(theta)
        # The rotated patch fits inside a circle of this radius around its centre.
        r = half * (abs(cos) + abs(sin))
        cx = rng.uniform(r, w - 1 - r) if w - 1 > 2 * r else (w - 1) / 2.0
        cy = rng.uniform(r, h - 1 - r) if h - 1 > 2 * r else (h - 1) / 2.0
        # Maps patch coordinates to image coordinates (used with WARP_INVERSE_MAP).
        m = np.array([[cos, -sin, cx - cos * half + sin * half],
                      [sin, cos, cy - sin * half - cos * half]], dtype=np.float64)
        s = cv2.warpAffine(im, m, (patch, patch), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=border, borderValue=0)
        out.append(_as_hwc(_flip(s, aug.mirror, rng)))
    return np.stack(out)


def _as_hwc(a: np.ndarray) -> np.ndarray:
    return a[:, :, None] if a.ndim == 2 else a
