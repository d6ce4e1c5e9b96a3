"""Page 2: good samples, captured live from the source or imported from a folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout

from station.app.teach_session import RECOMMENDED_IMAGES
from station.gui.teach.common import SessionPage
from station.gui.widgets import ProgressLine, ThumbnailStrip
from station.gui.workers import Job
from station.live.capture import FrameGrabber

if TYPE_CHECKING:
    from station.gui.teach.wizard import TeachWizard

log = logging.getLogger(__name__)


class SamplesPage(SessionPage):
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
        if self.session.add_image(image, origin, source=f"captured live from {self.session.source_uri}"):
            self.strip.append(image, str(len(self.session.images)), len(self.session.images) - 1)

    def _toggle_capture(self, on: bool) -> None:
        if on:
            self.start_capture()
        else:
            self.stop_capture()

    def start_capture(self) -> None:
        if self.grabber is not None and self.grabber.running:
            return
        self.grabber = FrameGrabber(self.session.capture_uri(), max_rate=self.capture_rate)
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
