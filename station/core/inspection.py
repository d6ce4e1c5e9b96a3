"""Inspecting parts with a recipe: preprocessing, the detector, regions and the verdict.

:class:`Inspector` is what the live loop, the CLI and the GUI's inference worker hold. It is not
thread-safe by design: one worker thread owns it (and with it the detector and its device). It is
handed its detector; building one by name for this machine is ``station.detectors.runtime``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from station.core.detector import Detector
from station.core.geometry import Geometry, predict_in_geometry
from station.core.images import convert_color
from station.core.recipe import Recipe
from station.core.regions import DefectRegion, Verdict, find_regions, shift_region, verdict_for


@dataclass
class InspectionResult:
    """The outcome for one image."""

    verdict: Verdict
    score: float  # the detector's image-level score
    regions: list[DefectRegion]
    anomaly_map: np.ndarray = field(repr=False)  # float32, ROI resolution
    threshold: float
    min_defect_area_px: float
    latency_ms: float = 0.0
    roi: tuple[int, int, int, int] | None = None  # x, y, w, h of the inspected area in the image

    @classmethod
    def from_map(cls, anomaly_map: np.ndarray, score: float, threshold: float, min_defect_area_px: float,
                 roi: Sequence[int] | None = None, image_shape: tuple[int, int] | None = None,
                 latency_ms: float = 0.0) -> InspectionResult:
        """The one way to turn a detector's map into a result: regions of ``anomaly_map > threshold``
        of at least ``min_defect_area_px``, in *image* coordinates (shifted by the region of interest
        ``roi`` = x, y, w, h that the map covers), and the verdict they give.

        ``image_shape`` is the inspected area's ``(H, W)`` when the map has another resolution.
        The live inspector, Review, the threshold panel and the report writer all build results
        here, so a recipe with a region of interest is drawn the same way everywhere."""
        roi_t = tuple(int(v) for v in roi) if roi else None
        regions = find_regions(anomaly_map, threshold, min_defect_area_px, image_shape=image_shape)
        if roi_t:
            regions = [shift_region(r, roi_t[0], roi_t[1]) for r in regions]
        return cls(verdict=verdict_for(regions), score=float(score), regions=regions, anomaly_map=anomaly_map,
                   threshold=float(threshold), min_defect_area_px=float(min_defect_area_px),
                   latency_ms=float(latency_ms), roi=roi_t)  # type: ignore[arg-type]

    @property
    def is_ng(self) -> bool:
        return self.verdict is Verdict.NG

    @property
    def map_max(self) -> float:
        return float(self.anomaly_map.max()) if self.anomaly_map.size else 0.0

    def to_dict(self, pixel_size_mm: float | None = None) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "score": float(self.score),
            "map_max": self.map_max,
            "threshold": float(self.threshold),
            "min_defect_area_px": float(self.min_defect_area_px),
            "latency_ms": round(self.latency_ms, 3),
            "regions": [r.to_dict(pixel_size_mm) for r in self.regions],
        }

    def inspected(self, image: np.ndarray) -> tuple[np.ndarray, list[DefectRegion]]:
        """The part of ``image`` (or of a mask of its size) this result covers -- its region of
        interest, where the anomaly map lies -- and the regions in that part's coordinates."""
        if not self.roi:
            return image, self.regions
        x, y, w, h = self.roi
        return image[y:y + h, x:x + w], [shift_region(r, -x, -y) for r in self.regions]

    def in_image(self, mask: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
        """The inverse of :meth:`inspected` for a mask: ``mask`` (over the inspected part, e.g. ground
        truth cropped for the metrics) placed where that part lies in an image of ``image_shape``."""
        if not self.roi or mask.shape[:2] == tuple(image_shape[:2]):
            return mask
        x, y, w, h = self.roi
        full = np.zeros(tuple(image_shape[:2]) + mask.shape[2:], dtype=mask.dtype)
        full[y:y + h, x:x + w] = mask[:h, :w]
        return full


def preprocess(image: np.ndarray, preprocessing: dict[str, Any]) -> np.ndarray:
    """Crop to the recipe's ROI (if any) and convert to its colour mode."""
    roi = preprocessing.get("roi")
    if roi:
        x, y, w, h = (int(v) for v in roi)
        H, W = image.shape[:2]
        if x < 0 or y < 0 or x + w > W or y + h > H:
            raise ValueError(f"the recipe's region of interest {roi} lies outside the {W}x{H} image")
        image = image[y:y + h, x:x + w]
    return convert_color(image, preprocessing.get("color_mode", "rgb"))


class Inspector:
    """Applies one recipe to images: OK/NG, regions, anomaly map, latency. ``detector`` is the recipe's
    fitted detector (``station.detectors.runtime.load_inspector`` builds both for this machine)."""

    def __init__(self, recipe: Recipe, detector: Detector) -> None:
        self.recipe = recipe
        self.detector = detector
        self.threshold = float(recipe.threshold)
        self.min_defect_area_px = float(recipe.min_defect_area_px)
        self.geometry = Geometry.from_dict(recipe.preprocessing.get("geometry"))

    def set_threshold(self, threshold: float, min_defect_area_px: float | None = None) -> None:
        self.threshold = float(threshold)
        if min_defect_area_px is not None:
            self.min_defect_area_px = float(min_defect_area_px)

    def precheck(self, image: np.ndarray) -> None:
        """Raise if the recipe cannot serve ``image`` at all -- its region of interest or its geometry
        (:class:`~station.core.geometry.GeometryError`) -- without inspecting it. The live pipeline
        calls it before its input watch, so a frame the recipe does not fit is said as such (the live
        session adds its first-frame check, ``station.live.session``)."""
        roi = self.recipe.preprocessing.get("roi")
        shape = tuple(image.shape)
        if roi:
            x, y, w, h = (int(v) for v in roi)
            if x < 0 or y < 0 or x + w > shape[1] or y + h > shape[0]:
                raise ValueError(f"the recipe's region of interest {list(roi)} lies outside the "
                                 f"{shape[1]}x{shape[0]} image")
            shape = (h, w, *shape[2:])
        self.geometry.check(shape, self.recipe.label)

    def inspect(self, image: np.ndarray) -> InspectionResult:
        return self.inspect_batch([image])[0]

    def inspect_batch(self, images: Sequence[np.ndarray]) -> list[InspectionResult]:
        """Inspect images of one size together (faster on a GPU); latency is per image."""
        t0 = time.perf_counter()
        prepared = [preprocess(im, self.recipe.preprocessing) for im in images]
        # any image size: the recipe's geometry maps to the detector's and back to these pixels
        maps, scores = predict_in_geometry(self.detector.predict, prepared, self.geometry, self.recipe.label)
        roi = self.recipe.preprocessing.get("roi")
        results = [InspectionResult.from_map(amap, score, self.threshold, self.min_defect_area_px, roi)
                   for amap, score in zip(maps, scores, strict=True)]
        per_image = (time.perf_counter() - t0) * 1000.0 / max(1, len(images))
        for r in results:
            r.latency_ms = per_image
        return results

