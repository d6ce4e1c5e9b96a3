"""Teaching the variation model (:mod:`station.detectors.variation`): alignment of the good images
(rigid, or free pose through :mod:`.variation_shape`), then per-pixel statistics of the aligned
features at every level. The model's class inherits :class:`VariationTeaching`; what it learns is
set on the model, and :meth:`fit` is the only entry.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from station.core.progress import CancelToken, ProgressCallback, checkpoint, report
from station.detectors.alignment import (
    RigidAligner,
    resize_gray,
    scale_transform,
    to_gray_u8,
    warp_to_reference,
)
from station.detectors.variation_shape import needs_free_pose, teach_free_pose

_MAD_TO_STD = 1.4826  # scales the median absolute deviation to a standard deviation (Gaussian data)


class VariationTeaching:
    """``fit`` of :class:`~station.detectors.variation.VariationModel` (a part of that class)."""

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
                xl = resize_features(x, size)
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


def resize_features(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-resize an ``(h, w, C)`` array to ``size = (width, height)``, keeping the channel axis."""
    if (x.shape[1], x.shape[0]) == size:
        return x
    out = cv2.resize(x, size, interpolation=cv2.INTER_AREA)
    return out.reshape(size[1], size[0], x.shape[2])
