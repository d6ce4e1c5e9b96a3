"""Synthetic defects pasted onto good images, to measure what a recipe will catch.

Four kinds, each of a given area (pixels of the image) and contrast (grey levels, 0-255):

- ``dark_spot`` / ``bright_spot``: a filled ellipse (aspect 1-2, any angle) whose pixels are darker /
  brighter by ``contrast`` grey levels, centred where the surface has room for that change (a dark
  spot on a black background would change nothing; near the spot's edge values are still clipped
  to 0-255);
- ``scratch``: a thin, slightly curved line (width about a tenth of the square root of the area,
  at least 1 px), changed by ``contrast`` in the direction the surface has more room for (brighter
  on a dark surface, darker on a bright one);
- ``patch``: a texture/colour patch as CutPaste (Li et al. 2021) and DRAEM (Zavrtanik et al. 2021)
  make them: a blob cut out of a smoothed-noise field (DRAEM's Perlin masks), filled with the
  texture of a nearby place of the same part (the allowed region), tinted by ``contrast`` grey levels (a random colour
  direction on colour images).

Everything is drawn from a ``numpy`` generator the caller seeds, so a seed gives the same defects
(shape, place, tint) on every run. A defect is placed with its centre inside ``allowed`` (the part
or the region of interest) and is clipped to it, so its pixels never lie outside what is inspected.
Where the centre goes depends on the contrast only for the spots (room for the change); otherwise
the same generator state gives the same defect at every contrast.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

KINDS = ("dark_spot", "bright_spot", "scratch", "patch")
KIND_NAMES = {"dark_spot": "dark spots", "bright_spot": "bright spots", "scratch": "scratches",
              "patch": "texture/colour patches"}


@dataclass(frozen=True)
class PastedDefect:
    """Where a defect was pasted: ``local`` (bool) is its mask inside ``bbox`` = x, y, w, h."""

    kind: str
    area_px: float  # the area asked for
    contrast: float
    bbox: tuple[int, int, int, int]
    local: np.ndarray = field(repr=False)

    @property
    def drawn_area_px(self) -> int:
        """The pixels actually changed (the asked area, less what fell outside the allowed region)."""
        return int(self.local.sum())

    def mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """The defect's mask in an image of ``shape``."""
        full = np.zeros(shape[:2], dtype=bool)
        x, y, w, h = self.bbox
        full[y:y + h, x:x + w] = self.local
        return full


def _center(allowed: np.ndarray, radius: float, rng: np.random.Generator,
            ok: Callable[[int, int], bool] | None = None, tries: int = 256) -> tuple[int, int]:
    """A pixel of ``allowed`` (where ``ok(x, y)`` holds) whose circle of ``radius`` lies in ``allowed``
    too (tested at 8 points: the whole defect then lies inside), drawn by rejection -- cheap on a
    large image; after ``tries`` misses any pixel of ``allowed`` where ``ok`` holds, else any at all."""
    H, W = allowed.shape
    rows, cols = np.flatnonzero(allowed.any(axis=1)), np.flatnonzero(allowed.any(axis=0))
    r = min(radius, min(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) / 4)
    angles = np.arange(8) * (math.pi / 4)
    ox, oy = np.rint(r * np.cos(angles)).astype(int), np.rint(r * np.sin(angles)).astype(int)
    for _ in range(tries):
        x, y = int(rng.integers(cols[0], cols[-1] + 1)), int(rng.integers(rows[0], rows[-1] + 1))
        if not allowed[y, x] or (ok is not None and not ok(x, y)):
            continue
        px, py = x + ox, y + oy
        if px.min() >= 0 and py.min() >= 0 and px.max() < W and py.max() < H and allowed[py, px].all():
            return x, y
    ys, xs = np.nonzero(allowed)
    if ok is not None:
        good = np.array([ok(int(x), int(y)) for x, y in zip(xs[::97], ys[::97], strict=True)], dtype=bool)
        if good.any():  # a sparse look for a pixel where ok holds: enough for a fallback
            xs, ys = xs[::97][good], ys[::97][good]
    k = int(rng.integers(len(ys)))
    return int(xs[k]), int(ys[k])


def _ellipse(area: float, rng: np.random.Generator) -> np.ndarray:
    aspect = float(rng.uniform(1.0, 2.0))
    a, b = math.sqrt(area * aspect / math.pi), math.sqrt(area / (aspect * math.pi))
    angle = float(rng.uniform(0, math.pi))
    r = int(math.ceil(a)) + 1
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
    u = xx * math.cos(angle) + yy * math.sin(angle)
    v = -xx * math.sin(angle) + yy * math.cos(angle)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def _scratch(area: float, limit: int, rng: np.random.Generator) -> np.ndarray:
    width = max(1, round(math.sqrt(area) / 10))
    length = min(area / width, 0.8 * limit)
    width = max(1, round(area / length))  # long scratches on a small part get wider instead
    angle = float(rng.uniform(0, math.pi))
    bend = float(rng.uniform(-0.15, 0.15)) * length  # a slight curve, as a tool drags it
    r = int(math.ceil(length / 2 + abs(bend) + width)) + 1
    t = np.linspace(-0.5, 0.5, max(8, int(length / 4)))
    along, across = t * length, bend * (1 - 4 * t * t)
    xs = r + along * math.cos(angle) - across * math.sin(angle)
    ys = r + along * math.sin(angle) + across * math.cos(angle)
    canvas = np.zeros((2 * r + 1, 2 * r + 1), dtype=np.uint8)
    points = np.stack([xs, ys], axis=1).round().astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [points], False, 1, thickness=int(width), lineType=cv2.LINE_8)
    return canvas.astype(bool)


def _blob(area: float, rng: np.random.Generator) -> np.ndarray:
    """Exactly ``area`` pixels of a smoothed-noise field with a radial fall-off: one irregular blob."""
    r = int(math.ceil(1.6 * math.sqrt(area / math.pi))) + 2
    size = 2 * r + 1
    coarse = rng.standard_normal((5, 5)).astype(np.float32)
    noise = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    field_ = noise * 0.6 - np.hypot(xx, yy) / r * 2.0
    k = int(min(round(area), size * size))
    cut = np.partition(field_.ravel(), -k)[-k]
    return field_ >= cut


def _place(shape_mask: np.ndarray, center: tuple[int, int], allowed: np.ndarray
           ) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """``shape_mask`` centred on ``center``, clipped to the image and to ``allowed``."""
    H, W = allowed.shape
    h, w = shape_mask.shape
    x0, y0 = center[0] - w // 2, center[1] - h // 2
    cx0, cy0 = max(0, x0), max(0, y0)
    cx1, cy1 = min(W, x0 + w), min(H, y0 + h)
    local = shape_mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] & allowed[cy0:cy1, cx0:cx1]
    return (cx0, cy0, cx1 - cx0, cy1 - cy0), local


def paste_defect(image: np.ndarray, kind: str, area_px: float, contrast: float, rng: np.random.Generator,
                 allowed: np.ndarray | None = None) -> tuple[np.ndarray, PastedDefect]:
    """A copy of ``image`` (uint8, gray or RGB) with one defect of ``kind``, and where it lies.

    The generator decides shape, place and tint; ``contrast`` scales the change (and, for spots,
    limits their centre to where the surface has room for it)."""
    if kind not in KINDS:
        raise ValueError(f"unknown synthetic defect {kind!r}; use one of {', '.join(KINDS)}")
    if area_px < 1:
        raise ValueError(f"a synthetic defect needs an area of at least 1 px, got {area_px:g}")
    H, W = image.shape[:2]
    allowed = np.ones((H, W), dtype=bool) if allowed is None else allowed.astype(bool)
    if not allowed.any():
        raise ValueError("the region to place synthetic defects in is empty")
    if kind in ("dark_spot", "bright_spot"):
        shape_mask = _ellipse(area_px, rng)
    elif kind == "scratch":
        shape_mask = _scratch(area_px, min(H, W), rng)
    else:
        shape_mask = _blob(area_px, rng)
    ok = None
    if kind in ("dark_spot", "bright_spot"):
        # a dark spot on a black background changes nothing: spots are centred where the surface
        # has room for the asked change (anywhere if it has none)
        def ok(x: int, y: int) -> bool:
            grey = float(np.mean(image[y, x]))
            return grey >= contrast if kind == "dark_spot" else grey <= 255 - contrast
    center = _center(allowed, math.sqrt(area_px / math.pi), rng, ok)
    (x, y, w, h), local = _place(shape_mask, center, allowed)
    out = image.copy()
    region = out[y:y + h, x:x + w].astype(np.float32)
    pixels = region[local]  # (n,) gray or (n, C)
    if kind == "patch":
        # CutPaste: the texture of a nearby place of the part (1.5-3 blob sizes away, inside the
        # allowed region where it can be), tinted. Nearby, not anywhere: on a part with structure
        # (a bottle's rings) a far source alone would be a large change and the tint would not matter
        size = max(w, h)
        angle, dist = float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(1.5, 3.0)) * size
        scx = int(round(center[0] + dist * math.cos(angle)))
        scy = int(round(center[1] + dist * math.sin(angle)))
        if not (0 <= scx < W and 0 <= scy < H and allowed[scy, scx]):
            scx, scy = _center(allowed, 0, rng)
        sx = min(max(0, scx - w // 2), max(0, W - w))
        sy = min(max(0, scy - h // 2), max(0, H - h))
        source = image[sy:sy + h, sx:sx + w].astype(np.float32)
        if source.shape[:2] != (h, w):
            source = cv2.resize(source, (w, h), interpolation=cv2.INTER_LINEAR)
        pixels = source.reshape(region.shape)[local]
        if image.ndim == 3:
            direction = rng.uniform(0.5, 1.5, size=image.shape[2]) * rng.choice([-1.0, 1.0], size=image.shape[2])
            delta = contrast * direction / np.abs(direction).mean()
        else:
            delta = contrast * float(rng.choice([-1.0, 1.0]))
    elif kind == "dark_spot":
        delta = -contrast
    elif kind == "bright_spot":
        delta = contrast
    else:  # scratch: the direction with more room, so the contrast asked for is mostly reached
        delta = contrast if float(np.mean(pixels)) < 128 else -contrast
    region[local] = np.clip(pixels + delta, 0, 255)
    out[y:y + h, x:x + w] = region.round().astype(np.uint8)
    return out, PastedDefect(kind, float(area_px), float(contrast), (x, y, w, h), local)
