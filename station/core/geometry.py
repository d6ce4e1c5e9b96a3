"""Working geometry: how an image of any size and aspect is brought to what a detector works on, and
how the anomaly map is brought back to the image's own pixels.

Every detector declares a :class:`GeometrySpec` (in its ``DetectorInfo``): its default fit, the fits
it can use, and where its working size comes from (one of its parameters, e.g. PatchCore's
``input_size``, or -- for detectors that learn per pixel, like the variation model -- the training
images themselves). Teaching picks a :class:`Geometry` from that, the user's ``-p fit=...`` and the
training images; the recipe stores it in ``preprocessing["geometry"]`` (a recipe without one was
taught before this existed: its images go to the detector unchanged, as they always did).

The fits:

``resize``
    Every image is resized to one working size (distorting a different aspect). A detector that
    resizes internally anyway (``size_param`` declared) gets the images unchanged.
``pad``
    Resized keeping the aspect to fit the working size, the rest filled by repeating the edge pixels;
    the map is cropped back to the image area before it is resized to the original size.
``tiles``
    Cut into overlapping tiles of the working size at the image's own resolution (small images are
    padded up to one tile) and the tile maps stitched with weights that fall off towards each tile's
    border, so seams do not show. A defect of a few pixels on a large frame stays a few pixels
    instead of vanishing in a down-scale; the cost is one detector call per tile.

Regions, areas (px, mm²) and metrics are therefore always in original image pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

FITS = ("resize", "pad", "tiles")
NATIVE = "native"  # recipes taught before the geometry layer: images go to the detector unchanged
GEOMETRY_PARAMS = ("fit", "work_size", "tile_overlap")  # the -p keys that belong here, not to the detector
DEFAULT_TILE_OVERLAP = 0.25
ASPECT_TOLERANCE = 1.15  # resize: frames up to 15 % beyond the taught aspects are served
AREA_TOLERANCE = 2.0  # resize, pad: frames up to twice (half) the taught areas are served
MIN_SIDE = 8
TILE_BATCH = 16  # tiles per detector call


class GeometryError(ValueError):
    """An image (or a set) this geometry cannot serve, or a geometry option that does not apply; the
    message says what was given, what is needed and what to do."""


@dataclass(frozen=True)
class GeometrySpec:
    """What a detector declares about its working geometry."""

    default_fit: str = "resize"
    fits: tuple[str, ...] = ("resize", "pad")
    size_param: str | None = None  # detector parameter holding its input size; None: the data's median size
    why_not: str = ""  # shown when a fit outside ``fits`` is asked for


def _size_pair(value: Any, what: str) -> tuple[int, int]:
    vals = [value, value] if isinstance(value, (int, np.integer)) else list(value)
    try:
        h, w = (int(v) for v in vals)
    except (TypeError, ValueError):
        raise GeometryError(f"{what} must be one number or [height, width], got {value!r}") from None
    if min(h, w) < MIN_SIDE:
        raise GeometryError(f"{what} must be at least {MIN_SIDE} pixels, got {value!r}")
    return h, w


def _wh(shape: Sequence[int]) -> str:
    return f"{int(shape[1])}x{int(shape[0])}"


@dataclass(frozen=True)
class Geometry:
    """A chosen working geometry. ``size`` is ``(h, w)``: the resize/pad target or the tile size."""

    fit: str = NATIVE
    size: tuple[int, int] | None = None
    overlap: float = DEFAULT_TILE_OVERLAP
    delegate: bool = False  # resize left to the detector, which maps back itself
    taught: dict[str, Any] = field(default_factory=dict)  # sizes and aspects of the training images

    # --- recipe storage -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"fit": self.fit, "size": list(self.size) if self.size else None, "overlap": self.overlap,
                "delegate": self.delegate, "taught": self.taught}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Geometry:
        if not d:
            return cls()
        fit = str(d.get("fit", NATIVE))
        if fit not in (*FITS, NATIVE):
            raise GeometryError(f"unknown geometry fit {fit!r} in the recipe; this station knows {', '.join(FITS)}")
        size = d.get("size")
        return cls(fit=fit, size=_size_pair(size, "the geometry size") if size else None,
                   overlap=float(d.get("overlap", DEFAULT_TILE_OVERLAP)), delegate=bool(d.get("delegate")),
                   taught=dict(d.get("taught") or {}))

    def describe(self) -> str:
        if self.fit == NATIVE:
            return "images go to the detector at their own size"
        size = _wh(self.size) if self.size else "?"
        if self.fit == "resize":
            return f"resized to the detector's {size}" if self.delegate else f"resized to {size}"
        if self.fit == "pad":
            return f"resized keeping the aspect into {size} and padded"
        return f"cut into {size} tiles overlapping by {self.overlap:.0%}"

    # --- can this frame be served? ------------------------------------------------------------------
    def check(self, shape: Sequence[int], recipe_label: str = "the recipe") -> None:
        """Raise :class:`GeometryError` for an image shape this geometry cannot serve."""
        h, w = int(shape[0]), int(shape[1])
        if self.fit == NATIVE:
            return
        if min(h, w) < MIN_SIDE:
            raise GeometryError(f"the image is {w}x{h}; {recipe_label} needs at least {MIN_SIDE} px per side")
        aspects = self.taught.get("aspect")
        fits = self.taught.get("fits", FITS)
        sizes = self.taught.get("min"), self.taught.get("max")
        taught = "other"
        if all(sizes):
            taught = _wh(sizes[0]) if sizes[0] == sizes[1] else f"{_wh(sizes[0])} .. {_wh(sizes[1])}"
        if self.fit == "resize" and aspects:
            lo, hi = float(aspects[0]) / ASPECT_TOLERANCE, float(aspects[1]) * ASPECT_TOLERANCE
            if not lo <= w / h <= hi:
                raise GeometryError(
                    f"the image is {w}x{h} (width/height {w / h:.2f}); {recipe_label} was taught on {taught} "
                    f"images (width/height {float(aspects[0]):.2f}..{float(aspects[1]):.2f}) and resizes "
                    f"every image, which would distort this one. Crop the frame to the part (region of "
                    f"interest), or teach again with `-p fit=pad` (any aspect)"
                    + (" or `-p fit=tiles` (large frames)." if "tiles" in fits else "."))
        if self.fit in ("resize", "pad") and all(sizes):
            lo = sizes[0][0] * sizes[0][1] / AREA_TOLERANCE
            hi = sizes[1][0] * sizes[1][1] * AREA_TOLERANCE
            if not lo <= h * w <= hi:
                raise GeometryError(
                    f"the image is {w}x{h}, which differs from the taught size ({taught}) more than resizing "
                    f"can make up for: {recipe_label} would judge it at another scale. Check the camera's "
                    f"resolution and binning, or teach the part on images of this size"
                    + (" (`-p fit=tiles` keeps the pixel scale for any frame size)." if "tiles" in fits else "."))

    # --- forward and back ---------------------------------------------------------------------------
    def needs_mapping(self) -> bool:
        return self.fit in ("pad", "tiles") or (self.fit == "resize" and not self.delegate)

    def forward(self, image: np.ndarray) -> tuple[list[np.ndarray], _Plan]:
        """The working image(s) for one image and how to bring their maps back."""
        h, w = image.shape[:2]
        if not self.needs_mapping():
            return [image], _Plan((h, w), (0, 0, h, w), [])
        assert self.size is not None
        th, tw = self.size
        if self.fit == "resize":
            return [_resize(image, (th, tw))], _Plan((h, w), (0, 0, th, tw), [])
        if self.fit == "pad":
            f = min(th / h, tw / w)
            ch, cw = max(1, min(th, round(h * f))), max(1, min(tw, round(w * f)))
            top, left = (th - ch) // 2, (tw - cw) // 2
            content = _resize(image, (ch, cw))
            padded = cv2.copyMakeBorder(content, top, th - ch - top, left, tw - cw - left, cv2.BORDER_REPLICATE)
            return [padded.reshape(th, tw, *image.shape[2:])], _Plan((h, w), (top, left, ch, cw), [])
        # tiles: pad a small image up to one tile, then cut at the image's own resolution
        ph, pw = max(h, th), max(w, tw)
        canvas = image if (ph, pw) == (h, w) else cv2.copyMakeBorder(
            image, 0, ph - h, 0, pw - w, cv2.BORDER_REPLICATE).reshape(ph, pw, *image.shape[2:])
        corners = [(y, x) for y in _starts(ph, th, self.overlap) for x in _starts(pw, tw, self.overlap)]
        tiles = [np.ascontiguousarray(canvas[y:y + th, x:x + tw]) for y, x in corners]
        return tiles, _Plan((h, w), (0, 0, ph, pw), corners)

    def back(self, maps: Sequence[np.ndarray], scores: Sequence[float], plan: _Plan) -> tuple[np.ndarray, float]:
        """The map at the original image's pixels and the image score (the tiles' highest)."""
        h, w = plan.shape
        if self.fit == "tiles":
            assert self.size is not None
            m = _stitch(maps, plan.corners, (plan.box[2], plan.box[3]), self.size)[:h, :w]
            return np.ascontiguousarray(m), float(np.max(scores))
        m = np.asarray(maps[0], dtype=np.float32)
        if self.needs_mapping():
            top, left, ch, cw = plan.box
            if m.shape != tuple(self.size or m.shape):  # a detector that answered at another size
                m = cv2.resize(m, (self.size[1], self.size[0]), interpolation=cv2.INTER_LINEAR)
            m = m[top:top + ch, left:left + cw]
        if m.shape != (h, w):
            m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
        return m, float(scores[0])

    def tile_count(self, shape: Sequence[int]) -> int:
        if self.fit != "tiles" or self.size is None:
            return 1
        ph, pw = max(int(shape[0]), self.size[0]), max(int(shape[1]), self.size[1])
        return len(_starts(ph, self.size[0], self.overlap)) * len(_starts(pw, self.size[1], self.overlap))


@dataclass(frozen=True)
class _Plan:
    shape: tuple[int, int]  # the original image's (h, w)
    box: tuple[int, int, int, int]  # pad: the image's (top, left, h, w) in the working image; tiles: canvas
    corners: list[tuple[int, int]]  # tiles: (y, x) of each tile on the canvas


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    shrink = h * w < image.shape[0] * image.shape[1]
    out = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return out.reshape(h, w, *image.shape[2:])


def _starts(size: int, tile: int, overlap: float) -> list[int]:
    """Tile offsets along one side: a step of ``tile * (1 - overlap)``, spread evenly so the last tile
    ends flush with the far edge."""
    if size <= tile:
        return [0]
    step = max(1, round(tile * (1.0 - overlap)))
    n = -(-(size - tile) // step) + 1
    return [round(i * (size - tile) / (n - 1)) for i in range(n)]


def _tile_weight(size: tuple[int, int]) -> np.ndarray:
    """Highest in the tile's centre, falling linearly to a small value at its border: in an overlap the
    tile that sees a pixel with more context around it counts more."""
    def ramp(n: int) -> np.ndarray:
        x = np.arange(n, dtype=np.float32) + 0.5
        return np.clip(np.minimum(x, n - x) / (n / 2.0), 0.05, 1.0)
    return np.outer(ramp(size[0]), ramp(size[1]))


def _stitch(maps: Sequence[np.ndarray], corners: list[tuple[int, int]], canvas: tuple[int, int],
            tile: tuple[int, int]) -> np.ndarray:
    weight = _tile_weight(tile)
    total = np.zeros(canvas, dtype=np.float32)
    norm = np.zeros(canvas, dtype=np.float32)
    th, tw = tile
    for m, (y, x) in zip(maps, corners, strict=True):
        m = np.asarray(m, dtype=np.float32)
        if m.shape != tile:
            m = cv2.resize(m, (tw, th), interpolation=cv2.INTER_LINEAR)
        total[y:y + th, x:x + tw] += weight * m
        norm[y:y + th, x:x + tw] += weight
    return total / np.maximum(norm, 1e-12)


# --- choosing a geometry at teach time ------------------------------------------------------------------
def split_geometry_params(params: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(geometry options, detector parameters)`` from one ``-p`` dictionary."""
    params = dict(params or {})
    return {k: params.pop(k) for k in GEOMETRY_PARAMS if k in params}, params


def choose_geometry(spec: GeometrySpec, detector_config: dict[str, Any], shapes: Sequence[Sequence[int]],
                    options: dict[str, Any] | None = None, detector_title: str = "this detector") -> Geometry:
    """The geometry to teach with: ``options`` (``fit``, ``work_size``, ``tile_overlap``) over the
    detector's declaration; sizes not given come from its ``size_param`` or the training images."""
    options = dict(options or {})
    fit = str(options.get("fit", spec.default_fit))
    if fit not in FITS:
        raise GeometryError(f"unknown fit {fit!r}; use one of {', '.join(FITS)}")
    if fit not in spec.fits:
        raise GeometryError(f"{detector_title} cannot use fit={fit}{': ' + spec.why_not if spec.why_not else ''}; "
                            f"use {' or '.join(f'fit={f}' for f in spec.fits)}")
    overlap = float(options.get("tile_overlap", DEFAULT_TILE_OVERLAP))
    if not 0.0 <= overlap < 0.9:
        raise GeometryError(f"tile_overlap must be in [0, 0.9), got {overlap}")
    hw = np.array([[int(s[0]), int(s[1])] for s in shapes])
    aspects = hw[:, 1] / hw[:, 0]
    taught = {"min": hw.min(0).tolist(), "max": hw.max(0).tolist(),
              "aspect": [round(float(aspects.min()), 4), round(float(aspects.max()), 4)], "n": len(hw),
              "fits": list(spec.fits)}
    delegate = False
    if "work_size" in options:
        size = _size_pair(options["work_size"], "work_size")
    elif spec.size_param and detector_config.get(spec.size_param) is not None:
        size = _size_pair(detector_config[spec.size_param], spec.size_param)
        # one size throughout: the detector resizes as it always did (identical results); a mixed set
        # is resized here so the detector sees one size when it learns
        delegate = fit == "resize" and len({tuple(s) for s in hw.tolist()}) == 1
    else:
        size = tuple(int(round(v)) for v in np.median(hw, axis=0))
        if fit == "tiles":
            raise GeometryError(f"tiles need a tile size: add `-p work_size=<side>` for {detector_title}")
    return Geometry(fit=fit, size=size, overlap=overlap, delegate=delegate, taught=taught)


def size_notice(shapes: Sequence[Sequence[int]], geometry: Geometry) -> str | None:
    """One line about a set of mixed sizes (``None`` when all have one size)."""
    first = tuple(shapes[0][:2])
    other = sum(1 for s in shapes if tuple(s[:2]) != first)
    if not other:
        return None
    fits = geometry.taught.get("fits", FITS)
    others = {"pad": "`-p fit=pad` keeps their aspect", "tiles": "`-p fit=tiles` keeps their resolution"}
    hint = ", ".join(text for fit, text in others.items() if fit in fits and fit != geometry.fit)
    return (f"{other} of {len(shapes)} images have other sizes than the first ({_wh(first)}); "
            f"they are {geometry.describe()}" + (f" ({hint})" if hint else ""))


# --- the detector-prediction boundary ---------------------------------------------------------------
def to_working(images: Sequence[np.ndarray], geometry: Geometry) -> list[np.ndarray]:
    """All working images of ``images`` (for fitting): one per image, or its tiles."""
    out: list[np.ndarray] = []
    for im in images:
        out.extend(geometry.forward(im)[0])
    return out


def predict_in_geometry(predict: Callable[[list[np.ndarray]], Any], images: Sequence[np.ndarray],
                        geometry: Geometry, recipe_label: str = "the recipe") -> tuple[list[np.ndarray], list[float]]:
    """Maps at each image's own size and scores: ``predict`` (a detector's) runs on the working images."""
    for im in images:
        geometry.check(im.shape, recipe_label)
    if not geometry.needs_mapping():  # the detector's own geometry: one call per run of one size
        maps_: list[np.ndarray] = []
        scores_: list[float] = []
        start = 0
        while start < len(images):
            end = start + 1
            while end < len(images) and images[end].shape == images[start].shape:
                end += 1
            pred = predict(list(images[start:end]))
            maps_.extend(np.asarray(m, dtype=np.float32) for m in pred.anomaly_maps)
            scores_.extend(float(s) for s in pred.scores)
            start = end
        return maps_, scores_
    plans, work = [], []
    for im in images:
        tiles, plan = geometry.forward(im)
        plans.append((plan, len(work), len(tiles)))
        work.extend(tiles)
    maps: list[np.ndarray] = []
    scores: list[float] = []
    for start in range(0, len(work), TILE_BATCH):
        pred = predict(work[start:start + TILE_BATCH])
        maps.extend(pred.anomaly_maps)
        scores.extend(float(s) for s in pred.scores)
    out_maps, out_scores = [], []
    for plan, first, n in plans:
        m, s = geometry.back(maps[first:first + n], scores[first:first + n], plan)
        out_maps.append(m)
        out_scores.append(s)
    return out_maps, out_scores
