"""The variation model: per-pixel statistics of aligned good parts, and deviations from them.

The classic machine-vision detector (HALCON's ``train_variation_model`` / ``compare_variation_model``)
made robust enough for real parts:

1. **Working resolution.** Images are reduced so their longer side is ``work_side`` (256 px by
   default). The default minimum defect area (0.1 % of the image) is then still a blob of about
   9 px across, while teaching and inspection stay fast on a CPU. Maps are scaled back to the
   input resolution at the end.
2. **Features per pixel.** The colour (or gray) values after a light blur (``input_blur``), plus,
   with ``texture``, the local gradient energy (Sobel magnitude, smoothed): a change of surface
   texture -- a smear, a cloudy deposit -- shows there even when the mean colour barely moves.
3. **Alignment** (:mod:`station.detectors.alignment`): each image is brought into the pose of a
   reference by a rigid fit (coarse rotation search with phase correlation, refined by ECC), then,
   with ``local_alignment``, by a heavily smoothed optical flow that absorbs parallax and slight
   deformation but not local defects. The reference is re-estimated from the aligned mean
   (``align_passes``), so it does not depend on which image came first.
4. **Statistics** per pixel and channel, at ``levels`` scales (full, 1/2, 1/4 of the working
   resolution): mean and standard deviation, or with ``statistic="median"`` the median and the
   scaled median absolute deviation (robust when a few training images are not quite good).
   Coarse levels see large, faint defects whose single pixels stay within tolerance.
5. **Anomaly map**, in the spirit of HALCON's AbsThreshold/VarThreshold: the deviation of a pixel
   from the model, divided by ``max(std_factor * std, abs_floor)``, so that stable regions do not
   fire on sensor noise and busy regions (edges) are given their natural spread. With
   ``tolerance_px`` the deviation is measured from the *envelope* of the model -- the local min and
   max of the mean within that radius, the std's local max -- as HALCON does for a variation model
   with tolerance, so sub-pixel-to-pixel misalignment at edges costs nothing. Channels are combined
   by their root mean square, each level's map is smoothed by ``map_blur`` (in that level's
   pixels), and the levels by their maximum. A map value of 1 is "one (floored) standard deviation
   outside the tolerated range".
6. **Part mask** (``mask``): ``None`` (the whole image), ``"auto"`` (the part's silhouette from the
   mean image, Otsu + largest component, slightly dilated), polygons ``[[[x, y], ...], ...]`` or a
   boolean array -- both in the pixel coordinates of the taught images, in the pose of the first
   training image (the reference pose). The map is zero outside the mask.

The image score is the maximum of the map (as in the MVTec AD evaluation). Everything learned is
plain arrays (means, deviations, references, mask); the derived envelopes are recomputed on
load, so a saved recipe gives bit-identical maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import cv2
import numpy as np

from station.detectors.alignment import (
    ALIGN_MODES,
    RigidAligner,
    apply_flow,
    resize_gray,
    scale_transform,
    smooth_flow,
    to_gray_u8,
    warp_from_reference,
    warp_to_reference,
)
from station.detectors.base import Prediction
from station.detectors.variation_fit import VariationTeaching, resize_features
from station.detectors.variation_mask import VariationMasks, band_weight, parse_mask
from station.detectors.variation_shape import POSE_METHODS, FreeAligner
from station.detectors.variation_state import VariationState

STATISTICS = ("mean", "median")
VARIATION_ALIGN_MODES = (*ALIGN_MODES, "shape", "auto")
MIN_LEVEL_SIDE = 16  # a statistics level is not made smaller than this (pixels, longer side)


class VariationModel(VariationTeaching, VariationMasks, VariationState):
    """Variation model detector (see the module docstring for the method). Its teaching, mask and
    persistence live in ``variation_fit``, ``variation_mask`` and ``variation_state``.

    Parameters
    ----------
    work_side
        Longer side of the internal working resolution, in pixels (images are never enlarged).
    align
        ``"auto"`` (``"shape"`` for parts that turn or move freely, else ``"rigid"``; the choice is
        recorded in the recipe), ``"shape"`` (free pose: shape-based matching over the full circle,
        anywhere in the frame, a model frame around the part and an automatic part mask; see
        :mod:`station.detectors.variation_shape`), ``"rigid"`` (rotation + translation),
        ``"translation"`` or ``"none"``.
    max_rotation_deg
        Largest rotation searched for, either way, in the rigid mode (180 = any orientation); with
        ``"auto"``, parts that turn further than this get the free-pose mode.
    pose_method
        How the free-pose mode finds candidate poses: ``"shape"`` (edge-direction matching) or
        ``"moments"`` (centroid and principal axis of the segmented part; a plain background only).
    align_side
        Longer side of the images the rigid fit runs on.
    align_passes
        How often the reference is re-estimated as the mean of the aligned training images.
    local_alignment
        Refine the rigid fit with a smooth optical flow (not in the free-pose mode, see ``fit``).
    flow_sigma, flow_max_shift
        Smoothing (Gaussian sigma) and largest displacement of that flow, in working pixels.
    statistic
        ``"mean"`` (mean and standard deviation) or ``"median"`` (median and scaled MAD).
    levels
        Number of scales (each half the previous) at which statistics and deviations are computed.
    tolerance_px
        Radius (working pixels) of the envelope that tolerates small misalignment; 0 = none.
    std_factor, abs_floor
        The deviation is divided by ``max(std_factor * std, abs_floor)``; ``abs_floor`` is in gray
        levels (0..255), the floor for the most stable pixels.
    input_blur
        Gaussian sigma (working pixels) applied before everything else, against sensor noise.
    texture, texture_sigma
        Add the smoothed gradient magnitude as a feature channel, and its smoothing.
    map_blur
        Gaussian sigma of each level's map, in that level's pixels.
    mask
        ``None``, ``"auto"``, polygons or a boolean array (see the module docstring).
    """

    kind: ClassVar[str] = "variation"

    def __init__(
        self,
        work_side: int = 256,
        align: str = "auto",
        max_rotation_deg: float = 20.0,
        pose_method: str = "shape",
        align_side: int = 128,
        align_passes: int = 2,
        local_alignment: bool = True,
        flow_sigma: float = 8.0,
        flow_max_shift: float = 4.0,
        statistic: str = "mean",
        levels: int = 3,
        tolerance_px: int = 1,
        std_factor: float = 1.0,
        abs_floor: float = 2.0,
        input_blur: float = 1.0,
        texture: bool = True,
        texture_sigma: float = 2.0,
        map_blur: float = 2.0,
        mask: Any = None,
    ) -> None:
        if align not in VARIATION_ALIGN_MODES:
            raise ValueError(f"unknown alignment {align!r}; use one of {', '.join(VARIATION_ALIGN_MODES)}")
        if pose_method not in POSE_METHODS:
            raise ValueError(f"unknown pose method {pose_method!r}; use one of {', '.join(POSE_METHODS)}")
        if statistic not in STATISTICS:
            raise ValueError(f"unknown statistic {statistic!r}; use one of {', '.join(STATISTICS)}")
        if int(work_side) < MIN_LEVEL_SIDE or int(align_side) < MIN_LEVEL_SIDE:
            raise ValueError(f"work_side and align_side must be at least {MIN_LEVEL_SIDE} pixels")
        if int(levels) < 1:
            raise ValueError("levels must be at least 1")
        if int(align_passes) < 1:
            raise ValueError("align_passes must be at least 1")
        if min(float(flow_sigma), float(flow_max_shift), float(input_blur), float(texture_sigma),
               float(map_blur), float(std_factor), float(max_rotation_deg)) < 0 or int(tolerance_px) < 0:
            raise ValueError("sizes, factors and angles of the variation model must not be negative")
        if float(abs_floor) <= 0:
            raise ValueError("abs_floor must be positive (it keeps stable pixels from dividing by zero)")
        self.work_side = int(work_side)
        self.align = align
        self.max_rotation_deg = float(max_rotation_deg)
        self.pose_method = pose_method
        self.align_side = int(align_side)
        self.align_passes = int(align_passes)
        self.local_alignment = bool(local_alignment)
        self.flow_sigma = float(flow_sigma)
        self.flow_max_shift = float(flow_max_shift)
        self.statistic = statistic
        self.levels = int(levels)
        self.tolerance_px = int(tolerance_px)
        self.std_factor = float(std_factor)
        self.abs_floor = float(abs_floor)
        self.input_blur = float(input_blur)
        self.texture = bool(texture)
        self.texture_sigma = float(texture_sigma)
        self.map_blur = float(map_blur)
        self._mask_spec, self._mask_input = parse_mask(mask)
        self._reset()

    def _reset(self) -> None:
        """Forget everything learned (a cancelled teach-in leaves an untaught model, never a mix)."""
        self._channels = 3
        self._image_shape: tuple[int, int, int] | None = None  # H, W, channels (1 or 3) of taught images
        self._reference: np.ndarray | None = None  # rigid-alignment reference, align size, float32
        self._reference_u8: np.ndarray | None = None  # flow reference, work size, uint8 gray
        self._means: list[np.ndarray] = []
        self._stds: list[np.ndarray] = []
        self._mask: np.ndarray | None = None  # work size, bool, reference pose
        self._derived: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # low, high, divisor
        self._aligner: RigidAligner | None = None
        self._free: FreeAligner | None = None  # the free-pose mode's locator
        self._part_mask: np.ndarray | None = None  # free-pose mode: the part in the model frame
        self._weight: np.ndarray | float = 1.0  # free-pose mode: weight of the map (part 1, band less)
        self._align_chosen: str | None = None  # what "auto" resolved to

    @property
    def alignment(self) -> str:
        """The alignment in use: ``align``, or what ``"auto"`` chose at teach-in."""
        return self._align_chosen or self.align

    # --- geometry -----------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return self._image_shape is not None

    def _size_for(self, side: int, shape: tuple[int, int]) -> tuple[int, int]:
        """``(width, height)`` with the longer side ``side`` (never larger than the image)."""
        h, w = shape
        f = min(1.0, side / max(h, w))
        return max(1, round(w * f)), max(1, round(h * f))

    def _work_size(self, shape: tuple[int, int]) -> tuple[int, int]:
        return self._size_for(self.work_side, shape)

    def _level_sizes(self, work_size: tuple[int, int]) -> list[tuple[int, int]]:
        w, h = work_size
        sizes = [(w, h)]
        for _ in range(1, self.levels):
            pw, ph = sizes[-1]
            if max(pw, ph) // 2 < MIN_LEVEL_SIDE:
                break
            sizes.append((max(1, round(pw / 2)), max(1, round(ph / 2))))
        return sizes

    # --- features -----------------------------------------------------------------------------
    def _check_images(self, images: Sequence[np.ndarray], what: str) -> tuple[int, int, int]:
        if images is None or len(images) == 0:
            raise ValueError(f"{what} needs at least one image; got none")
        shapes: dict[tuple[int, int, int], list[int]] = {}
        for i, im in enumerate(images):
            arr = np.asarray(im)
            if arr.dtype != np.uint8:
                raise ValueError(f"image {i} has pixel type {arr.dtype}; expected uint8 (RGB or gray)")
            if arr.ndim == 3 and arr.shape[2] == 1:
                arr = arr[:, :, 0]
            if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3) or min(arr.shape[:2]) < 8:
                raise ValueError(f"image {i} has shape {arr.shape}; expected (H, W) gray or (H, W, 3) RGB, "
                                 "at least 8x8 pixels")
            shapes.setdefault((arr.shape[0], arr.shape[1], 1 if arr.ndim == 2 else 3), []).append(i)
        if len(shapes) > 1:
            desc = "; ".join(f"{w}x{h}x{c}: images {_idx(ix)}" for (h, w, c), ix in shapes.items())
            raise ValueError(f"all images of one {what} must have the same size and colour; found {desc}")
        return next(iter(shapes))

    def _work_image(self, image: np.ndarray) -> np.ndarray:
        arr = np.asarray(image)
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        size = self._work_size(arr.shape[:2])
        if (arr.shape[1], arr.shape[0]) != size:
            arr = cv2.resize(arr, size, interpolation=cv2.INTER_AREA)
        return arr

    def _features(self, work_u8: np.ndarray) -> np.ndarray:
        """``(h, w, C)`` float32: colour/gray values (blurred) and, with ``texture``, gradient energy."""
        x = work_u8.astype(np.float32)
        if x.ndim == 2:
            x = x[:, :, None]
        if self.input_blur > 0:
            x = cv2.GaussianBlur(x, (0, 0), self.input_blur).reshape(x.shape)
        if not self.texture:
            return x
        gray = x.mean(axis=2)
        energy = cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
        if self.texture_sigma > 0:
            energy = cv2.GaussianBlur(energy, (0, 0), self.texture_sigma)
        return np.concatenate([x, energy[:, :, None]], axis=2)

    def _color_channels(self) -> int:
        return self._channels

    def _align_gray(self, features: np.ndarray, align_size: tuple[int, int]) -> np.ndarray:
        return resize_gray(features[:, :, :self._color_channels()], align_size)

    def _to_reference(self, features: np.ndarray, matrix: np.ndarray, flow_target: np.ndarray | None):
        """Features in the reference pose (and the flow used, if ``flow_target`` is given)."""
        x = warp_to_reference(features, matrix)
        if flow_target is None:
            return x
        flow = smooth_flow(flow_target, to_gray_u8(x[:, :, :self._color_channels()]),
                           self.flow_sigma, self.flow_max_shift)
        return apply_flow(x, flow), flow

    def _prepare(self) -> None:
        """Derive the envelopes and divisors from the learned statistics, and the aligner."""
        r = self.tolerance_px
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)) if r > 0 else None
        self._derived = []
        for mean, std in zip(self._means, self._stds, strict=True):
            if kernel is not None:
                low = _per_channel(mean, lambda c: cv2.erode(c, kernel))
                high = _per_channel(mean, lambda c: cv2.dilate(c, kernel))
                spread = _per_channel(std, lambda c: cv2.dilate(c, kernel))
            else:
                low, high, spread = mean, mean, std
            divisor = np.maximum(self.std_factor * spread, self.abs_floor).astype(np.float32)
            self._derived.append((low, high, divisor))
        assert self._reference is not None
        if self.alignment == "shape":
            self._aligner = None  # the free-pose locator (self._free) does the alignment
            self._weight = band_weight(self._free.mask if self._free is not None else None, self._mask)
        else:
            self._aligner = RigidAligner(self._reference, self.alignment, self.max_rotation_deg)

    # --- inspection ---------------------------------------------------------------------------
    def predict(self, images: Sequence[np.ndarray]) -> Prediction:
        """Anomaly maps (``(N, H, W)`` float32, the input resolution) and scores (map maxima)."""
        if not self.is_fitted:
            raise RuntimeError("the variation model is not taught yet: call fit() or load a recipe")
        assert self._image_shape is not None and (self._aligner is not None or self._free is not None)
        shape = self._check_images(images, "inspection")
        # the free-pose mode finds the part in a frame of any size (at the taught scale)
        same = shape[2] == self._image_shape[2] if self._free is not None else shape == self._image_shape
        if not same:
            h, w, c = self._image_shape
            raise ValueError(f"images are {shape[1]}x{shape[0]} with {shape[2]} channel(s) but the model was "
                             f"taught on {w}x{h} with {c} channel(s)")
        h, w = shape[:2]
        maps = np.empty((len(images), h, w), dtype=np.float32)
        for i, im in enumerate(images):
            maps[i] = self._anomaly_map(im)
        scores = maps.reshape(len(images), -1).max(axis=1).astype(np.float64)
        return Prediction(anomaly_maps=maps, scores=scores)

    def _anomaly_map(self, image: np.ndarray) -> np.ndarray:
        if self._free is not None:
            return self._free_pose_map(image)
        assert self._aligner is not None and self._image_shape is not None
        h, w = self._image_shape[:2]
        features = self._features(self._work_image(image))
        ref_h, ref_w = self._aligner.reference.shape
        fit = self._aligner.estimate(self._align_gray(features, (ref_w, ref_h)))
        matrix = scale_transform(fit.matrix, features.shape[1] / ref_w, features.shape[0] / ref_h)
        x = self._to_reference(features, matrix, self._reference_u8)
        flow = None
        if self._reference_u8 is not None:
            x, flow = x
        amap = self._deviation(x)
        if self._mask is not None:
            amap = np.where(self._mask, amap, 0.0).astype(np.float32)
        if flow is not None:
            amap = apply_flow(amap, flow, inverse=True)
        amap = warp_from_reference(amap, matrix)
        if amap.shape != (h, w):
            amap = cv2.resize(amap, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.maximum(amap, 0.0)

    def _free_pose_map(self, image: np.ndarray) -> np.ndarray:
        """Free pose: locate the part, cut it into the model frame, compare there, map back."""
        assert self._free is not None
        arr = np.asarray(image)
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        framing = self._free.framing
        loc = self._free.locate(arr)
        inside = framing.valid(arr.shape[:2], loc.matrix)
        frame = self._free.normalise(framing.crop(arr, loc.matrix), inside)
        x = self._to_reference(self._features(frame), np.eye(2, 3, dtype=np.float32), self._reference_u8)
        flow = None
        if self._reference_u8 is not None:
            x, flow = x
        amap = self._deviation(x)
        # no verdict on what lies outside the image; the band around the part counts less and less
        amap = (amap * np.where(inside, self._weight, 0.0)).astype(np.float32)
        if flow is not None:
            amap = apply_flow(amap, flow, inverse=True)
        return np.maximum(framing.back(amap, loc.matrix, arr.shape[:2]), 0.0)

    def _deviation(self, x: np.ndarray) -> np.ndarray:
        """The multi-level deviation map (working resolution, reference pose)."""
        h, w = x.shape[:2]
        out = None
        for low, high, divisor in self._derived:
            lh, lw = low.shape[:2]
            xl = x if (lh, lw) == (h, w) else resize_features(x, (lw, lh))
            d = np.maximum(np.maximum(xl - high, low - xl), 0.0) / divisor
            d = np.sqrt((d * d).mean(axis=2)).astype(np.float32)
            if self.map_blur > 0:
                d = cv2.GaussianBlur(d, (0, 0), self.map_blur)
            if (lh, lw) != (h, w):
                d = cv2.resize(d, (w, h), interpolation=cv2.INTER_LINEAR)
            out = d if out is None else np.maximum(out, d)
        assert out is not None
        return out

    def mean_image(self) -> np.ndarray:
        """The learned mean part (reference pose) as a ``uint8`` image at the taught resolution
        (free pose: the model frame): what a user draws a part mask on."""
        if not self.is_fitted:
            raise RuntimeError("the variation model is not taught yet")
        assert self._image_shape is not None
        h, w, c = self._image_shape
        if self._free is not None:
            h = w = self._free.framing.side
        mean = np.clip(np.rint(self._means[0][:, :, :c]), 0, 255).astype(np.uint8)
        mean = cv2.resize(mean, (w, h), interpolation=cv2.INTER_LINEAR)
        return mean if c == 3 else mean.reshape(h, w)

    def part_mask(self) -> np.ndarray | None:
        """Where the model inspects: its part mask (bool, at the taught resolution, reference pose),
        or ``None`` for the whole image -- also in free pose, where the part moves in the image.
        Used to place synthetic defects on the part (``station.core.detectability``)."""
        if not self.is_fitted or self._mask is None or self._free is not None:
            return None
        assert self._image_shape is not None
        h, w = self._image_shape[:2]
        return cv2.resize(self._mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0


# --- helpers ----------------------------------------------------------------------------------
def _idx(ix: list[int]) -> str:
    return ", ".join(str(i) for i in ix[:5]) + (" ..." if len(ix) > 5 else "")


def _per_channel(x: np.ndarray, op) -> np.ndarray:
    return np.stack([op(np.ascontiguousarray(x[:, :, c])) for c in range(x.shape[2])], axis=2)
