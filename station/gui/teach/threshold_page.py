"""Page 5: the minimum defect area, the threshold that follows, and a live preview."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from station.acquisition.camera_choice import with_camera_settings
from station.gui.image_view import ImageCanvas
from station.gui.teach.common import SessionPage
from station.gui.widgets import EnterKey, VerdictLabel
from station.live.session import LiveSession

if TYPE_CHECKING:
    from station.gui.teach.wizard import TeachWizard

class ThresholdPage(SessionPage):
    def __init__(self, wizard: TeachWizard) -> None:
        super().__init__(wizard)
        from station.gui.threshold_panel import ThresholdPanel

        self.setTitle("5  Minimum defect area and threshold")
        self.setSubTitle("Set the smallest defect that must be found. The threshold follows: the lowest at which "
                         "no held-out good sample shows a region that large.")
        self.panel = ThresholdPanel()
        self.preview_button = QPushButton("Preview on live frames")
        self.preview_button.setCheckable(True)
        self.preview_source = QComboBox()
        self.preview_source.setEditable(True)
        self.preview_source.setToolTip("The source of the preview frames; Enter starts the preview on it")
        EnterKey(self.preview_source.lineEdit(), self.restart_preview)
        self.preview_view = ImageCanvas()
        self.preview_view.setMinimumSize(160, 120)  # the page fits a 1024x768 screen
        self.preview_verdict = VerdictLabel()
        self.preview_verdict.setMinimumSize(120, 70)
        font = self.preview_verdict.font()
        font.setPointSize(28)
        self.preview_verdict.setFont(font)
        self.preview_info = QLabel()
        preview = QGroupBox("Preview")
        pl = QVBoxLayout(preview)
        prow = QHBoxLayout()
        prow.addWidget(self.preview_button)
        prow.addWidget(self.preview_source, 1)
        pl.addLayout(prow)
        body = QHBoxLayout()
        body.addWidget(self.preview_view, 1)
        side = QVBoxLayout()
        side.addWidget(self.preview_verdict)
        side.addWidget(self.preview_info)
        side.addStretch(1)
        body.addLayout(side)
        pl.addLayout(body)
        layout = QVBoxLayout(self)
        layout.addWidget(self.panel, 3)
        layout.addWidget(preview, 2)
        self.preview: LiveSession | None = None
        self._preview_generation = 0
        self._preview_seq = 0
        self.timer = QTimer(self)
        self.timer.setInterval(30)
        self.timer.timeout.connect(self._poll_preview)
        self.panel.estimate_changed.connect(self._estimate_changed)
        self.preview_button.toggled.connect(self._toggle_preview)

    def initializePage(self) -> None:
        s = self.session
        result = s.result
        shape = tuple(result.recipe.validation.get("image_shape") or s.image_shape[:2])
        val_images = [s.images[i] for i in s.validation_indices]
        area = s.min_defect_area_px or s.default_area_px()
        self.panel.set_validation(s.estimate_for, result.recipe.validation_maps(), shape, area,
                                  pixel_size_mm=s.pixel_size_mm, images=val_images, roi=s.roi)
        if s.pixel_size_mm:
            self.panel.unit.setCurrentIndex(1)
        self.preview_source.clear()
        for uri in [self.w.ctx.settings.source_uri, s.source_uri, *self.w.ctx.settings.recent_sources]:
            if self.preview_source.findText(uri) < 0:
                self.preview_source.addItem(uri)

    def _estimate_changed(self, est: Any) -> None:
        self.session.apply_estimate(est)
        if self.preview is not None:
            self._preview_generation = self.preview.set_threshold(est.threshold, est.min_defect_area_px)
        self.completeChanged.emit()

    def _toggle_preview(self, on: bool) -> None:
        if on:
            self.start_preview()
        else:
            self.stop_preview()

    def start_preview(self) -> None:
        if self.preview is not None:
            return
        s = self.session
        recipe = s.build_recipe()
        uri = with_camera_settings(self.preview_source.currentText().strip(), s.camera_settings)
        self.preview = LiveSession(uri, recipe, detector=s.result.detector)
        self._preview_generation = self.preview.generation
        self.preview.start()
        self.timer.start()
        self.preview_button.setChecked(True)
        self.preview_button.setText("Stop preview")

    def restart_preview(self) -> None:
        """The preview on the source now in the field (Enter in it)."""
        self.stop_preview()
        if self.preview_source.currentText().strip():
            self.start_preview()

    def stop_preview(self) -> None:
        self.timer.stop()
        if self.preview is not None:
            self.preview.stop()
            self.preview = None
        self.preview_button.blockSignals(True)
        self.preview_button.setChecked(False)
        self.preview_button.blockSignals(False)
        self.preview_button.setText("Preview on live frames")

    def _poll_preview(self) -> None:
        p = self.preview
        if p is None:
            return
        for err in p.drain_errors():
            self.w.report(err.where, err.message, err.details)
        latest = p.latest()
        if latest is None or latest.sequence == self._preview_seq or latest.generation < self._preview_generation:
            if not p.running:
                self.stop_preview()
            return
        self._preview_seq = latest.sequence
        self.preview_view.show_image(latest.frame.image)
        self.preview_view.show_result(latest.result)
        self.preview_verdict.set_verdict(latest.result.verdict.value)
        label = latest.frame.meta.get("label")
        self.preview_info.setText(f"frame {latest.frame.frame_id}\nscore {latest.result.score:.4g}"
                                  + (f"\nactually: {label}" if label else ""))

    def cleanupPage(self) -> None:
        self.stop_preview()

    def isComplete(self) -> bool:
        return self.session.estimate is not None

    def validatePage(self) -> bool:
        self.stop_preview()
        return True

    def shutdown(self) -> None:
        self.stop_preview()
        self.panel.shutdown()
