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

import logging
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import cv2
import numpy as np

from station.core.progress import CancelToken, ProgressCallback, checkpoint, report
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

log = logging.getLogger(__name__)

STATISTICS = ("mean", "median")
MIN_LEVEL_SIDE = 16  # a statistics level is not made smaller than this (pixels, longer side)
_MAD_TO_STD = 1.4826  # scales the median absolute deviation to a standard deviation (Gaussian data)


class VariationModel:
    """Variation model detector (see the module docstring for the method).

    Parameters
    ----------
    work_side
        Longer side of the internal working resolution, in pixels (images are never enlarged).
    align
        ``"rigid"`` (rotation + translation), ``"translation"`` or ``"none"``.
    max_rotation_deg
        Largest rotation searched for, either way (180 = any orientation).
    align_side
        Longer side of the images the rigid fit runs on.
    align_passes
        How often the reference is re-estimated as the mean of the aligned training images.
    local_alignment
        Refine the rigid fit with a smooth optical flow.
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
        align: str = "rigid",
        max_rotation_deg: float = 20.0,
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
        if align not in ALIGN_MODES:
            raise ValueError(f"unknown alignment {align!r}; use one of {', '.join(ALIGN_MODES)}")
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
        self._mask_spec, self._mask_input = _parse_mask(mask)
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

    def _level_sizes(self, shape: tuple[int, int]) -> list[tuple[int, int]]:
        w, h = self._work_size(shape)
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

    # --- fitting ------------------------------------------------------------------------------
    def fit(
        self,
        images: Sequence[np.ndarray],
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> dict[str, Any]:
        """Learn the model from good images (all of one size). Reports progress per image in the
        stages ``"aligning"`` and ``"learning"``; stops with ``Cancelled`` at any image."""
        t0 = time.perf_counter()
        shape = self._check_images(images, "teach-in")
        if len(images) < 2:
            raise ValueError("the variation model needs at least 2 good images (20 or more recommended)")
        n = len(images)
        h, w, channels = shape
        if self._mask_spec == "array" and self._mask_input is not None and self._mask_input.shape != (h, w):
            mh, mw = self._mask_input.shape
            raise ValueError(f"the mask is {mw}x{mh} but the images are {w}x{h}")
        self._reset()
        self._channels = channels
        work_size = self._work_size((h, w))
        align_size = self._size_for(min(self.align_side, max(work_size)), (work_size[1], work_size[0]))
        fx, fy = work_size[0] / align_size[0], work_size[1] / align_size[1]

        total = n * (self.align_passes + 1)
        done = 0
        work: list[np.ndarray] = []
        grays: list[np.ndarray] = []
        for im in images:
            checkpoint(cancel)
            wi = self._work_image(im)
            work.append(wi)
            grays.append(self._align_gray(self._features(wi), align_size))

        # 1. rigid poses; the reference becomes the mean of the aligned images
        reference = grays[0]
        fits = []
        for _ in range(self.align_passes):
            aligner = RigidAligner(reference, self.align, self.max_rotation_deg)
            fits = []
            acc = np.zeros_like(reference, dtype=np.float64)
            for g in grays:
                checkpoint(cancel)
                fit = aligner.estimate(g)
                fits.append(fit)
                acc += warp_to_reference(g, fit.matrix)
                done += 1
                report(progress, "aligning", done, total)
            reference = (acc / n).astype(np.float32)
        matrices = [scale_transform(f.matrix, fx, fy) for f in fits]

        # 2. the flow target: the rigidly aligned mean at working resolution
        flow_target = None
        if self.local_alignment:
            acc = np.zeros((work_size[1], work_size[0]), dtype=np.float64)
            for wi, m in zip(work, matrices, strict=True):
                acc += to_gray_u8(warp_to_reference(self._features(wi)[:, :, :channels], m))
            flow_target = to_gray_u8(acc / n)

        # 3. statistics of the aligned features at every level
        level_sizes = self._level_sizes((h, w))
        robust = self.statistic == "median"
        stacks: list[list[np.ndarray]] = [[] for _ in level_sizes]
        sums = [None] * len(level_sizes)
        sq_sums = [None] * len(level_sizes)
        gray_acc = np.zeros((work_size[1], work_size[0]), dtype=np.float64)
        flow_shift = []
        for wi, m in zip(work, matrices, strict=True):
            checkpoint(cancel)
            x = self._to_reference(self._features(wi), m, flow_target)
            if flow_target is not None:
                x, flow = x
                flow_shift.append(float(np.sqrt((flow ** 2).sum(axis=2)).max()))
            gray_acc += x[:, :, :channels].mean(axis=2)
            for k, size in enumerate(level_sizes):
                xl = _resize(x, size)
                if robust:
                    stacks[k].append(xl)
                else:
                    xd = xl.astype(np.float64)
                    sums[k] = xd if sums[k] is None else sums[k] + xd
                    sq_sums[k] = xd * xd if sq_sums[k] is None else sq_sums[k] + xd * xd
            done += 1
            report(progress, "learning", done, total)

        means, stds = [], []
        for k in range(len(level_sizes)):
            if robust:
                stack = np.stack(stacks[k])
                mean = np.median(stack, axis=0)
                std = _MAD_TO_STD * np.median(np.abs(stack - mean), axis=0)
                stacks[k] = []
            else:
                mean = sums[k] / n
                std = np.sqrt(np.maximum(sq_sums[k] / n - mean * mean, 0.0))
            means.append(mean.astype(np.float32))
            stds.append(std.astype(np.float32))
        self._means, self._stds = means, stds
        mean_gray = (gray_acc / n).astype(np.float32)
        self._reference = resize_gray(mean_gray, align_size)
        self._reference_u8 = to_gray_u8(mean_gray) if self.local_alignment else None
        self._mask = self._build_mask((h, w), work_size)
        self._prepare()
        self._image_shape = shape  # taught: only now is the model complete

        correlations = np.array([f.correlation for f in fits])
        stats: dict[str, Any] = {
            "n_images": n,
            "image_shape": [h, w, channels],
            "work_size": [work_size[1], work_size[0]],
            "levels": len(level_sizes),
            "alignment": {
                "mode": self.align,
                "median_correlation": round(float(np.median(correlations)), 4),
                "min_correlation": round(float(correlations.min()), 4),
                "max_abs_angle_deg": round(float(max(abs(f.angle_deg) for f in fits)), 3),
                "not_refined": int(sum(not f.refined for f in fits)),
            },
            "fit_seconds": round(time.perf_counter() - t0, 3),
        }
        if flow_shift:
            stats["alignment"]["max_local_shift_px"] = round(max(flow_shift), 2)
        if self._mask is not None:
            stats["mask_fraction"] = round(float(self._mask.mean()), 4)
        return stats

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
        self._aligner = RigidAligner(self._reference, self.align, self.max_rotation_deg)

    # --- masks --------------------------------------------------------------------------------
    def _build_mask(self, shape: tuple[int, int], work_size: tuple[int, int]) -> np.ndarray | None:
        spec = self._mask_spec
        if spec is None:
            return None
        if spec == "auto":
            return _auto_mask(self._means[0][:, :, :self._color_channels()].mean(axis=2))
        if spec == "polygons":
            full = np.zeros(shape, dtype=np.uint8)
            polys = [np.round(np.asarray(p, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)
                     for p in self._mask_input]
            cv2.fillPoly(full, polys, 1)
        else:  # "array"
            if self._mask_input is None:
                raise ValueError("this model's mask array came from a recipe at working resolution; "
                                 "pass the mask array again to teach anew")
            full = np.asarray(self._mask_input, dtype=np.uint8)
            if full.shape != shape:
                raise ValueError(f"the mask is {full.shape[1]}x{full.shape[0]} but the images are "
                                 f"{shape[1]}x{shape[0]}")
        small = cv2.resize(full.astype(np.float32), work_size, interpolation=cv2.INTER_AREA) >= 0.5
        if not small.any():
            raise ValueError("the part mask covers no pixel of the image")
        return small

    # --- inspection ---------------------------------------------------------------------------
    def predict(self, images: Sequence[np.ndarray]) -> Prediction:
        """Anomaly maps (``(N, H, W)`` float32, the input resolution) and scores (map maxima)."""
        if not self.is_fitted:
            raise RuntimeError("the variation model is not taught yet: call fit() or load a recipe")
        assert self._image_shape is not None and self._aligner is not None
        shape = self._check_images(images, "inspection")
        if shape != self._image_shape:
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

    def _deviation(self, x: np.ndarray) -> np.ndarray:
        """The multi-level deviation map (working resolution, reference pose)."""
        h, w = x.shape[:2]
        out = None
        for low, high, divisor in self._derived:
            lh, lw = low.shape[:2]
            xl = x if (lh, lw) == (h, w) else _resize(x, (lw, lh))
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
        """The learned mean part (reference pose) as a ``uint8`` image at the taught resolution:
        what a user draws a part mask on."""
        if not self.is_fitted:
            raise RuntimeError("the variation model is not taught yet")
        assert self._image_shape is not None
        h, w, c = self._image_shape
        mean = np.clip(np.rint(self._means[0][:, :, :c]), 0, 255).astype(np.uint8)
        mean = cv2.resize(mean, (w, h), interpolation=cv2.INTER_LINEAR)
        return mean if c == 3 else mean.reshape(h, w)

    # --- persistence --------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "work_side": self.work_side,
            "align": self.align,
            "max_rotation_deg": self.max_rotation_deg,
            "align_side": self.align_side,
            "align_passes": self.align_passes,
            "local_alignment": self.local_alignment,
            "flow_sigma": self.flow_sigma,
            "flow_max_shift": self.flow_max_shift,
            "statistic": self.statistic,
            "levels": self.levels,
            "tolerance_px": self.tolerance_px,
            "std_factor": self.std_factor,
            "abs_floor": self.abs_floor,
            "input_blur": self.input_blur,
            "texture": self.texture,
            "texture_sigma": self.texture_sigma,
            "map_blur": self.map_blur,
        }
        if self._mask_spec == "polygons":
            config["mask"] = [np.asarray(p, dtype=np.float64).tolist() for p in self._mask_input]
        else:
            config["mask"] = self._mask_spec  # None, "auto" or "array" (the array lives in the state)
        return config

    def get_state(self) -> dict[str, np.ndarray]:
        if not self.is_fitted:
            raise RuntimeError("the variation model is not taught yet: nothing to save")
        assert self._image_shape is not None and self._reference is not None
        state: dict[str, np.ndarray] = {
            "image_shape": np.asarray(self._image_shape, dtype=np.int64),
            "reference": np.ascontiguousarray(self._reference, dtype=np.float32),
        }
        if self._reference_u8 is not None:
            state["flow_reference"] = np.ascontiguousarray(self._reference_u8, dtype=np.uint8)
        for k, (mean, std) in enumerate(zip(self._means, self._stds, strict=True)):
            state[f"level{k}.mean"] = np.ascontiguousarray(mean, dtype=np.float32)
            state[f"level{k}.std"] = np.ascontiguousarray(std, dtype=np.float32)
        if self._mask is not None:
            state["mask"] = self._mask.astype(np.uint8)
        return state

    @classmethod
    def from_state(cls, config: dict[str, Any], state: dict[str, np.ndarray], **runtime: Any) -> VariationModel:
        """Rebuild a taught model (``runtime`` options such as ``device`` are accepted and ignored:
        the variation model runs on the CPU)."""
        config = dict(config)
        mask_config = config.pop("mask", None)
        if mask_config == "array" and "mask" not in state:
            raise ValueError("the recipe's variation model names a stored mask array but holds none")
        try:  # "auto" and "array" masks come from the state, not from the images
            model = cls(**config, mask=None if mask_config in ("auto", "array") else mask_config)
        except TypeError as exc:
            raise ValueError(f"the recipe's variation-model parameters are not understood ({exc})") from exc
        if mask_config in ("auto", "array"):
            model._mask_spec = mask_config
        missing = [k for k in ("image_shape", "reference", "level0.mean", "level0.std") if k not in state]
        if missing:
            raise ValueError(f"the recipe's variation-model state lacks {', '.join(missing)}")
        shape = tuple(int(v) for v in np.asarray(state["image_shape"]).ravel())
        if len(shape) != 3 or shape[2] not in (1, 3):
            raise ValueError(f"the recipe's variation model has an invalid image shape {shape}")
        model._image_shape = shape  # type: ignore[assignment]
        model._channels = shape[2]
        model._reference = np.asarray(state["reference"], dtype=np.float32)
        if model.local_alignment:
            if "flow_reference" not in state:
                raise ValueError("the recipe's variation model uses local alignment but has no flow reference")
            model._reference_u8 = np.asarray(state["flow_reference"], dtype=np.uint8)
        k = 0
        means, stds = [], []
        while f"level{k}.mean" in state:
            if f"level{k}.std" not in state:
                raise ValueError(f"the recipe's variation-model state lacks level{k}.std")
            means.append(np.asarray(state[f"level{k}.mean"], dtype=np.float32))
            stds.append(np.asarray(state[f"level{k}.std"], dtype=np.float32))
            if means[-1].shape != stds[-1].shape or means[-1].ndim != 3:
                raise ValueError(f"the recipe's variation-model level {k} has inconsistent arrays")
            k += 1
        model._means, model._stds = means, stds
        if "mask" in state:
            model._mask = np.asarray(state["mask"]).astype(bool)
            if model._mask.shape != means[0].shape[:2]:
                raise ValueError("the recipe's variation-model mask does not match its statistics")
        model._prepare()
        return model


# --- helpers ----------------------------------------------------------------------------------
def _idx(ix: list[int]) -> str:
    return ", ".join(str(i) for i in ix[:5]) + (" ..." if len(ix) > 5 else "")


def _resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-resize an ``(h, w, C)`` array to ``size = (width, height)``, keeping the channel axis."""
    if (x.shape[1], x.shape[0]) == size:
        return x
    out = cv2.resize(x, size, interpolation=cv2.INTER_AREA)
    return out.reshape(size[1], size[0], x.shape[2])


def _per_channel(x: np.ndarray, op) -> np.ndarray:
    return np.stack([op(np.ascontiguousarray(x[:, :, c])) for c in range(x.shape[2])], axis=2)


def _parse_mask(mask: Any) -> tuple[str | None, Any]:
    """``(spec, data)``: spec is None, "auto", "polygons" or "array"."""
    if mask is None:
        return None, None
    if isinstance(mask, str):
        if mask == "auto":
            return "auto", None
        if mask == "array":
            raise ValueError("mask='array' refers to a mask stored in a recipe; pass the boolean mask array "
                             "itself, polygons, 'auto' or None")
        raise ValueError(f"unknown mask {mask!r}; use None, 'auto', polygons [[[x, y], ...], ...] or an array")
    if isinstance(mask, np.ndarray) and mask.ndim == 2:
        if not mask.any():
            raise ValueError("the part mask covers no pixel")
        return "array", mask.astype(bool)
    try:
        polys = [np.asarray(p, dtype=np.float64) for p in mask]
    except (TypeError, ValueError):
        polys = []
    if not polys or any(p.ndim != 2 or p.shape[1] != 2 or len(p) < 3 or not np.isfinite(p).all() for p in polys):
        raise ValueError("a part mask must be None, 'auto', a 2-D boolean array, or a list of polygons, "
                         "each a list of at least three [x, y] points")
    return "polygons", polys


def _auto_mask(mean_gray: np.ndarray) -> np.ndarray | None:
    """The part's silhouette in the mean image: Otsu split, the class that does not own most of the
    border is the part; holes filled, largest component, dilated by 2 % of the image side."""
    g = cv2.GaussianBlur(np.clip(np.rint(mean_gray), 0, 255).astype(np.uint8), (0, 0), 2.0)
    _, binary = cv2.threshold(g, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    border = np.concatenate([binary[0], binary[-1], binary[:, 0], binary[:, -1]])
    part = (binary == 0) if border.mean() >= 0.5 else (binary == 1)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(part.astype(np.uint8), connectivity=8)
    if n <= 1:
        log.warning("automatic part mask: no part found; inspecting the whole image")
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    region = (labels == largest).astype(np.uint8)
    # fill holes: whatever background cannot be reached from the border belongs to the part
    flood = np.pad(1 - region, 1, constant_values=1)
    cv2.floodFill(flood, None, (0, 0), 2)
    region = np.where(flood[1:-1, 1:-1] == 2, 0, 1).astype(np.uint8)
    r = max(1, round(0.02 * max(region.shape)))
    region = cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    fraction = float(region.mean())
    if fraction < 0.01 or fraction > 0.995:
        log.warning("automatic part mask covers %.1f %% of the image; inspecting the whole image", 100 * fraction)
        return None
    return region.astype(bool)
