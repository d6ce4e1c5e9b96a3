"""The image canvas shared by the modes: the image with explicit levels, the anomaly heatmap as an
overlay that is transparent below the threshold, and outlines (detections green, ground truth red).

Colours follow :func:`station.core.overlay.heatmap_rgb` (the report's overlays): the scale is pinned
to the threshold -- 0 at the bottom, the threshold in the middle, twice the threshold at the top --
so a good part looks the same calm on every frame instead of being stretched to its own maximum.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt

from station.core.inspection import InspectionResult
from station.core.overlay import GREEN, RED, mask_contours

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

ROI_PEN = (255, 196, 0)  # the region-of-interest border, as the teach-in wizard draws it
HEAT_SPAN = 2.0  # the top of the colour scale, in multiples of the threshold (as heatmap_rgb)


def heatmap_lut(size: int = 256) -> np.ndarray:
    """RGBA lookup table over ``[0, HEAT_SPAN * threshold]``: JET colours, fully transparent below the
    threshold (a good part shows nothing), then an alpha ramp from clearly visible at the threshold
    to nearly opaque at twice the threshold and above."""
    colors = cv2.applyColorMap(np.arange(size, dtype=np.uint8).reshape(-1, 1), cv2.COLORMAP_JET)
    lut = np.zeros((size, 4), dtype=np.uint8)
    lut[:, :3] = cv2.cvtColor(colors, cv2.COLOR_BGR2RGB).reshape(-1, 3)
    x = np.linspace(0.0, HEAT_SPAN, size)  # value / threshold for each entry
    # "above the threshold" is strict (regions.py): the entry holding the threshold itself stays clear
    above = x > 1.0 + 0.5 * HEAT_SPAN / (size - 1)
    alpha = np.where(above, 120.0 + 100.0 * np.clip((x - 1.0) / (HEAT_SPAN - 1.0), 0.0, 1.0), 0.0)
    lut[:, 3] = np.clip(alpha, 0, 255).astype(np.uint8)
    return lut


HEAT_LUT = heatmap_lut()
FULL_LUT = HEAT_LUT.copy()  # the whole map, half transparent (the review's Figure-3 heatmap)
FULL_LUT[:, 3] = 140


def polyline_xy(contours: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One x/y pair of arrays for many closed polygons, NaN-separated (``connect="finite"``), shifted
    by half a pixel: contour points are pixel centres, image pixels span ``[i, i + 1)``."""
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for c in contours:
        c = np.asarray(c, dtype=np.float64).reshape(-1, 2)
        if len(c) == 0:
            continue
        c = np.vstack([c, c[:1]]) + 0.5
        xs += [c[:, 0], np.array([np.nan])]
        ys += [c[:, 1], np.array([np.nan])]
    if not xs:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(xs), np.concatenate(ys)


class ImageCanvas(pg.GraphicsLayoutWidget):
    """Zoomable image view with the heatmap overlay and the outlines."""

    def __init__(self, parent=None, show_heatmap: bool = True, title: str | None = None,
                 lut: np.ndarray = HEAT_LUT) -> None:
        super().__init__(parent)
        self.setBackground((32, 33, 36))
        self.ci.setContentsMargins(0, 0, 0, 0)
        if title:
            self.addLabel(title, row=0, col=0, color=(220, 220, 220))
        self.view = self.addViewBox(row=1 if title else 0, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.heat_item = pg.ImageItem(axisOrder="row-major")
        self.heat_item.setLookupTable(lut)
        self.heat_item.setZValue(1)
        self.gt_item = pg.PlotCurveItem(pen=pg.mkPen(RED, width=2), connect="finite")
        self.gt_item.setZValue(2)
        self.det_item = pg.PlotCurveItem(pen=pg.mkPen(GREEN, width=2), connect="finite")
        self.det_item.setZValue(3)
        # the inspected region's border when the recipe crops: what lies outside is never judged
        self.roi_item = pg.PlotCurveItem(pen=pg.mkPen(ROI_PEN, width=1, style=Qt.PenStyle.DashLine))
        self.roi_item.setZValue(1.5)
        for item in (self.image_item, self.heat_item, self.roi_item, self.gt_item, self.det_item):
            self.view.addItem(item)
        self.heat_item.setVisible(show_heatmap)
        self._show_heatmap = show_heatmap
        self._shape: tuple[int, ...] | None = None

    @property
    def image_shape(self) -> tuple[int, ...] | None:
        return self._shape

    def set_heatmap_visible(self, visible: bool) -> None:
        self._show_heatmap = visible
        self.heat_item.setVisible(visible and self.heat_item.image is not None)

    def show_image(self, image: np.ndarray) -> None:
        """Show a ``uint8`` image with fixed levels (no auto-levels per frame)."""
        self.image_item.setImage(image, autoLevels=False, levels=(0, 255))
        if image.shape[:2] != (self._shape or (0, 0))[:2]:
            self._shape = image.shape
            self.view.autoRange(padding=0.0)

    def show_result(self, result: InspectionResult | None, show_regions: bool = True) -> None:
        """The heatmap (levels pinned to the result's threshold) and the detected regions."""
        if result is None:
            self.heat_item.clear()
            self.heat_item.setVisible(False)
            self.det_item.setData([], [])
            self.roi_item.setData([], [])
            return
        amap = result.anomaly_map
        top = max(HEAT_SPAN * float(result.threshold), 1e-12)
        self.heat_item.setImage(amap, autoLevels=False, levels=(0.0, top))
        if result.roi:
            x, y, w, h = result.roi
            self.roi_item.setData([x, x + w, x + w, x, x], [y, y, y + h, y + h, y])
        else:
            self.roi_item.setData([], [])
            x, y = 0, 0
            h, w = (self._shape or amap.shape)[:2]
        self.heat_item.setRect(QRectF(x, y, w, h))
        self.heat_item.setVisible(self._show_heatmap)
        xs, ys = polyline_xy([r.contour for r in result.regions] if show_regions else [])
        self.det_item.setData(xs, ys)

    def show_ground_truth(self, mask: np.ndarray | None) -> None:
        xs, ys = polyline_xy(mask_contours(mask) if mask is not None and mask.any() else [])
        self.gt_item.setData(xs, ys)

    def clear_all(self) -> None:
        self.image_item.clear()
        self.show_result(None)
        self.show_ground_truth(None)
        self._shape = None
