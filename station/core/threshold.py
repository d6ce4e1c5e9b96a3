"""Threshold estimation from anomaly-free validation images, as in the MVTec AD paper (§4.3).

Given anomaly maps of good images held out from training and a user-given minimum defect area,
the threshold is the smallest value at which the largest defect region on *every* validation map
is smaller than that area -- so no good validation image would be rejected.

The largest-region area never grows as the threshold rises, so per map the answer is found by
bisection over the map's own sorted values (exact: the threshold is one of the map's values), and
maps that already pass at the running maximum cost one labelling only. That keeps re-estimation for
a new area fast enough to follow a slider (see ``station bench``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from station.core.regions import largest_region_area


@dataclass(frozen=True)
class ThresholdEstimate:
    """The estimated threshold and what it means on each validation image."""

    threshold: float
    min_defect_area_px: float
    largest_area_px: list[float]  # largest remaining region per validation image, original pixels
    limiting_image: int  # index of the validation image that set the threshold (-1: none)

    def to_dict(self) -> dict:
        return {
            "threshold": float(self.threshold),
            "min_defect_area_px": float(self.min_defect_area_px),
            "largest_area_px": [round(float(a), 2) for a in self.largest_area_px],
            "limiting_image": int(self.limiting_image),
        }


class ThresholdEstimator:
    """Caches validation maps so the threshold can be re-estimated quickly for any minimum area.

    Parameters
    ----------
    maps
        Anomaly maps of anomaly-free validation images.
    image_shapes
        Original ``(H, W)`` of each image when the maps have another resolution (areas are given in
        original-image pixels). Defaults to the maps' own shapes.
    max_side
        If given, maps are reduced (area averaging) so their longer side is at most this, trading a
        little accuracy for speed on very large maps. ``None`` keeps them exact.
    """

    def __init__(
        self,
        maps: Sequence[np.ndarray],
        image_shapes: Sequence[tuple[int, int]] | None = None,
        max_side: int | None = None,
    ) -> None:
        if len(maps) == 0:
            raise ValueError("threshold estimation needs at least one anomaly-free validation image")
        shapes = list(image_shapes) if image_shapes is not None else [m.shape[:2] for m in maps]
        self._maps: list[np.ndarray] = []
        self._sorted: list[np.ndarray] = []
        self._scale: list[float] = []  # original pixels per map pixel
        for m, (h, w) in zip(maps, shapes, strict=True):
            m = np.asarray(m, dtype=np.float32)
            if max_side is not None and max(m.shape) > max_side:
                f = max_side / max(m.shape)
                m = cv2.resize(m, (max(1, round(m.shape[1] * f)), max(1, round(m.shape[0] * f))),
                               interpolation=cv2.INTER_AREA)
            self._maps.append(np.ascontiguousarray(m))
            self._sorted.append(np.sort(m, axis=None))
            self._scale.append((h * w) / (m.shape[0] * m.shape[1]))
        # Maps with the highest peaks first: the running threshold rises early and later maps mostly
        # pass with a single labelling.
        self._order = sorted(range(len(self._maps)), key=lambda i: -float(self._sorted[i][-1]))

    def __len__(self) -> int:
        return len(self._maps)

    @property
    def scores(self) -> np.ndarray:
        """The maximum of each validation map (a simple per-image score for histograms)."""
        return np.array([s[-1] for s in self._sorted], dtype=np.float64)

    def _passes(self, i: int, threshold: float, min_area: float) -> bool:
        return largest_region_area(self._maps[i], threshold) * self._scale[i] < min_area

    def threshold_for_map(self, i: int, min_area: float, lower: float = -np.inf) -> float:
        """Smallest value ``t >= lower`` among map ``i``'s values at which its largest region is below
        ``min_area`` (original pixels); ``lower`` itself if the map already passes there."""
        values = self._sorted[i]
        if lower >= values[-1] or (np.isfinite(lower) and self._passes(i, lower, min_area)):
            return lower
        lo = int(np.searchsorted(values, lower, side="right")) if np.isfinite(lower) else 0
        hi = len(values) - 1  # at the map's maximum nothing is above: always passes
        if self._passes(i, float(values[lo]), min_area):
            return float(values[lo])
        while hi - lo > 1:  # invariant: fails at values[lo], passes at values[hi]
            mid = (lo + hi) // 2
            if self._passes(i, float(values[mid]), min_area):
                hi = mid
            else:
                lo = mid
        return float(values[hi])

    def estimate(self, min_defect_area_px: float) -> ThresholdEstimate:
        """The smallest threshold at which every validation map's largest region is below the area."""
        if min_defect_area_px <= 0:
            raise ValueError("the minimum defect area must be positive (in pixels)")
        t = -np.inf
        limiting = -1
        for i in self._order:
            ti = self.threshold_for_map(i, min_defect_area_px, t)
            if ti > t:
                t, limiting = ti, i
        largest = self.largest_areas(t)
        return ThresholdEstimate(float(t), float(min_defect_area_px), largest, limiting)

    def largest_areas(self, threshold: float) -> list[float]:
        """Largest region area (original pixels) on each validation map at ``threshold``."""
        return [largest_region_area(m, threshold) * s for m, s in zip(self._maps, self._scale, strict=True)]


def estimate_threshold(
    maps: Sequence[np.ndarray],
    min_defect_area_px: float,
    image_shapes: Sequence[tuple[int, int]] | None = None,
) -> ThresholdEstimate:
    """One-off estimate; keep a :class:`ThresholdEstimator` to re-estimate for other areas."""
    return ThresholdEstimator(maps, image_shapes).estimate(min_defect_area_px)
