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

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget, QWizard

from station.app.context import StationContext
from station.app.teach_session import TeachSession
from station.gui.teach.common import ErrorReporter
from station.gui.teach.detector_page import DetectorPage
from station.gui.teach.part_page import PartPage
from station.gui.teach.samples_page import SamplesPage
from station.gui.teach.save_page import SavePage
from station.gui.teach.threshold_page import ThresholdPage
from station.gui.teach.train_page import TrainPage

log = logging.getLogger(__name__)


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
        self._kept_focus: QWidget | None = None
        for page in (self.part_page, self.samples_page, self.detector_page, self.train_page,
                     self.threshold_page, self.save_page):
            # QWizard answers completeChanged by hiding its pages for a moment (an anti-flicker
            # widget); Qt then moves the keyboard focus to the next widget of the *window* -- for
            # the wizard embedded in the main window, the tab bar -- and the keys typed next go
            # there (typing "bottle" in the part name gave "b"). The slot connected before
            # addPage() runs before QWizard's own and notes the focus; the one after gives it back.
            page.completeChanged.connect(self._note_focus)
            self.addPage(page)
            page.completeChanged.connect(self._restore_focus)
        self._closed = False

    def _note_focus(self) -> None:
        fw = QApplication.focusWidget()
        self._kept_focus = fw if fw is not None and self.isAncestorOf(fw) else None

    def _restore_focus(self) -> None:
        kept, self._kept_focus = self._kept_focus, None
        if kept is not None and kept.isVisible() and QApplication.focusWidget() is not kept:
            kept.setFocus(Qt.FocusReason.OtherFocusReason)

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
        for job in (self.train_page.job, self.samples_page.import_job, self.part_page.picker.job,
                    self.part_page.camera_settings.job):
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
