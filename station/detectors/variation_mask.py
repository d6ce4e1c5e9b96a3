"""The variation model's part mask (:mod:`station.detectors.variation`): what a user may give (``None``,
``"auto"``, polygons, a boolean array), the automatic silhouette, and the mask at working resolution
in the reference pose or, in free pose, in the model frame.
"""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np

log = logging.getLogger(__name__)


class VariationMasks:
    """The mask methods of :class:`~station.detectors.variation.VariationModel` (a part of that class)."""

    def _build_mask(self, shape: tuple[int, int], work_size: tuple[int, int]) -> np.ndarray | None:
        spec = self._mask_spec
        if self.alignment == "shape":
            return self._free_pose_mask(shape, work_size)
        if spec is None:
            return None
        if spec == "auto":
            return auto_mask(self._means[0][:, :, :self._color_channels()].mean(axis=2))
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


def parse_mask(mask: Any) -> tuple[str | None, Any]:
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


def auto_mask(mean_gray: np.ndarray) -> np.ndarray | None:
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


def band_weight(part: np.ndarray | None, mask: np.ndarray | None) -> np.ndarray | float:
    """Free pose: weight 1 on the part, falling linearly to 0 across the band by which the inspected
    mask is wider (a defect on the outline is seen; the changing background beside it hardly)."""
    if mask is None:
        return 1.0
    if part is None or part.shape != mask.shape or not (part & mask).any():
        return mask.astype(np.float32)
    outside = cv2.distanceTransform((~part).astype(np.uint8), cv2.DIST_L2, 3)
    band = max(1.0, float(outside[mask].max()))
    return (np.clip(1.0 - outside / band, 0.0, 1.0) * mask).astype(np.float32)
