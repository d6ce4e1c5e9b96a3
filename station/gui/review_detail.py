"""The selected Review image as the MVTec AD paper's Figure 3: the image with ground truth (red) and
detections (green) beside its anomaly map, views linked for zoom and pan."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from station.core.evaluation import ImageRecord
from station.core.inspection import InspectionResult
from station.gui.image_view import FULL_LUT, ImageCanvas


class DetailView(QWidget):
    """``mode_changed()`` when "heatmap over the image" is toggled (the caller shows the row again)."""

    mode_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image_view = ImageCanvas(show_heatmap=False, title="ground truth (red), detections (green)")
        self.heat_view = ImageCanvas(title="anomaly map: threshold green, 2× red", lut=FULL_LUT)
        self.heat_view.view.setXLink(self.image_view.view)
        self.heat_view.view.setYLink(self.image_view.view)
        self.heat_only = QCheckBox("heatmap over the image")
        self.heat_only.setChecked(True)
        self.heat_only.toggled.connect(lambda _on: self.mode_changed.emit())
        self.info = QLabel()
        self.info.setWordWrap(True)
        dl = QVBoxLayout(self)
        dl.setContentsMargins(0, 0, 0, 0)
        views = QHBoxLayout()
        views.addWidget(self.image_view, 1)
        views.addWidget(self.heat_view, 1)
        dl.addLayout(views, 1)
        il = QHBoxLayout()
        il.addWidget(self.info, 1)
        il.addWidget(self.heat_only)
        dl.addLayout(il)

    def clear_all(self) -> None:
        self.image_view.clear_all()
        self.heat_view.clear_all()
        self.info.setText("")

    def show_record(self, rec: ImageRecord, image: np.ndarray, inspection: InspectionResult,
                    mask: np.ndarray | None) -> None:
        self.image_view.show_image(image)
        self.image_view.show_result(inspection)
        self.image_view.show_ground_truth(mask)
        if self.heat_only.isChecked():
            self.heat_view.show_image(image)
        else:
            self.heat_view.show_image(np.zeros(image.shape[:2], np.uint8))
        self.heat_view.show_result(inspection, show_regions=False)
        self.heat_view.set_heatmap_visible(True)
        ov = f", ground-truth overlap {np.mean(rec.overlaps):.0%}" if rec.overlaps else ""
        largest = f", largest {rec.largest_region_px:.0f} px" if rec.n_regions else ""
        self.info.setText(f"{rec.name}: score {rec.score:.4g}, {rec.verdict}, {rec.n_regions} region(s){largest}{ov}")
