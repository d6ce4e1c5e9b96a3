"""The minimum-defect-area control: moving it re-estimates the threshold on the held-out good images
(the MVTec AD paper's procedure, :class:`~station.core.threshold.ThresholdEstimator`) and shows what
that threshold means -- the histogram of validation scores against it, and the largest region left on
the validation images (which by construction stays below the area).

Estimation runs on a latest-request-wins worker: the control never blocks, and the answer always
catches up with where the control is now.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from station.core.inspection import InspectionResult
from station.core.threshold import ThresholdEstimate
from station.core.units import area_from_px, area_to_px
from station.gui.image_view import ImageCanvas
from station.gui.workers import LatestOnlyWorker

SLIDER_STEPS = 1000


class ThresholdPanel(QWidget):
    """``estimate_changed(ThresholdEstimate)`` after each re-estimation."""

    estimate_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._estimate_fn: Callable[[float], ThresholdEstimate] | None = None
        self._maps: list[np.ndarray] = []
        self._images: list[np.ndarray] | None = None
        self._roi: tuple[int, ...] | None = None
        self._shape: tuple[int, int] = (1, 1)
        self._pixel_size: float | None = None
        self._max_area = 1000.0
        self._score_range = (0.0, 1.0)
        self._submitted: dict[int, float] = {}
        self._area_px = 1.0  # the area the controls show, in pixels
        self._updating = False
        self.estimate: ThresholdEstimate | None = None
        self.response_ms: list[float] = []  # control moved -> threshold shown, per answered request
        self.worker = LatestOnlyWorker(self._compute, name="threshold-estimate", parent=self)
        self.worker.result.connect(self._on_result)
        self.worker.failed.connect(self._on_failed)

        # controls
        self.area = QDoubleSpinBox()
        self.area.setDecimals(1)
        self.area.setRange(1.0, 1e9)
        self.area.setKeyboardTracking(False)
        self.unit = QComboBox()
        self.unit.addItem("pixels", "px")
        self.unit.addItem("mm²", "mm2")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.threshold_label = QLabel("–")
        self.threshold_label.setStyleSheet("font-size:16pt; font-weight:bold;")
        self.largest_label = QLabel()
        self.largest_label.setWordWrap(True)
        self.image_pick = QComboBox()

        form = QFormLayout()
        row = QHBoxLayout()
        row.addWidget(self.area, 1)
        row.addWidget(self.unit)
        form.addRow("Minimum defect area", row)
        form.addRow("", self.slider)
        form.addRow("Threshold", self.threshold_label)
        form.addRow("Validation image", self.image_pick)

        self.histogram = pg.PlotWidget()
        self.histogram.setBackground("w")
        self.histogram.setLabel("bottom", "validation image score (map maximum)")
        self.histogram.setLabel("left", "images")
        self.histogram.setMouseEnabled(False, False)
        self.histogram.setMinimumHeight(160)
        self._bars: pg.BarGraphItem | None = None
        self.threshold_line = pg.InfiniteLine(angle=90, pen=pg.mkPen((217, 48, 37), width=2),
                                              label="threshold", labelOpts={"position": 0.9, "color": (217, 48, 37)})
        self.histogram.addItem(self.threshold_line)
        self.largest_view = ImageCanvas(title="largest region left on a validation image")
        self.largest_view.setMinimumSize(220, 220)

        left = QVBoxLayout()
        left.addLayout(form)
        left.addWidget(self.largest_label)
        self._histogram_row = QHBoxLayout()
        self._histogram_row.addWidget(self.histogram, 1)
        left.addLayout(self._histogram_row, 1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(left, 3)
        layout.addWidget(self.largest_view, 2)

        self.area.valueChanged.connect(self._area_edited)
        self.slider.valueChanged.connect(self._slider_moved)
        self.unit.currentIndexChanged.connect(self._unit_changed)
        self.image_pick.currentIndexChanged.connect(lambda _i: self._show_validation_image())

    # --- setup ------------------------------------------------------------------------------------
    def set_validation(self, estimate_fn: Callable[[float], ThresholdEstimate], maps: Sequence[np.ndarray],
                       image_shape: tuple[int, int], area_px: float, pixel_size_mm: float | None = None,
                       images: Sequence[np.ndarray] | None = None,
                       roi: tuple[int, int, int, int] | None = None) -> None:
        """``maps``: the validation maps (any resolution; areas are in ``image_shape`` pixels).
        ``images`` are the whole validation images; with a region of interest ``roi`` (x, y, w, h) the
        maps cover only that region and ``image_shape`` is its size, so they are drawn at its offset."""
        self._estimate_fn = estimate_fn
        self._maps = list(maps)
        self._images = list(images) if images is not None else None
        self._roi = tuple(int(v) for v in roi) if roi else None
        self._shape = (int(image_shape[0]), int(image_shape[1]))
        self._pixel_size = pixel_size_mm or None
        self._max_area = max(10.0, self._shape[0] * self._shape[1] * 0.05)
        self.unit.model().item(1).setEnabled(bool(self._pixel_size))
        self._updating = True
        try:
            if not self._pixel_size:
                self.unit.setCurrentIndex(0)
            self.image_pick.clear()
            for i in range(len(self._maps)):
                self.image_pick.addItem(f"validation image {i + 1}", i)
            self._set_area_widgets(area_px)
        finally:
            self._updating = False
        scores = np.array([float(m.max()) for m in self._maps])
        self._draw_histogram(scores)
        self.request(area_px)

    def add_beside_histogram(self, widget: QWidget, stretch: int = 1) -> None:
        """Put ``widget`` to the right of the histogram (the wizard's detectability table)."""
        self._histogram_row.addWidget(widget, stretch)

    def set_pixel_size(self, pixel_size_mm: float | None) -> None:
        self._pixel_size = pixel_size_mm or None
        self.unit.model().item(1).setEnabled(bool(self._pixel_size))
        if not self._pixel_size and self.unit.currentData() == "mm2":
            self.unit.setCurrentIndex(0)

    def shutdown(self) -> None:
        self.worker.stop()

    # --- conversions ------------------------------------------------------------------------------
    @property
    def unit_code(self) -> str:
        return self.unit.currentData()

    def _unit(self) -> str:  # mm² only while the pixel size is known (set_pixel_size falls back to px)
        return self.unit_code if self._pixel_size else "px"

    def _to_px(self, value: float) -> float:
        return area_to_px(value, self._unit(), self._pixel_size)

    def _from_px(self, area_px: float) -> float:
        return area_from_px(area_px, self._unit(), self._pixel_size)

    def area_px(self) -> float:
        return self._to_px(self.area.value())

    def _slider_to_px(self, pos: int) -> float:
        return math.exp(math.log(self._max_area) * pos / SLIDER_STEPS)

    def _px_to_slider(self, area_px: float) -> int:
        return round(SLIDER_STEPS * math.log(max(1.0, area_px)) / math.log(self._max_area))

    def _set_area_widgets(self, area_px: float) -> None:
        self._area_px = float(area_px)
        was = self._updating
        self._updating = True
        try:
            mm = self.unit_code == "mm2"
            self.area.setDecimals(3 if mm else 1)
            self.area.setSingleStep(0.1 if mm else 1.0)
            self.area.setMinimum(self._from_px(1.0))
            self.area.setValue(self._from_px(area_px))
            self.slider.setValue(min(SLIDER_STEPS, self._px_to_slider(area_px)))
        finally:
            self._updating = was

    # --- interaction ------------------------------------------------------------------------------
    def set_area_px(self, area_px: float) -> int:
        """Set the control (as a user would) and request the estimate; returns the request id."""
        self._set_area_widgets(area_px)
        return self.request(area_px)

    def request(self, area_px: float) -> int:
        self._area_px = float(area_px)
        if self._estimate_fn is None:
            return 0
        request_id = self.worker.submit(float(area_px))
        self._submitted[request_id] = time.perf_counter()
        return request_id

    def _area_edited(self, value: float) -> None:
        if self._updating:
            return
        area_px = self._to_px(value)
        self._updating = True
        self.slider.setValue(min(SLIDER_STEPS, self._px_to_slider(area_px)))
        self._updating = False
        self.request(area_px)

    def _slider_moved(self, pos: int) -> None:
        if self._updating:
            return
        area_px = round(self._slider_to_px(pos), 1)
        self._updating = True
        self.area.setValue(self._from_px(area_px))
        self._updating = False
        self.request(area_px)

    def _unit_changed(self, _index: int) -> None:
        # the area last set or asked for, in pixels: the field's value is still in the previous unit
        # here, and the estimate may not be back yet (the wizard switches to mm² on entering the page)
        area_px = self._area_px
        self._set_area_widgets(area_px)
        if self.estimate is not None:
            self._show_estimate(self.estimate)

    # --- results ----------------------------------------------------------------------------------
    def _compute(self, area_px: float) -> ThresholdEstimate:
        return self._estimate_fn(area_px)

    def _on_result(self, request_id: int, _request: object, estimate: ThresholdEstimate) -> None:
        t0 = self._submitted.pop(request_id, None)
        for old in [k for k in self._submitted if k < request_id]:  # superseded, never answered
            self._submitted.pop(old)
        if request_id != self.worker.latest_id:
            return  # a newer request is on its way: do not flash an old answer
        self.estimate = estimate
        self._show_estimate(estimate)
        if t0 is not None:
            self.response_ms.append((time.perf_counter() - t0) * 1000.0)
        self.estimate_changed.emit(estimate)

    def _on_failed(self, request_id: int, message: str) -> None:
        self._submitted.pop(request_id, None)
        self.threshold_label.setText(f"cannot estimate: {message}")

    def _show_estimate(self, est: ThresholdEstimate) -> None:
        self.threshold_label.setText(f"{est.threshold:.5g}")
        self.threshold_line.setValue(est.threshold)
        lo, hi = self._score_range
        lo, hi = min(lo, est.threshold), max(hi, est.threshold)
        pad = 0.05 * (hi - lo) or 1e-6
        self.histogram.setXRange(lo - pad, hi + pad, padding=0)
        largest = max(est.largest_area_px) if est.largest_area_px else 0.0
        worst = int(np.argmax(est.largest_area_px)) if est.largest_area_px else 0
        unit = "mm²" if self.unit_code == "mm2" else "px"
        self.largest_label.setText(
            f"At this threshold the largest region left on the {len(est.largest_area_px)} held-out good images is "
            f"{self._from_px(largest):.4g} {unit} (validation image {worst + 1}), below the minimum defect area "
            f"{self._from_px(est.min_defect_area_px):.4g} {unit}: none of them would be rejected."
            if largest > 0 else
            f"At this threshold no region is left on any of the {len(est.largest_area_px)} held-out good images.")
        if self.image_pick.currentIndex() != worst:
            self.image_pick.setCurrentIndex(worst)  # shows it
        else:
            self._show_validation_image()

    def _show_validation_image(self) -> None:
        i = self.image_pick.currentData()
        if i is None or self.estimate is None or i >= len(self._maps):
            return
        amap = self._maps[i]
        thr = self.estimate.threshold
        roi = None
        if self._images is not None and i < len(self._images):
            self.largest_view.show_image(self._images[i])
            roi = self._roi  # the whole image is shown: the map and regions go to the region's place
        else:
            self.largest_view.show_image(np.zeros(self._shape, dtype=np.uint8))
        shown = InspectionResult.from_map(amap, float(amap.max()), thr, 0.0, roi, image_shape=self._shape)
        shown.regions = shown.regions[:1]  # the largest, whatever its area: what the minimum area is set against
        shown.min_defect_area_px = self.estimate.min_defect_area_px
        self.largest_view.show_result(shown)

    def _draw_histogram(self, scores: np.ndarray) -> None:
        if self._bars is not None:
            self.histogram.removeItem(self._bars)
            self._bars = None
        if scores.size == 0:
            return
        lo, hi = float(scores.min()), float(scores.max())
        self._score_range = (lo, hi)
        if hi <= lo:
            hi = lo + 1e-6
        counts, edges = np.histogram(scores, bins=max(5, min(30, scores.size)), range=(lo, hi))
        self._bars = pg.BarGraphItem(x0=edges[:-1], x1=edges[1:], height=counts, brush=(66, 133, 244, 180),
                                     pen=pg.mkPen((40, 90, 200)))
        step = max(1, int(np.ceil(counts.max() / 5)))  # whole images on the count axis
        self.histogram.getAxis("left").setTickSpacing(step, step)
        self.histogram.addItem(self._bars)
