"""Page 4: training on a worker, with progress and cancel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout

from station.core.progress import Progress
from station.gui.teach.common import SessionPage
from station.gui.widgets import ProgressLine
from station.gui.workers import Job

if TYPE_CHECKING:
    from station.gui.teach.wizard import TeachWizard

class TrainPage(SessionPage):
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
        self._settled = True  # False from a start until the job's last signal is handled here
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
        device = self.w.ctx.device  # picked on the worker, for detectors that use one
        self.again.hide()
        self._settled = False
        self.progress.begin("starting")
        self.status.setText(f"Teaching {s.detector_kind} on {len(s.split()[0])} samples…")
        job = Job(lambda progress, cancel: s.train(progress, cancel, device), "training", self)
        job.progress.connect(self._progress)
        job.finished.connect(self._finished)
        job.failed.connect(self._failed)
        job.cancelled.connect(self._cancelled)
        self.job = job.start()
        self.completeChanged.emit()

    def _progress(self, p: Progress) -> None:
        self.progress.update_progress(p)

    def _finished(self, result: Any) -> None:
        self._settled = True
        est = result.estimate
        fit = result.recipe.training.get("fit_seconds") or 0.0
        self.progress.end("done")
        self.status.setText(f"Trained in {fit:.1f} s. Threshold {est.threshold:.5g} for a minimum defect area of "
                            f"{est.min_defect_area_px:g} pixels (set it on the next page).")
        self.completeChanged.emit()

    def _failed(self, message: str, details: str) -> None:
        self._settled = True
        self.progress.end("failed")
        self.status.setText(f"<span style='color:#a50e0e'>Training failed: {message}</span>")
        self.again.show()
        self.w.report("training", message, details)
        self.completeChanged.emit()

    def _cancelled(self) -> None:
        self._settled = True
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
        # settled on the GUI thread, when the job's last signal has been handled: the worker sets the
        # session's result and ends before its queued `finished` reaches this page
        return self.session.result is not None and self._settled
