"""From an anomaly map to defect regions and an OK/NG verdict.

A pixel is defective where the anomaly map is strictly above the threshold; defective pixels form
regions by 8-connectivity, and only regions of at least the minimum defect area count. A part is NG
when at least one region counts. Areas, boxes and contours are in pixels of the original image even
when the map was computed at another resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import cv2
import numpy as np

from station.core.units import px_to_mm2


class Verdict(str, Enum):
    OK = "OK"
    NG = "NG"


@dataclass(frozen=True)
class DefectRegion:
    """One connected defect region, in original-image pixels."""

    area_px: float
    bbox: tuple[int, int, int, int]  # x, y, width, height
    centroid: tuple[float, float]  # x, y
    peak_score: float
    mean_score: float
    contour: np.ndarray = field(repr=False, compare=False)  # (N, 2) int32 polygon, x/y

    def area_mm2(self, pixel_size_mm: float) -> float:
        return px_to_mm2(self.area_px, pixel_size_mm)

    def to_dict(self, pixel_size_mm: float | None = None) -> dict:
        d = {
            "area_px": round(float(self.area_px), 2),
            "bbox": [int(v) for v in self.bbox],
            "centroid": [round(float(v), 2) for v in self.centroid],
            "peak_score": float(self.peak_score),
            "mean_score": float(self.mean_score),
        }
        if pixel_size_mm:
            d["area_mm2"] = round(self.area_mm2(pixel_size_mm), 4)
        return d


def label_defects(anomaly_map: np.ndarray, threshold: float) -> tuple[int, np.ndarray, np.ndarray]:
    """8-connected components of ``anomaly_map > threshold``: ``(count incl. background, labels, stats)``."""
    binary = (anomaly_map > threshold).view(np.uint8)
    return cv2.connectedComponentsWithStats(binary, connectivity=8, ltype=cv2.CV_32S)


def largest_region_area(anomaly_map: np.ndarray, threshold: float) -> int:
    """Pixel count of the largest 8-connected region above ``threshold`` (0 if none), at map resolution."""
    binary = (anomaly_map > threshold).view(np.uint8)
    if not binary.any():
        return 0
    n, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8, ltype=cv2.CV_32S)
    return int(stats[1:, cv2.CC_STAT_AREA].max()) if n > 1 else 0


def find_regions(
    anomaly_map: np.ndarray,
    threshold: float,
    min_area_px: float = 0.0,
    image_shape: tuple[int, int] | None = None,
) -> list[DefectRegion]:
    """Regions of ``anomaly_map > threshold`` whose area (original-image pixels) is ``>= min_area_px``.

    ``image_shape`` is the original image's ``(H, W)`` when the map has another resolution; areas,
    boxes and contours are then scaled to it. Regions are sorted by area, largest first.
    """
    mh, mw = anomaly_map.shape[:2]
    ih, iw = image_shape if image_shape is not None else (mh, mw)
    sy, sx = ih / mh, iw / mw
    binary = (anomaly_map > threshold).view(np.uint8)
    if not binary.any():
        return []
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(binary, connectivity=8, ltype=cv2.CV_32S)
    areas = stats[:, cv2.CC_STAT_AREA].astype(np.float64) * (sy * sx)
    regions: list[DefectRegion] = []
    for k in np.flatnonzero(areas[1:] >= min_area_px) + 1:
        x, y, w, h = (int(v) for v in stats[k, :4])
        local = labels[y:y + h, x:x + w] == k
        values = anomaly_map[y:y + h, x:x + w][local]
        contours, _ = cv2.findContours(local.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        contour = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)
        contour = np.rint((contour + [x, y]) * [sx, sy]).astype(np.int32)
        regions.append(DefectRegion(
            area_px=float(areas[k]),
            bbox=(round(x * sx), round(y * sy), max(1, round(w * sx)), max(1, round(h * sy))),
            centroid=(float(centroids[k, 0] * sx), float(centroids[k, 1] * sy)),
            peak_score=float(values.max()),
            mean_score=float(values.mean()),
            contour=contour,
        ))
    regions.sort(key=lambda r: r.area_px, reverse=True)
    return regions


def defect_mask(anomaly_map: np.ndarray, threshold: float, min_area_px: float = 0.0,
                image_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Boolean mask (map resolution) of the pixels in regions that count (area ``>= min_area_px``,
    in map pixels -- or, given the original image's ``image_shape``, in its pixels, as
    :func:`find_regions` counts them)."""
    n, labels, stats, _ = label_defects(anomaly_map, threshold)
    if n <= 1:
        return np.zeros(anomaly_map.shape[:2], dtype=bool)
    scale = 1.0
    if image_shape is not None:
        scale = (image_shape[0] * image_shape[1]) / (anomaly_map.shape[0] * anomaly_map.shape[1])
    keep = stats[:, cv2.CC_STAT_AREA] * scale >= min_area_px
    keep[0] = False
    return keep[labels]


def verdict_for(regions: list[DefectRegion]) -> Verdict:
    return Verdict.NG if regions else Verdict.OK


def shift_region(r: DefectRegion, dx: int, dy: int) -> DefectRegion:
    """The same region moved by ``(dx, dy)`` pixels (e.g. from ROI to full-image coordinates)."""
    x, y, w, h = r.bbox
    return DefectRegion(r.area_px, (x + dx, y + dy, w, h), (r.centroid[0] + dx, r.centroid[1] + dy),
                        r.peak_score, r.mean_score, r.contour + np.array([dx, dy], dtype=np.int32))
