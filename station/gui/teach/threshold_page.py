"""Page 5: the minimum defect area, the threshold that follows, and a live preview."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from station.acquisition.camera_choice import with_camera_settings
from station.app.detectability import DetectabilitySettings, measure, spread
from station.gui.detectability_view import DetectabilityView
from station.gui.image_view import ImageCanvas
from station.gui.teach.common import SessionPage
from station.gui.widgets import EnterKey, VerdictLabel
from station.gui.workers import Job, LatestOnlyWorker
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
        # what the recipe will catch, beside the histogram: measured on a worker when asked (it runs
        # the detector on a few hundred images), re-scored from the kept maps when the area changes
        self.detectability = DetectabilityView(with_button=True, sentences=False)
        self.panel.add_beside_histogram(self.detectability, 1)
        self.detect_job: Job | None = None
        self.rescorer: LatestOnlyWorker | None = None  # its thread starts with the first measurement
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
        self.detectability.compute_requested.connect(self.measure_detectability)

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
        if s.detectability_maps is None:
            self.detectability.set_table(None)
            self.detectability.set_status("Not measured yet: Measure pastes synthetic defects onto the held-out "
                                          "good samples and shows the share found.")
        self.preview_source.clear()
        for uri in [self.w.ctx.settings.source_uri, s.source_uri, *self.w.ctx.settings.recent_sources]:
            if self.preview_source.findText(uri) < 0:
                self.preview_source.addItem(uri)

    def _estimate_changed(self, est: Any) -> None:
        self.session.apply_estimate(est)
        self._rescore()
        if self.preview is not None:
            self._preview_generation = self.preview.set_threshold(est.threshold, est.min_defect_area_px)
        self.completeChanged.emit()

    # --- detectability ---------------------------------------------------------------------------
    @property
    def measuring(self) -> bool:
        return self.detect_job is not None and self.detect_job.running

    def measure_detectability(self) -> Job | None:
        """Measure on a worker. The preview shares the detector, so it stops meanwhile."""
        s = self.session
        if self.measuring or s.result is None or s.estimate is None:
            return None
        self.stop_preview()
        self.preview_button.setEnabled(False)
        self.detectability.button.setEnabled(False)
        recipe = s.build_recipe()
        settings = DetectabilitySettings()
        images = spread([s.images[i] for i in s.validation_indices], settings.max_images)
        detector = s.result.detector
        job = Job(lambda progress, cancel: measure(recipe, detector, images, settings, progress, cancel),
                  name="detectability", parent=self)
        job.progress.connect(lambda p: self.detectability.set_status(
            f"measuring: {p.done} of {p.total} synthetic defects inspected…"))
        job.finished.connect(self._measured)
        job.failed.connect(self._measure_failed)
        job.cancelled.connect(lambda: self._measure_ended("measuring cancelled"))
        self.detectability.set_status(f"measuring: {settings.grid(recipe.min_defect_area_px).n_samples} "
                                      f"synthetic defects on {len(images)} held-out good samples…")
        self.detect_job = job.start()
        return job

    def _measure_ended(self, status: str | None = None) -> None:
        self.preview_button.setEnabled(True)
        self.detectability.button.setEnabled(True)
        if status:
            self.detectability.set_status(status)

    def _measured(self, maps: Any) -> None:
        self._measure_ended()
        self.session.detectability_maps = maps
        if self.rescorer is None:
            self.rescorer = LatestOnlyWorker(lambda req: req[0].score(*req[1:]), name="detectability-rescore",
                                             parent=self)
            self.rescorer.result.connect(self._rescored)
            self.rescorer.failed.connect(lambda _id, msg: self.detectability.set_status(f"cannot score: {msg}"))
        self._rescore()

    def _measure_failed(self, message: str, details: str) -> None:
        self._measure_ended(f"could not measure: {message}")
        self.w.report("detectability", message, details)

    def _rescore(self) -> None:
        s = self.session
        if self.rescorer is not None and s.detectability_maps is not None and s.estimate is not None:
            self.rescorer.submit((s.detectability_maps, s.estimate.threshold, s.estimate.min_defect_area_px,
                                  s.pixel_size_mm))

    def _rescored(self, request_id: int, request: Any, table: Any) -> None:
        if (self.rescorer is None or request_id != self.rescorer.latest_id
                or request[0] is not self.session.detectability_maps):
            return  # a newer area is being scored, or the training changed
        self.session.detectability = table
        self.detectability.set_table(table)

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
        if self.detect_job is not None:
            self.detect_job.cancel()  # going back (to re-train, say): the maps would be stale

    def isComplete(self) -> bool:
        return self.session.estimate is not None

    def validatePage(self) -> bool:
        self.stop_preview()
        return True

    def shutdown(self) -> None:
        self.stop_preview()
        self.panel.shutdown()
        if self.rescorer is not None:
            self.rescorer.stop()
        if self.detect_job is not None:
            self.detect_job.cancel()
            self.detect_job.wait(1.5)
