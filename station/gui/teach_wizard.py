"""The teach-in wizard: a ``QWizard`` whose pages all read and write one plain model,
:class:`~station.app.teach_session.TeachSession` (the pattern of pymmcore-widgets' configuration
wizard). Pages hold widgets only; what a page decides lands in the session, so tests drive the wizard
by setting the session and pressing Next.

Nothing is written before Finish: ``accept()`` saves the new recipe version (atomically, audited);
``reject()`` -- Cancel, or closing the window -- stops capture, training and preview and leaves the
models folder untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from station.app.context import StationContext
from station.app.teach_session import (
    RECOMMENDED_IMAGES,
    TeachSession,
    accepts_device,
    detector_params,
)
from station.core.progress import Progress
from station.detectors.base import available_detectors
from station.gui.image_view import ImageCanvas
from station.gui.live import FrameGrabber, LiveSession
from station.gui.roi_editor import RoiEditor
from station.gui.widgets import ProgressLine, ThumbnailStrip, VerdictLabel
from station.gui.workers import Job

log = logging.getLogger(__name__)

GOOD_DEMO_SOURCE = "synthetic://demo?fps=30&defect_rate=0"
ErrorReporter = Callable[[str, str, str], None]  # where, message, details


class _Page(QWizardPage):
    def __init__(self, wizard: TeachWizard) -> None:
        super().__init__()
        self.w = wizard

    @property
    def session(self) -> TeachSession:
        return self.w.session


class PartPage(_Page):
    def __init__(self, wizard: TeachWizard) -> None:
        super().__init__(wizard)
        self.setTitle("1  Part and camera")
        self.setSubTitle("Name the part (it becomes the recipe's folder) and choose where its images come from.")
        self.name = QLineEdit()
        self.name.setPlaceholderText("e.g. washer-m8")
        self.hint = QLabel()
        self.source = QComboBox()
        self.source.setEditable(True)
        self.pixel_size = QDoubleSpinBox()
        self.pixel_size.setDecimals(4)
        self.pixel_size.setRange(0.0, 100.0)
        self.pixel_size.setSingleStep(0.01)
        self.pixel_size.setSpecialValueText("unknown")
        self.pixel_size.setSuffix(" mm/pixel")
        form = QFormLayout(self)
        form.addRow("Part name", self.name)
        form.addRow("", self.hint)
        form.addRow("Image source", self.source)
        form.addRow("Pixel size", self.pixel_size)
        note = QLabel("With the pixel size known, defect areas can be set in mm². The demo part: 0.2 mm/pixel.")
        note.setWordWrap(True)
        form.addRow("", note)
        self.name.textChanged.connect(self._name_changed)
        self.source.currentTextChanged.connect(lambda _t: self.completeChanged.emit())

    def initializePage(self) -> None:
        s = self.session
        self.name.setText(s.part_name)
        self.source.clear()
        for uri in [s.source_uri, GOOD_DEMO_SOURCE, *self.w.ctx.settings.recent_sources]:
            if self.source.findText(uri) < 0:
                self.source.addItem(uri)
        self.source.setCurrentText(s.source_uri)
        self.pixel_size.setValue(s.pixel_size_mm or 0.0)
        self._name_changed(self.name.text())

    def _name_changed(self, text: str) -> None:
        self.session.part_name = text.strip()
        problem = self.session.name_problem()
        if problem:
            self.hint.setText(f"<span style='color:#a50e0e'>{problem}</span>")
        else:
            v = self.session.version_to_save()
            extra = " (the part exists: this adds a new version, older ones stay)" if v > 1 else ""
            self.hint.setText(f"will be saved as <b>{self.session.part_name} v{v}</b>{extra}")
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.session.name_problem() is None and bool(self.source.currentText().strip())

    def validatePage(self) -> bool:
        self.session.source_uri = self.source.currentText().strip()
        self.session.pixel_size_mm = self.pixel_size.value() or None
        return True


class SamplesPage(_Page):
    def __init__(self, wizard: TeachWizard) -> None:
        super().__init__(wizard)
        self.setTitle("2  Good samples")
        self.setSubTitle("Show the camera good parts only -- capture them live, or import a folder of good images. "
                         f"{RECOMMENDED_IMAGES} or more give a steadier threshold; a share is held out to set it.")
        self.capture_button = QPushButton("Start capture")
        self.capture_button.setCheckable(True)
        self.target = QSpinBox()
        self.target.setRange(4, 10000)
        self.target.setValue(30)
        self.target.setPrefix("until ")
        self.target.setSuffix(" samples")
        self.import_button = QPushButton("Import folder…")
        self.clear_button = QPushButton("Clear")
        self.counter = QLabel()
        self.counter.setStyleSheet("font-size:14pt;")
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.strip = ThumbnailStrip(side=72, max_items=400)
        self.progress = ProgressLine()
        self.progress.hide()
        row = QHBoxLayout()
        for w in (self.capture_button, self.target, self.import_button, self.clear_button):
            row.addWidget(w)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.counter)
        layout.addWidget(self.strip)
        layout.addWidget(self.progress)
        layout.addWidget(self.notes)
        layout.addStretch(1)
        self.grabber: FrameGrabber | None = None
        self.capture_rate = 10.0  # samples a second at most: time to turn or swap the part between them
        self.import_job: Job | None = None
        self.skipped_defective = 0
        self.timer = QTimer(self)
        self.timer.setInterval(100)
        self.timer.timeout.connect(self._poll)
        self.capture_button.toggled.connect(self._toggle_capture)
        self.import_button.clicked.connect(self._choose_folder)
        self.clear_button.clicked.connect(self._clear)
        self.progress.cancel_requested.connect(lambda: self.import_job and self.import_job.cancel())

    def initializePage(self) -> None:
        self._refresh()

    @property
    def busy(self) -> bool:
        return (self.grabber is not None and self.grabber.running) or (
            self.import_job is not None and self.import_job.running)

    def _refresh(self) -> None:
        n = len(self.session.images)
        train, val = self.session.split() if n >= 2 else ([], [])
        text = f"{n} good samples"
        if n >= 2:
            text += f"  ({len(train)} to learn from, {len(val)} held out for the threshold)"
        self.counter.setText(text)
        notes = []
        if self.skipped_defective:
            notes.append(f"{self.skipped_defective} defective demo part(s) skipped (the demo source marks them).")
        notes += self.session.problems[-5:]
        problem = self.session.samples_problem()
        if problem:
            notes.insert(0, problem)
        self.notes.setText("\n".join(notes))
        self.completeChanged.emit()

    def add_frame_image(self, image, origin: str) -> None:
        if self.session.add_image(image, origin):
            self.strip.append(image, str(len(self.session.images)), len(self.session.images) - 1)

    def _toggle_capture(self, on: bool) -> None:
        if on:
            self.start_capture()
        else:
            self.stop_capture()

    def start_capture(self) -> None:
        if self.grabber is not None and self.grabber.running:
            return
        self.grabber = FrameGrabber(self.session.source_uri, max_rate=self.capture_rate)
        self.grabber.start()
        self.timer.start()
        self.capture_button.setChecked(True)
        self.capture_button.setText("Stop capture")
        self.import_button.setEnabled(False)
        self._refresh()

    def stop_capture(self) -> None:
        if self.grabber is not None:
            self.grabber.stop()
            self._poll()
        self.timer.stop()
        self.capture_button.blockSignals(True)
        self.capture_button.setChecked(False)
        self.capture_button.blockSignals(False)
        self.capture_button.setText("Start capture")
        self.import_button.setEnabled(True)
        self._refresh()

    def _poll(self) -> None:
        g = self.grabber
        if g is None:
            return
        for err in g.drain_errors():
            self.w.report(err.where, err.message, err.details)
        for frame in g.take():
            if len(self.session.images) >= self.target.value():
                break
            label = frame.meta.get("label")
            if label is not None and label != "good":
                self.skipped_defective += 1
                continue
            self.add_frame_image(frame.image, f"frame {frame.frame_id} of {self.session.source_uri}")
        if len(self.session.images) >= self.target.value() or (g.finished and not g.running):
            if g.running or self.timer.isActive():
                self.grabber.stop()
                self.timer.stop()
                QTimer.singleShot(0, self.stop_capture)
        self._refresh()

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of good images (or an MVTec AD category)")
        if folder:
            self.import_folder(folder)

    def import_folder(self, folder: str | Path) -> Job:
        first_new = len(self.session.images)
        self.import_button.setEnabled(False)
        self.capture_button.setEnabled(False)
        self.progress.begin("importing")
        job = Job(lambda progress, cancel: self.session.import_folder(folder, progress, cancel), "import", self)
        job.progress.connect(self.progress.update_progress)

        def done(*_a: Any) -> None:
            self.progress.end()
            self.progress.hide()
            self.import_button.setEnabled(True)
            self.capture_button.setEnabled(True)
            for i in range(first_new, len(self.session.images)):
                self.strip.append(self.session.images[i], str(i + 1), i)
            self._refresh()

        job.finished.connect(done)
        job.cancelled.connect(done)
        job.failed.connect(lambda msg, tb: (done(), self.w.report("import", msg, tb)))
        self.import_job = job.start()
        self._refresh()
        return job

    def _clear(self) -> None:
        self.session.clear_images()
        self.skipped_defective = 0
        self.strip.clear()
        self._refresh()

    def isComplete(self) -> bool:
        return self.session.samples_problem() is None and not self.busy

    def shutdown(self) -> None:
        if self.grabber is not None:
            self.grabber.stop(0.5)
        self.timer.stop()
        if self.import_job is not None:
            self.import_job.cancel()


class DetectorPage(_Page):
    def __init__(self, wizard: TeachWizard) -> None:
        super().__init__(wizard)
        self.setTitle("3  Region and detector")
        self.setSubTitle("Choose the part of the image to inspect, how the station learns the part, and its "
                         "main parameters.")
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setMinimumHeight(150)
        self.params_box = QGroupBox("Parameters")
        self.params_form = QFormLayout(self.params_box)
        self.validation = QDoubleSpinBox()
        self.validation.setRange(0.05, 0.5)
        self.validation.setSingleStep(0.05)
        self.validation.setDecimals(2)
        self.validation_label = QLabel()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.params_box)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        left = QVBoxLayout()
        left.addWidget(self.list, 2)
        left.addWidget(scroll, 3)
        row = QFormLayout()
        row.addRow("Held out for the threshold", self.validation)
        row.addRow("", self.validation_label)
        left.addLayout(row)
        self.roi_editor = RoiEditor()
        roi_box = QGroupBox("Region of interest")
        QVBoxLayout(roi_box).addWidget(self.roi_editor)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 1)
        layout.addWidget(roi_box, 1)
        self.editors: dict[str, tuple[QWidget, type]] = {}
        # kind -> its parameters, or why it cannot be used here. Loading a detector imports its
        # module (torch for the deep ones: seconds), so it happens on a worker, once, on selection.
        self.params: dict[str, list | str] = {}
        self.loading: dict[str, Job] = {}
        self.list.currentItemChanged.connect(lambda cur, _prev: self._select(cur))
        self.validation.valueChanged.connect(self._validation_changed)

    def initializePage(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        current = None
        for info in available_detectors():  # the registry: titles and summaries, nothing imported
            item = QListWidgetItem(f"{info.title}\n{info.summary}")
            item.setData(Qt.ItemDataRole.UserRole, info.kind)
            self.list.addItem(item)
            self._mark(item)
            if info.kind == self.session.detector_kind:
                current = item
        if current is None and self.list.count():
            current = self.list.item(0)
        self.list.blockSignals(False)
        if current is not None:
            self.list.setCurrentItem(current)
            self._select(current)
        self.validation.setValue(self.session.validation_fraction)
        self._validation_changed(self.session.validation_fraction)
        self.roi_editor.load(self.session)

    def _mark(self, item: QListWidgetItem) -> None:
        kind = item.data(Qt.ItemDataRole.UserRole)
        info = next(i for i in available_detectors() if i.kind == kind)
        why = self.params.get(kind)
        item.setText(f"{info.title}\n{info.summary}" + (f"\nnot available here: {why}" if isinstance(why, str) else ""))
        item.setForeground(QBrush(QColor("#80868b" if isinstance(why, str) else "#202124")))

    def select_kind(self, kind: str) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == kind:
                self.list.setCurrentRow(i)
                return
        raise KeyError(kind)

    @property
    def loaded(self) -> bool:
        """The selected detector's parameters are known (or why it is unavailable)."""
        return self.session.detector_kind in self.params

    def _clear_form(self) -> None:
        while self.params_form.rowCount():
            self.params_form.removeRow(0)
        self.editors.clear()

    def _select(self, item: QListWidgetItem | None) -> None:
        self._clear_form()
        if item is None:
            return
        kind = item.data(Qt.ItemDataRole.UserRole)
        if kind != self.session.detector_kind:
            self.session.params = {}
        self.session.detector_kind = kind
        if kind not in self.params:
            self.params_form.addRow(QLabel("loading the detector…"))
            if kind not in self.loading:
                job = Job(lambda _p, _c: detector_params(kind), f"load {kind}", self)
                job.finished.connect(lambda specs, k=kind: self._loaded(k, specs))
                job.failed.connect(lambda msg, _tb, k=kind: self._loaded(k, msg))
                self.loading[kind] = job.start()
            self.completeChanged.emit()
            return
        self._build_form(kind)

    def _loaded(self, kind: str, specs_or_reason: list | str) -> None:
        self.loading.pop(kind, None)
        self.params[kind] = specs_or_reason
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == kind:
                self._mark(self.list.item(i))
        if kind == self.session.detector_kind:
            self._clear_form()
            self._build_form(kind)

    def _build_form(self, kind: str) -> None:
        specs = self.params[kind]
        if isinstance(specs, str):
            self.params_form.addRow(QLabel(f"not available here: {specs}"))
            self.completeChanged.emit()
            return
        for spec in specs:
            value = self.session.params.get(spec.name, spec.default)
            if spec.kind is bool:
                editor: QWidget = QCheckBox()
                editor.setChecked(bool(value))
            elif spec.kind is int:
                editor = QSpinBox()
                editor.setRange(-1_000_000, 1_000_000)
                editor.setValue(int(value))
            elif spec.kind is float:
                editor = QDoubleSpinBox()
                editor.setDecimals(4)
                editor.setRange(-1e9, 1e9)
                editor.setValue(float(value))
            else:
                editor = QLineEdit(str(value))
            self.editors[spec.name] = (editor, spec.kind)
            self.params_form.addRow(spec.name.replace("_", " "), editor)
        if not self.editors:
            self.params_form.addRow(QLabel("no parameters"))
        self.completeChanged.emit()

    def _validation_changed(self, value: float) -> None:
        self.session.validation_fraction = float(value)
        if len(self.session.images) >= 2:
            train, val = self.session.split()
            self.validation_label.setText(f"{len(train)} samples to learn from, {len(val)} held out")

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, (editor, kind) in self.editors.items():
            if kind is bool:
                out[name] = editor.isChecked()
            elif kind in (int, float):
                out[name] = kind(editor.value())
            else:
                out[name] = editor.text()
        return out

    def isComplete(self) -> bool:
        return isinstance(self.params.get(self.session.detector_kind), list)

    def validatePage(self) -> bool:
        self.session.params = self.values()
        self.session.invalidate_training()
        return True


class TrainPage(_Page):
    def __init__(self, wizard: TeachWizard) -> None:
        super().__init__(wizard)
        self.setTitle("4  Training")
        self.setSubTitle("The detector learns the good samples, then scores the held-out ones to set the threshold.")
        self.progress = ProgressLine()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.again = QPushButton("Train again")
        self.again.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.again, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)
        self.job: Job | None = None
        self.progress.cancel_requested.connect(self.cancel)
        self.again.clicked.connect(self.start)

    def initializePage(self) -> None:
        if self.session.result is None:
            self.start()

    def start(self) -> None:
        if self.job is not None and self.job.running:
            return
        s = self.session
        s.invalidate_training()
        runtime = None
        if accepts_device(s.detector_kind):
            from station.core.devices import pick_device

            runtime = {"device": pick_device(self.w.ctx.device).device}
        self.again.hide()
        self.progress.begin("starting")
        self.status.setText(f"Teaching {s.detector_kind} on {len(s.split()[0])} samples…")
        job = Job(lambda progress, cancel: s.train(progress, cancel, runtime), "training", self)
        job.progress.connect(self._progress)
        job.finished.connect(self._finished)
        job.failed.connect(self._failed)
        job.cancelled.connect(self._cancelled)
        self.job = job.start()
        self.completeChanged.emit()

    def _progress(self, p: Progress) -> None:
        self.progress.update_progress(p)

    def _finished(self, result: Any) -> None:
        est = result.estimate
        fit = result.recipe.training.get("fit_seconds") or 0.0
        self.progress.end("done")
        self.status.setText(f"Trained in {fit:.1f} s. Threshold {est.threshold:.5g} for a minimum defect area of "
                            f"{est.min_defect_area_px:g} pixels (set it on the next page).")
        self.completeChanged.emit()

    def _failed(self, message: str, details: str) -> None:
        self.progress.end("failed")
        self.status.setText(f"<span style='color:#a50e0e'>Training failed: {message}</span>")
        self.again.show()
        self.w.report("training", message, details)
        self.completeChanged.emit()

    def _cancelled(self) -> None:
        self.progress.end("cancelled")
        self.status.setText("Training cancelled. Nothing was saved.")
        self.again.show()
        self.completeChanged.emit()

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def cleanupPage(self) -> None:  # Back: stop training
        self.cancel()

    def isComplete(self) -> bool:
        return self.session.result is not None and not (self.job is not None and self.job.running)


class ThresholdPage(_Page):
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
        self.preview_view = ImageCanvas()
        self.preview_view.setMinimumSize(200, 200)
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
        self.preview = LiveSession(self.preview_source.currentText().strip(), recipe, detector=s.result.detector)
        self._preview_generation = self.preview.generation
        self.preview.start()
        self.timer.start()
        self.preview_button.setChecked(True)
        self.preview_button.setText("Stop preview")

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
        if latest is None or latest.seq == self._preview_seq or latest.generation < self._preview_generation:
            if not p.running:
                self.stop_preview()
            return
        self._preview_seq = latest.seq
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


class SavePage(_Page):
    def __init__(self, wizard: TeachWizard) -> None:
        super().__init__(wizard)
        self.setTitle("6  Save")
        self.setSubTitle("Finish saves the recipe as a new version; older versions stay. Cancel discards everything.")
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.use_now = QCheckBox("Inspect with this recipe now")
        self.use_now.setChecked(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.use_now)
        layout.addStretch(1)
        self.setFinalPage(True)

    def initializePage(self) -> None:
        s = self.session
        est = s.estimate
        area = f"{est.min_defect_area_px:g} pixels"
        if s.pixel_size_mm:
            area += f" ({s.area_from_px(est.min_defect_area_px, 'mm2'):.3g} mm²)"
        train, val = s.split()
        region = self.w.detector_page.roi_editor.describe(s.roi) if s.roi else "whole image"
        self.summary.setText(
            f"<p><b>{s.part_name} v{s.version_to_save()}</b> in {s.models_dir / s.part_name}</p>"
            f"<table><tr><td>detector</td><td>{s.detector_kind} {s.params or ''}</td></tr>"
            f"<tr><td>good samples</td><td>{len(train)} learned, {len(val)} held out</td></tr>"
            f"<tr><td>region of interest</td><td>{region}</td></tr>"
            f"<tr><td>minimum defect area</td><td>{area}</td></tr>"
            f"<tr><td>threshold</td><td>{est.threshold:.5g}</td></tr>"
            f"<tr><td>source</td><td>{s.source_uri}</td></tr></table>")


class TeachWizard(QWizard):
    """Signals ``saved(path, use_now)`` after Finish and ``closed()`` after Finish or Cancel."""

    saved = Signal(object, bool)
    closed = Signal()

    def __init__(self, ctx: StationContext, report: ErrorReporter | None = None,
                 session: TeachSession | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self._report = report
        self.session = session or TeachSession(models_dir=ctx.models_dir)
        self.setWindowTitle("Teach a part")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.part_page = PartPage(self)
        self.samples_page = SamplesPage(self)
        self.detector_page = DetectorPage(self)
        self.train_page = TrainPage(self)
        self.threshold_page = ThresholdPage(self)
        self.save_page = SavePage(self)
        for page in (self.part_page, self.samples_page, self.detector_page, self.train_page,
                     self.threshold_page, self.save_page):
            self.addPage(page)
        self._closed = False

    def report(self, where: str, message: str, details: str = "") -> None:
        if self._report is not None:
            self._report(where, message, details)
        else:
            log.error("%s: %s", where, message)

    def shutdown(self, timeout: float = 1.5) -> bool:
        """Stop every worker of the wizard; True if all ended within ``timeout``."""
        self.samples_page.shutdown()
        self.threshold_page.shutdown()
        ok = True
        for job in (self.train_page.job, self.samples_page.import_job):
            if job is not None:
                job.cancel()
                ok = job.wait(timeout) and ok
        return ok

    def accept(self) -> None:
        self.threshold_page.stop_preview()
        try:
            folder = self.session.save(self.ctx.audit, role=self.ctx.role)
        except Exception as exc:  # noqa: BLE001 - e.g. a full disk: say so, keep the wizard open
            log.exception("saving the recipe failed")
            QMessageBox.critical(self, "Recipe not saved", f"The recipe could not be saved:\n{exc}")
            return
        self.shutdown()
        self.saved.emit(folder, self.save_page.use_now.isChecked())
        self._finish()
        super().accept()

    def reject(self) -> None:
        self.shutdown()
        self._finish()
        super().reject()

    def _finish(self) -> None:
        if not self._closed:
            self._closed = True
            self.closed.emit()
