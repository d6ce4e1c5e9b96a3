"""The station's main window: assembly of the three modes, the status bar, engineer mode, the error
bar, the start-up on the embedded default (the demo part, taught on first start), and the window's
size: it fits any screen from 1024x768 up, and in the operator's full-screen (kiosk) mode only an
engineer leaves full screen or closes the station.

The window holds no algorithm and no model state of its own: the panels bind to the shared
:class:`~station.app.context.StationContext` and run their work on workers.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from station.app.context import StationContext
from station.app.demo import ensure_demo_recipe
from station.app.line_service import LineService
from station.gui.engineer import EngineerGate
from station.gui.inspect_mode import InspectPanel
from station.gui.lineio_page import LineIOPage
from station.gui.review_mode import ReviewPanel
from station.gui.teach_mode import TeachPanel
from station.gui.widgets import ErrorBar
from station.gui.workers import Job

log = logging.getLogger(__name__)

CLOSE_BUDGET_S = 1.5  # everything stops within this; the process exits well inside 2 s
PREFERRED_SIZE = (1280, 820)  # on screens that have room; smaller ones get the window maximized
KIOSK_REFUSED = "operator full screen: only an engineer can leave it or close the station (Engineer mode… first)"


def initial_size(available: QSize) -> tuple[QSize, bool]:
    """The window's first size on a screen with ``available`` room, and whether to maximize it."""
    w, h = PREFERRED_SIZE
    if available.width() <= 0 or available.height() <= 0:
        return QSize(w, h), False
    fits = available.width() >= w and available.height() >= h
    return QSize(min(w, available.width()), min(h, available.height())), not fits


class LockedPage(QWidget):
    """What operators see in an engineer-only mode."""

    def __init__(self, what: str, unlock, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        label = QLabel(f"<h2>{what}</h2><p>This mode is for engineers. Unlock engineer mode to use it.</p>")
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        button = QPushButton("Unlock engineer mode…")
        button.clicked.connect(unlock)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(label)
        layout.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)


def _guarded(locked: QWidget, content: QWidget) -> QStackedWidget:
    stack = QStackedWidget()
    stack.addWidget(locked)
    stack.addWidget(content)
    return stack


class MainWindow(QMainWindow):
    """``booted()`` once the start-up (demo teaching included) has settled."""

    booted = Signal()

    def __init__(self, ctx: StationContext, source: str | None = None, recipe: str | None = None,
                 auto_start: bool | None = None, launched_at: float | None = None,
                 kiosk: bool | None = None) -> None:
        super().__init__()
        self.ctx = ctx
        self.launched_at = launched_at if launched_at is not None else time.monotonic()
        self.first_verdict_s: float | None = None  # seconds from launch to the first verdict shown
        self.close_seconds: float | None = None
        self.demo_job: Job | None = None
        self._auto_start = ctx.settings.auto_start if auto_start is None else auto_start
        self._recipe_arg = recipe
        if source:
            ctx.settings.remember_source(source)
        self.setWindowTitle("Inspection station")
        screen = self.screen()
        size, self._maximize = initial_size(screen.availableGeometry().size() if screen else QSize())
        self.resize(size)
        self.kiosk = ctx.settings.kiosk if kiosk is None else bool(kiosk)
        self._may_close = False  # set by quit_station(): a signal or a service manager always closes

        self.errors = ErrorBar()
        self.results, self.archive = self._open_logs()
        self.gate = EngineerGate(ctx, self)
        self.inspect = InspectPanel(ctx, self.report, results=self.results, archive=self.archive)
        self.teach = TeachPanel(ctx, self.report)
        self.review = ReviewPanel(ctx, self.report)
        self.teach_stack = _guarded(LockedPage("Teach", self.request_unlock), self.teach)
        self.review_stack = _guarded(LockedPage("Review", self.request_unlock), self.review)
        self.line = LineService(ctx.paths.home, ctx.paths.results_db, ctx.audit)
        self.line_page = LineIOPage(self.line, pipeline=lambda: getattr(self.inspect.session, "pipeline", None))
        self.line_stack = _guarded(LockedPage("Line I/O", self.request_unlock), self.line_page)
        threading.Thread(target=self.line.start, name="line-io-start", daemon=True).start()  # servers: not on the GUI thread

        self.tabs = QTabWidget()
        self.tabs.addTab(self.inspect, "Inspect")
        self.tabs.addTab(self.teach_stack, "Teach")
        self.tabs.addTab(self.review_stack, "Review")
        self.tabs.addTab(self.line_stack, "Line I/O")
        self.engineer_button = QPushButton()
        self.engineer_button.clicked.connect(self._engineer_clicked)
        self.password_button = QPushButton("Change password…")  # shown only while engineer mode is on
        self.password_button.clicked.connect(lambda: self.gate.request_password_change(self))
        self.kiosk_button = QPushButton("Operator full screen")  # shown only while engineer mode is on
        self.kiosk_button.setCheckable(True)
        self.kiosk_button.setChecked(self.kiosk)
        self.kiosk_button.setToolTip("Kiosk: the window fills the screen and only an engineer can leave it "
                                     "or close the station (remembered)")
        self.kiosk_button.toggled.connect(self._kiosk_toggled)
        corner = QWidget()
        corner_layout = QHBoxLayout(corner)
        corner_layout.setContentsMargins(0, 0, 0, 0)
        corner_layout.addWidget(self.kiosk_button)
        corner_layout.addWidget(self.password_button)
        corner_layout.addWidget(self.engineer_button)
        self.tabs.setCornerWidget(corner, Qt.Corner.TopRightCorner)
        font = self.tabs.tabBar().font()
        font.setPointSize(font.pointSize() + 2)
        self.tabs.tabBar().setFont(font)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.errors)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        sb = self.statusBar()
        self.status_camera = QLabel()
        self.status_device = QLabel()
        self.status_recipe = QLabel()
        self.status_role = QLabel()
        for w in (self.status_camera, self.status_device, self.status_recipe, self.line_page.status_label,
                  self.status_role):
            w.setContentsMargins(8, 0, 8, 0)
            sb.addPermanentWidget(w)

        self.gate.changed.connect(self._engineer_changed)
        self.inspect.status_changed.connect(self.refresh_status)
        self.inspect.first_verdict.connect(self._first_verdict)
        self.inspect.problem_resolved.connect(self.errors.resolve)  # the banner goes once the cause is fixed
        self.teach.recipe_saved.connect(self._recipe_saved)  # the lists follow ctx.events.recipes_changed
        self.teach.reteach.current = lambda: self.inspect.recipe_path
        self.teach.reteach.choose = lambda path, note: self.inspect.choose_recipe(path, note=note)
        self.inspect.recipe_changed.connect(lambda _p: self.teach.reteach.refresh())
        self._engineer_changed(ctx.engineer.unlocked)
        for problem in ctx.problems:
            self.report("settings", problem, "")
        QTimer.singleShot(0, self.boot)

    # --- services ---------------------------------------------------------------------------------
    def _open_logs(self):
        results = archive = None
        try:
            from station.live.results_db import ResultsLog

            results = ResultsLog(self.ctx.paths.results_db)
        except Exception as exc:  # noqa: BLE001 - inspect without a log rather than not at all
            self.report("results log", f"results are not logged: {exc}", "")
        if self.ctx.settings.archive_quota_mb > 0:
            try:
                from station.live.archive import ImageArchive

                archive = ImageArchive(self.ctx.paths.archive, quota_mb=self.ctx.settings.archive_quota_mb)
            except Exception as exc:  # noqa: BLE001
                self.report("archive", f"NG images are not archived: {exc}", "")
        return results, archive

    def report(self, where: str, message: str, details: str = "") -> None:
        self.errors.report(where, message, details)

    # --- start-up ---------------------------------------------------------------------------------
    def boot(self) -> None:
        """Use the recipe given or remembered; with none, the demo recipe (taught now if needed)."""
        recipe = self._recipe_arg or self.ctx.settings.recipe_path
        if recipe:
            if not Path(recipe).exists():
                self.report("recipe", f"the recipe {recipe} is not there any more; an engineer picks another one", "")
                self.booted.emit()
                return
            self.inspect.set_recipe(str(recipe))
            if self._auto_start:
                self.inspect.start()
            self.booted.emit()
            return
        self.start_demo()

    def start_demo(self) -> Job:
        kind = self.ctx.settings.demo_detector
        models, audit = self.ctx.models_dir, self.ctx.audit
        self.inspect.busy.begin("preparing the demo part")
        job = Job(lambda progress, cancel: ensure_demo_recipe(models, kind, progress, cancel, audit), "demo", self)
        job.progress.connect(self.inspect.busy.update_progress)

        def finished(folder: Path) -> None:
            self.inspect.busy.end()
            self.inspect.busy.hide()
            self.inspect.set_recipe(str(folder))
            self.ctx.recipe_saved(folder)
            if self._auto_start:
                self.inspect.start()
            self.booted.emit()

        def failed(message: str, details: str) -> None:
            self.inspect.busy.end("the demo part could not be taught")
            self.report("demo", f"the demo part could not be taught: {message}", details)
            self.booted.emit()

        job.finished.connect(finished)
        job.failed.connect(failed)
        job.cancelled.connect(lambda: self.inspect.busy.hide())
        self.demo_job = job.start()
        return job

    def _first_verdict(self, _since_start: float) -> None:
        if self.first_verdict_s is None:
            self.first_verdict_s = time.monotonic() - self.launched_at
            log.info("first verdict shown %.2f s after launch", self.first_verdict_s)

    # --- engineer mode ----------------------------------------------------------------------------
    def request_unlock(self) -> None:
        self.gate.request_unlock(self)

    def _engineer_clicked(self) -> None:
        if self.ctx.engineer.unlocked:
            self.gate.lock()
        else:
            self.request_unlock()

    def _engineer_changed(self, unlocked: bool) -> None:
        self.engineer_button.setText("Engineer mode: on (lock)" if unlocked else "Operator  |  Engineer mode…")
        self.password_button.setVisible(unlocked)
        self.kiosk_button.setVisible(unlocked)
        self.inspect.set_locked(not unlocked)
        self.teach_stack.setCurrentIndex(1 if unlocked else 0)
        self.review_stack.setCurrentIndex(1 if unlocked else 0)
        self.line_stack.setCurrentIndex(1 if unlocked else 0)
        self.refresh_status()

    # --- recipes ----------------------------------------------------------------------------------
    def _recipe_saved(self, path: str, use_now: bool) -> None:
        self.ctx.recipe_saved(path)
        if use_now:
            self.inspect.choose_recipe(path, note="saved in the teach-in wizard")
            self.tabs.setCurrentWidget(self.inspect)
            if not self.inspect.running:
                self.inspect.start()

    # --- status bar -------------------------------------------------------------------------------
    def refresh_status(self) -> None:
        self.status_camera.setText(self.inspect.camera_state())
        self.status_device.setText(f"device: {self.inspect.device_text()}")
        self.status_recipe.setText(f"recipe: {self.inspect.recipe_text()}")
        self.status_role.setText("engineer" if self.ctx.engineer.unlocked else "operator")

    # --- closing ----------------------------------------------------------------------------------
    def shutdown(self, budget: float = CLOSE_BUDGET_S) -> bool:
        """Stop every worker within ``budget`` seconds; True if all ended. Recipes are written atomically
        and the results log commits row by row, so whatever is cut short leaves nothing corrupt."""
        t0 = time.monotonic()

        def left() -> float:
            return max(0.05, budget - (time.monotonic() - t0))

        if self.demo_job is not None:
            self.demo_job.cancel()
        self.review.cancel()
        ok = self.inspect.stop(timeout=left() * 0.6)
        self.line.stop()
        ok = self.teach.shutdown(left() * 0.5) and ok
        ok = self.review.shutdown(left() * 0.5) and ok
        if self.demo_job is not None:
            ok = self.demo_job.wait(left() * 0.5) and ok
        if self.archive is not None:
            self.archive.close(timeout=min(0.3, left()))
        if self.results is not None:
            try:
                self.results.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("closing the results log: %s", exc)
            self.results = None
        self.ctx.save_settings()
        self.close_seconds = time.monotonic() - t0
        log.info("station closed in %.2f s (%s)", self.close_seconds, "clean" if ok else "workers still running")
        return ok

    # --- window size and the kiosk mode -----------------------------------------------------------
    def show_station(self) -> None:
        """Show the window as the station starts: full screen in kiosk mode, else sized to the screen."""
        if self.kiosk:
            self.enter_full_screen()
        elif self._maximize:
            self.showMaximized()
        else:
            self.show()

    def _kiosk_toggled(self, on: bool) -> None:
        if not self.ctx.engineer.unlocked:  # the button is hidden then; never let an operator through
            self.kiosk_button.setChecked(self.kiosk)
            return
        self.kiosk = bool(on)
        self.ctx.set_kiosk(self.kiosk)
        if self.kiosk:
            self.enter_full_screen()
        else:
            self.showNormal()

    def enter_full_screen(self) -> None:
        # the screen's whole geometry first: without a window manager (a line PC's bare X server)
        # the full-screen request alone leaves the window at its old size
        screen = self.screen()
        if screen is not None:
            self.setGeometry(screen.geometry())
        self.showFullScreen()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        # a window manager's shortcut may leave full screen; in kiosk mode only an engineer may
        if (event.type() == QEvent.Type.WindowStateChange and self.kiosk and not self.isFullScreen()
                and not self.ctx.engineer.unlocked and self.isVisible()):
            QTimer.singleShot(0, self.enter_full_screen)

    def quit_station(self) -> None:
        """Close whatever the mode (Ctrl-C, SIGTERM from a service manager, the installer)."""
        self._may_close = True
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if self.kiosk and not self._may_close and not self.ctx.engineer.unlocked:
            event.ignore()
            self.report("window", KIOSK_REFUSED, "")
            return
        if self.close_seconds is None:
            self.shutdown()
        event.accept()
