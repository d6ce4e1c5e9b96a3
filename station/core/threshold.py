"""Threshold estimation from anomaly-free validation images, as in the MVTec AD paper (§4.3).

Given anomaly maps of good images held out from training and a user-given minimum defect area,
the threshold is the smallest value at which the largest defect region on *every* validation map
is smaller than that area -- so no good validation image would be rejected.

The largest-region area never grows as the threshold rises, so per map the answer is found by
bisection over the map's own sorted values (exact: the threshold is one of the map's values), and
maps that already pass at the running maximum cost one labelling only. Each map's answers are also
remembered: its threshold never rises as the area grows, so earlier answers bracket the search for
a new area, and a map whose bracket lies below the running maximum is not labelled at all. That
keeps re-estimation fast enough to follow a slider (see ``station bench``).
"""

from __future__ import annotations

import bisect
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
        # per map: areas asked so far (sorted) and their thresholds (non-increasing with the area)
        self._memo_areas: list[list[float]] = [[] for _ in self._maps]
        self._memo_thresholds: list[list[float]] = [[] for _ in self._maps]
        # Maps with the highest peaks first: the running threshold rises early and later maps mostly
        # pass with a single labelling.
        self._order = sorted(range(len(self._maps)), key=lambda i: -float(self._sorted[i][-1]))

    def __len__(self) -> int:
        return len(self._maps)

    @property
    def scores(self) -> np.ndarray:
        """The maximum of each validation map (a simple per-image score for histograms)."""
        return np.array([s[-1] for s in self._sorted], dtype=np.float64)

    def _count_above(self, i: int, threshold: float) -> int:
        values = self._sorted[i]
        return len(values) - int(np.searchsorted(values, threshold, side="right"))

    def _passes(self, i: int, threshold: float, min_area: float) -> bool:
        # fewer pixels above the threshold than the area: no region can be that large (no labelling)
        if self._count_above(i, threshold) * self._scale[i] < min_area:
            return True
        return largest_region_area(self._maps[i], threshold) * self._scale[i] < min_area

    def _bracket(self, i: int, min_area: float) -> tuple[float, float]:
        """``(lower, upper)`` bounds on map ``i``'s threshold for ``min_area`` from earlier answers."""
        areas, ts = self._memo_areas[i], self._memo_thresholds[i]
        k = bisect.bisect_left(areas, min_area)
        if k < len(areas) and areas[k] == min_area:
            return ts[k], ts[k]
        upper = ts[k - 1] if k > 0 else float(self._sorted[i][-1])  # a smaller area: a higher threshold
        lower = ts[k] if k < len(areas) else -np.inf  # a larger area: a lower threshold
        return lower, upper

    def _remember(self, i: int, min_area: float, threshold: float) -> None:
        areas = self._memo_areas[i]
        if len(areas) >= 4096:  # a slider makes many calls; old answers are only hints
            areas.clear()
            self._memo_thresholds[i].clear()
        k = bisect.bisect_left(areas, min_area)
        if k < len(areas) and areas[k] == min_area:
            return
        areas.insert(k, min_area)
        self._memo_thresholds[i].insert(k, threshold)

    def threshold_for_map(self, i: int, min_area: float, lower: float = -np.inf) -> float:
        """Smallest value ``t >= lower`` among map ``i``'s values at which its largest region is below
        ``min_area`` (original pixels); ``lower`` itself if the map already passes there."""
        known_lower, known_upper = self._bracket(i, min_area)
        if known_upper <= lower:
            return lower  # it passes at its own threshold, so at ``lower`` too
        if lower > known_lower:
            if self._passes(i, lower, min_area):
                return lower  # one labelling; its exact threshold is not needed
            known_lower = lower
        exact = self._threshold_between(i, min_area, known_lower, known_upper)
        self._remember(i, min_area, exact)
        return max(exact, lower)

    def _threshold_between(self, i: int, min_area: float, lower: float, upper: float) -> float:
        """Map ``i``'s exact threshold, known to lie in ``[lower, upper]`` (``upper`` passes)."""
        values = self._sorted[i]
        if lower == upper:
            return lower
        lo = int(np.searchsorted(values, lower, side="left")) if np.isfinite(lower) else 0
        hi = int(np.searchsorted(values, upper, side="left"))
        hi = min(hi, len(values) - 1)  # at the map's maximum nothing is above: always passes
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
        # maps that set the threshold for nearby areas first: the running maximum rises early
        order = sorted(self._order, key=lambda j: -self._bracket(j, min_defect_area_px)[1])
        for i in order:
            ti = self.threshold_for_map(i, min_defect_area_px, t)
            if ti > t:
                t, limiting = ti, i
        largest = self.largest_areas(t)
        return ThresholdEstimate(float(t), float(min_defect_area_px), largest, limiting)

    def largest_areas(self, threshold: float) -> list[float]:
        """Largest region area (original pixels) on each validation map at ``threshold``."""
        return [largest_region_area(m, threshold) * s if self._count_above(i, threshold) else 0.0
                for i, (m, s) in enumerate(zip(self._maps, self._scale, strict=True))]


def estimate_threshold(
    maps: Sequence[np.ndarray],
    min_defect_area_px: float,
    image_shapes: Sequence[tuple[int, int]] | None = None,
) -> ThresholdEstimate:
    """One-off estimate; keep a :class:`ThresholdEstimator` to re-estimate for other areas."""
    return ThresholdEstimator(maps, image_shapes).estimate(min_defect_area_px)
