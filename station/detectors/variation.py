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
import warnings
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
from station.detectors.variation_pose import ShapeModel
from station.detectors.variation_shape import (
    POSE_METHODS,
    Framing,
    FreeAligner,
    needs_free_pose,
    teach_free_pose,
)

log = logging.getLogger(__name__)

STATISTICS = ("mean", "median")
VARIATION_ALIGN_MODES = (*ALIGN_MODES, "shape", "auto")
MIN_LEVEL_SIDE = 16  # a statistics level is not made smaller than this (pixels, longer side)
_MAD_TO_STD = 1.4826  # scales the median absolute deviation to a standard deviation (Gaussian data)


class VariationModel:
    """Variation model detector (see the module docstring for the method).

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
        self._reset()
        self._channels = channels
        mode, reason = self.align, "as configured"
        if mode == "auto":
            free, reason = needs_free_pose(list(images), self.work_side, self.max_rotation_deg)
            mode = "shape" if free else "rigid"
            self._align_chosen = mode
        if mode != "shape" and self._mask_spec == "array" and self._mask_input is not None \
                and self._mask_input.shape != (h, w):
            mh, mw = self._mask_input.shape
            raise ValueError(f"the mask is {mw}x{mh} but the images are {w}x{h}")
        total = n * (self.align_passes + 1)
        if mode == "shape":
            work, matrices, valid, alignment = self._align_free(images, progress, cancel, total)
        else:
            work, matrices, alignment = self._align_rigid(images, mode, progress, cancel, total)
            valid = None
        alignment = {"mode": mode, "chosen": reason, **alignment}
        done = n * self.align_passes
        work_size = (work[0].shape[1], work[0].shape[0])

        # 2. the flow target: the aligned mean at working resolution
        flow_target = None
        # not in the free-pose mode: ECC aligns the part to sub-pixel, and a smooth flow driven by the
        # background that changes around a free part pulls at the part's outline (a broken tip
        # screw: image ROC AUC 0.945 with the flow, 0.998 without, docs/benchmarks.md)
        use_flow = self.local_alignment and mode != "shape"
        if use_flow:
            acc = np.zeros((work_size[1], work_size[0]), dtype=np.float64)
            for wi, m in zip(work, matrices, strict=True):
                acc += to_gray_u8(warp_to_reference(self._features(wi)[:, :, :channels], m))
            flow_target = to_gray_u8(acc / n)

        # 3. statistics of the aligned features at every level (frame pixels outside an image
        # -- a part at the border -- do not count)
        level_sizes = self._level_sizes(work_size)
        robust = self.statistic == "median"
        stacks: list[list[np.ndarray]] = [[] for _ in level_sizes]
        sums: list[Any] = [None] * len(level_sizes)
        sq_sums: list[Any] = [None] * len(level_sizes)
        counts: list[Any] = [None] * len(level_sizes)
        gray_acc = np.zeros((work_size[1], work_size[0]), dtype=np.float64)
        flow_shift = []
        for i, (wi, m) in enumerate(zip(work, matrices, strict=True)):
            checkpoint(cancel)
            x = self._to_reference(self._features(wi), m, flow_target)
            if flow_target is not None:
                x, flow = x
                flow_shift.append(float(np.sqrt((flow ** 2).sum(axis=2)).max()))
            gray_acc += x[:, :, :channels].mean(axis=2)
            for k, size in enumerate(level_sizes):
                xl = _resize(x, size)
                wl = None if valid is None else \
                    cv2.resize(valid[i].astype(np.float32), size, interpolation=cv2.INTER_AREA)[:, :, None] >= 0.999
                if robust:
                    stacks[k].append(xl if wl is None else np.where(wl, xl, np.nan))
                else:
                    xd = xl.astype(np.float64)
                    if wl is not None:
                        xd = xd * wl
                        counts[k] = wl.astype(np.float64) if counts[k] is None else counts[k] + wl
                    sums[k] = xd if sums[k] is None else sums[k] + xd
                    sq_sums[k] = xd * xd if sq_sums[k] is None else sq_sums[k] + xd * xd
            done += 1
            report(progress, "learning", done, total)

        means, stds = [], []
        for k in range(len(level_sizes)):
            if robust:
                stack = np.stack(stacks[k])
                if valid is None:
                    mean = np.median(stack, axis=0)
                    std = _MAD_TO_STD * np.median(np.abs(stack - mean), axis=0)
                else:
                    with np.errstate(all="ignore"), warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: never seen
                        mean = np.nan_to_num(np.nanmedian(stack, axis=0))
                        std = np.nan_to_num(_MAD_TO_STD * np.nanmedian(np.abs(stack - mean), axis=0))
                stacks[k] = []
            else:
                cnt = n if counts[k] is None else np.maximum(counts[k], 1.0)
                mean = sums[k] / cnt
                std = np.sqrt(np.maximum(sq_sums[k] / cnt - mean * mean, 0.0))
            means.append(mean.astype(np.float32))
            stds.append(std.astype(np.float32))
        self._means, self._stds = means, stds
        mean_gray = (gray_acc / n).astype(np.float32)
        if mode == "shape":
            assert self._free is not None
            self._reference = self._free.reference
        else:
            align_size = self._size_for(min(self.align_side, max(work_size)), (work_size[1], work_size[0]))
            self._reference = resize_gray(mean_gray, align_size)
        self._reference_u8 = to_gray_u8(mean_gray) if use_flow else None
        self._mask = self._build_mask((h, w), work_size)
        self._prepare()
        self._image_shape = shape  # taught: only now is the model complete

        stats: dict[str, Any] = {
            "n_images": n,
            "image_shape": [h, w, channels],
            "work_size": [work_size[1], work_size[0]],
            "levels": len(level_sizes),
            "alignment": alignment,
            "fit_seconds": round(time.perf_counter() - t0, 3),
        }
        if flow_shift:
            stats["alignment"]["max_local_shift_px"] = round(max(flow_shift), 2)
        if self._mask is not None:
            stats["mask_fraction"] = round(float(self._mask.mean()), 4)
        return stats

    def _align_rigid(self, images, mode, progress, cancel, total):
        """Rigid poses against a reference that becomes the mean of the aligned images."""
        n = len(images)
        h, w = np.asarray(images[0]).shape[:2]
        work_size = self._work_size((h, w))
        align_size = self._size_for(min(self.align_side, max(work_size)), (work_size[1], work_size[0]))
        fx, fy = work_size[0] / align_size[0], work_size[1] / align_size[1]
        work: list[np.ndarray] = []
        grays: list[np.ndarray] = []
        for im in images:
            checkpoint(cancel)
            wi = self._work_image(im)
            work.append(wi)
            grays.append(self._align_gray(self._features(wi), align_size))
        reference = grays[0]
        fits = []
        done = 0
        for _ in range(self.align_passes):
            aligner = RigidAligner(reference, mode, self.max_rotation_deg)
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
        correlations = np.array([f.correlation for f in fits])
        stats = {
            "median_correlation": round(float(np.median(correlations)), 4),
            "min_correlation": round(float(correlations.min()), 4),
            "max_abs_angle_deg": round(float(max(abs(f.angle_deg) for f in fits)), 3),
            "not_refined": int(sum(not f.refined for f in fits)),
        }
        return work, [scale_transform(f.matrix, fx, fy) for f in fits], stats

    def _align_free(self, images, progress, cancel, total):
        """Free pose: every part cut out into the model frame (:mod:`.variation_shape`)."""
        taught = teach_free_pose(list(images), self.work_side, self.align_passes, self.pose_method,
                                 progress, cancel, 0, total)
        self._free = taught.aligner
        self._part_mask = taught.part_mask
        ident = np.eye(2, 3, dtype=np.float32)
        locs = taught.locations
        correlations = np.array([loc.correlation for loc in locs])
        stats = {
            "pose_method": self.pose_method,
            "frame_side": taught.aligner.framing.side,
            "frame_scale": round(taught.aligner.framing.scale, 4),
            "median_correlation": round(float(np.median(correlations)), 4),
            "min_correlation": round(float(correlations.min()), 4),
            "median_shape_score": round(float(np.median([loc.score for loc in locs])), 4),
            "with_rival_poses": int(sum(loc.rivals > 0 for loc in locs)),
        }
        return taught.frames, [ident] * len(images), taught.valid, stats

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
            self._weight = _band_weight(self._free.mask if self._free is not None else None, self._mask)
        else:
            self._aligner = RigidAligner(self._reference, self.alignment, self.max_rotation_deg)

    # --- masks --------------------------------------------------------------------------------
    def _build_mask(self, shape: tuple[int, int], work_size: tuple[int, int]) -> np.ndarray | None:
        spec = self._mask_spec
        if self.alignment == "shape":
            return self._free_pose_mask(shape, work_size)
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

    def _free_pose_mask(self, shape: tuple[int, int], work_size: tuple[int, int]) -> np.ndarray:
        """Free pose: the background changes from image to image, so a part mask is always used --
        the one found at teach-in (widened a little, so a defect on the outline stays inside), or the
        user's polygons/array in the model frame's coordinates (those of :meth:`mean_image`)."""
        spec = self._mask_spec
        if spec in ("polygons", "array") and self._mask_input is not None:
            full = np.zeros((work_size[1], work_size[0]), np.uint8)
            if spec == "polygons":
                polys = [np.round(np.asarray(p, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)
                         for p in self._mask_input]
                cv2.fillPoly(full, polys, 1)
            else:
                full = cv2.resize(self._mask_input.astype(np.uint8), work_size, interpolation=cv2.INTER_NEAREST)
            if full.any():
                return full > 0
        assert self._part_mask is not None
        r = max(1, round(0.02 * max(work_size))) + self.tolerance_px
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        return cv2.dilate(self._part_mask.astype(np.uint8), kernel) > 0

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

    # --- persistence --------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "work_side": self.work_side,
            "align": self.align,
            "max_rotation_deg": self.max_rotation_deg,
            "pose_method": self.pose_method,
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
        if self._align_chosen is not None:
            config["align_chosen"] = self._align_chosen  # what "auto" chose at teach-in
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
        if self._free is not None:
            state.update(_free_pose_state(self._free))
        return state

    @classmethod
    def from_state(cls, config: dict[str, Any], state: dict[str, np.ndarray], **runtime: Any) -> VariationModel:
        """Rebuild a taught model (``runtime`` options such as ``device`` are accepted and ignored:
        the variation model runs on the CPU)."""
        config = dict(config)
        mask_config = config.pop("mask", None)
        chosen = config.pop("align_chosen", None)
        if chosen is not None and (config.get("align") != "auto" or chosen not in VARIATION_ALIGN_MODES
                                   or chosen == "auto"):
            raise ValueError(f"the recipe's variation model records an invalid alignment choice {chosen!r}")
        if mask_config == "array" and "mask" not in state:
            raise ValueError("the recipe's variation model names a stored mask array but holds none")
        try:  # "auto" and "array" masks come from the state, not from the images
            model = cls(**config, mask=None if mask_config in ("auto", "array") else mask_config)
        except TypeError as exc:
            raise ValueError(f"the recipe's variation-model parameters are not understood ({exc})") from exc
        if mask_config in ("auto", "array"):
            model._mask_spec = mask_config
        model._align_chosen = chosen
        missing = [k for k in ("image_shape", "reference", "level0.mean", "level0.std") if k not in state]
        if missing:
            raise ValueError(f"the recipe's variation-model state lacks {', '.join(missing)}")
        shape = tuple(int(v) for v in np.asarray(state["image_shape"]).ravel())
        if len(shape) != 3 or shape[2] not in (1, 3):
            raise ValueError(f"the recipe's variation model has an invalid image shape {shape}")
        model._image_shape = shape  # type: ignore[assignment]
        model._channels = shape[2]
        model._reference = np.asarray(state["reference"], dtype=np.float32)
        if model.local_alignment and model.alignment != "shape":
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
        if model.alignment == "shape":
            model._free = _free_pose_from_state(state, model.pose_method, model._reference)
        if "mask" in state:
            model._mask = np.asarray(state["mask"]).astype(bool)
            if model._mask.shape != means[0].shape[:2]:
                raise ValueError("the recipe's variation-model mask does not match its statistics")
        model._prepare()
        return model


# --- helpers ----------------------------------------------------------------------------------
def _band_weight(part: np.ndarray | None, mask: np.ndarray | None) -> np.ndarray | float:
    """Free pose: weight 1 on the part, falling linearly to 0 across the band by which the inspected
    mask is wider (a defect on the outline is seen; the changing background beside it hardly)."""
    if mask is None:
        return 1.0
    if part is None or part.shape != mask.shape or not (part & mask).any():
        return mask.astype(np.float32)
    outside = cv2.distanceTransform((~part).astype(np.uint8), cv2.DIST_L2, 3)
    band = max(1.0, float(outside[mask].max()))
    return (np.clip(1.0 - outside / band, 0.0, 1.0) * mask).astype(np.float32)


def _free_pose_state(free: FreeAligner) -> dict[str, np.ndarray]:
    """The free-pose locator as plain arrays (its shape model is rebuilt from the template)."""
    f = free.framing
    return {
        "pose.template": np.ascontiguousarray(free.model.template, dtype=np.float32),
        "pose.region": free.model.region.astype(np.uint8),
        "pose.origin": np.asarray(free.model.origin, dtype=np.float64),
        "pose.framing": np.asarray([f.side, f.scale, f.factor], dtype=np.float64),
        "pose.part_mask": np.asarray(free.mask, dtype=np.uint8),
    }


def _free_pose_from_state(state: dict[str, np.ndarray], method: str, reference: np.ndarray) -> FreeAligner:
    keys = ("pose.template", "pose.region", "pose.origin", "pose.framing", "pose.part_mask")
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(f"the recipe's variation model (free pose) lacks {', '.join(missing)}")
    side, scale, factor = (float(v) for v in np.asarray(state["pose.framing"]).ravel()[:3])
    part_mask = np.asarray(state["pose.part_mask"]).astype(bool)
    if reference.shape != (round(side), round(side)) or part_mask.shape != reference.shape:
        raise ValueError("the recipe's variation model (free pose) has a frame that does not match its reference")
    origin = tuple(float(v) for v in np.asarray(state["pose.origin"]).ravel()[:2])
    model = ShapeModel(np.asarray(state["pose.template"], np.float32),
                       np.asarray(state["pose.region"]).astype(bool), origin)  # type: ignore[arg-type]
    return FreeAligner(model, Framing(round(side), scale, factor), np.zeros(2), reference, part_mask, method)


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
