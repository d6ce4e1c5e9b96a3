"""Inspect mode, the operator's screen: the live image with heatmap and defect outlines, a large OK/NG,
the shift's counts and yield, frame rates, latency and dropped frames, and the last NG parts.

The panel owns one :class:`~station.live.session.LiveSession` at a time and *polls* it: a fast timer
shows the newest inspected frame if there is a new one (older generations dropped), a slow timer
refreshes the numbers. No frame is ever queued into the paint path.

The verdict tile, the image, its overlay and the frame line are always set together from one
:class:`~station.live.result.LiveResult` (:meth:`InspectPanel.show_live`); when newer frames fail the
shown result is marked stale, and after Stop the view is cleared and says what the last result was.
Before switching recipe while running, the recipe is checked against the camera's newest frame.

Over ~450 lines: the panel is one screen's assembly (pickers, run control, the view and the NG
strip) whose parts share the session; its numbers (shift_numbers.py), dialogs (inspect_dialogs.py)
and everything that is not a widget (station/live) are already elsewhere.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from station.acquisition.camera_choice import recipe_camera_settings, with_camera_settings
from station.app.context import StationContext
from station.app.golden import record_golden_run
from station.app.recipes import list_recipes, recipe_label
from station.core.golden import GoldenReport
from station.gui.history_dialog import HistoryDialog
from station.gui.image_view import ImageCanvas
from station.gui.inspect_dialogs import NgDialog, ask_recipe_mismatch
from station.gui.shift_numbers import ShiftNumbers
from station.gui.widgets import ProgressLine, ThumbnailStrip, VerdictLabel, on_event
from station.live.checks import check_frame, recipe_needs
from station.live.ng_feed import NgFeed
from station.live.result import LiveResult
from station.live.session import LiveSession, StopRule
from station.live.stats import RateMeter

log = logging.getLogger(__name__)

DISPLAY_INTERVAL_MS = 10  # the view looks for a new result 100 times a second (sources run at <= 60 fps)
STATS_INTERVAL_MS = 250
BROWSE = "__browse__"

ErrorReporter = Callable[[str, str, str], None]
MismatchAnswer = str  # "keep" (the old recipe), "switch" (anyway), "source" (choose another source)
CAMERA_VIEW_SIDE = 120  # the small live camera pane (px)
NG_THUMB_SIDE = 80
STALE_STYLE = "QLabel { background:#fff4e5; color:#8a4b00; padding:4px; }"
STOP_STYLE = "QLabel { background:#fce8e6; color:#a50e0e; padding:4px; font-weight:bold; }"


class InspectPanel(QWidget):
    """Signals: ``status_changed()`` (camera, device, recipe changed), ``first_verdict(float)`` (seconds
    since the session started), ``recipe_changed(str)`` (the recipe folder in use)."""

    status_changed = Signal()
    first_verdict = Signal(float)
    recipe_changed = Signal(str)
    problem_resolved = Signal(str)  # ``where``: the cause of an earlier report is gone (the banner can go)

    def __init__(self, ctx: StationContext, report: ErrorReporter, results=None, archive=None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.report = report
        self.results = results
        self.archive = archive
        self.listeners: list = []  # more result listeners for every session (line outputs)
        self.session: LiveSession | None = None
        self.recipe_path: str | None = None
        self._shown_seq = 0
        self._generation = 0
        self._ng = NgFeed(ctx.settings.ng_strip_size)  # what the NG strip shows (station/live/ng_feed.py)
        self._first_reported = False
        self.display_rate = RateMeter(window=2.0)
        self.frames_shown = 0  # inspected frames shown with their results
        self.camera_rate = RateMeter(window=2.0)
        self.camera_frames_shown = 0  # raw camera frames shown in the live pane
        self._camera_frame_id: int | None = None
        self._locked = True
        self.shown: LiveResult | None = None  # what the tile, image, overlay and frame line show now
        self._check_next_start = True
        self._golden_reports: deque[GoldenReport] = deque()  # filled on the inspection thread
        self._reported: set[str] = set()  # where problems were reported since the last verdict
        self._last_report_at = 0.0
        # asked when a recipe does not fit the camera; replaced in tests
        self.ask_mismatch: Callable[[str, list[str]], MismatchAnswer] = self._ask_mismatch

        # --- top bar
        self.source = QComboBox()
        self.source.setEditable(True)
        self.source.setMinimumWidth(200)  # with the rest of the bar: fits a 1024-pixel-wide panel
        self.source.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.recipe = QComboBox()
        self.recipe.setMinimumWidth(130)
        self.start_button = QPushButton("▶ Start")
        self.stop_button = QPushButton("■ Stop")
        self.new_shift_button = QPushButton("New shift")
        self.results_button = QPushButton("Results…")
        self.results_button.setToolTip("The inspection results logged so far, with the archived NG images")
        self.history: HistoryDialog | None = None
        self.heatmap_box = QCheckBox("heatmap")
        self.heatmap_box.setChecked(True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Source"))
        top.addWidget(self.source, 2)
        top.addWidget(QLabel("Recipe"))
        top.addWidget(self.recipe, 1)
        top.addWidget(self.start_button)
        top.addWidget(self.stop_button)
        top.addStretch(0)
        top.addWidget(self.heatmap_box)
        top.addWidget(self.new_shift_button)
        top.addWidget(self.results_button)

        self.busy = ProgressLine(cancellable=False)
        self.busy.hide()
        # the line's state in plain words: stale result, failing frames, dropped frames, line stopped
        self.line_status = QLabel()
        self.line_status.setWordWrap(True)
        self.line_status.hide()

        # --- centre: image | verdict + numbers
        self.canvas = ImageCanvas()
        self.verdict = VerdictLabel()
        self.frame_info = QLabel()
        self.frame_info.setWordWrap(True)
        # room for its three lines whatever the window size (a wrapped label is otherwise squeezed)
        self.frame_info.setMinimumHeight(4 * self.frame_info.fontMetrics().lineSpacing())
        self.numbers = ShiftNumbers()
        self.labels = self.numbers.labels
        # The live camera at its own rate, whatever the detector's speed: for setting up the part and
        # the light. The big view shows inspected frames with *their* results only.
        self.camera_view = ImageCanvas(show_heatmap=False)
        self.camera_view.setFixedSize(CAMERA_VIEW_SIDE, CAMERA_VIEW_SIDE)
        # beside the image: what the operator reads (the verdict and the shift); the throughput sits
        # in the bottom row, so the whole screen fits 768 pixels of height (issue 13: any screen)
        side = QVBoxLayout()
        side.addWidget(self.verdict)
        side.addWidget(self.frame_info)
        side.addWidget(self.numbers)
        side.addStretch(1)
        side_widget = QWidget()
        side_widget.setLayout(side)
        side_widget.setMinimumWidth(230)
        side_widget.setMaximumWidth(420)
        centre = QHBoxLayout()
        centre.addWidget(self.canvas, 1)
        centre.addWidget(side_widget)

        self.ng_strip = ThumbnailStrip(side=NG_THUMB_SIDE, max_items=max(1, ctx.settings.ng_strip_size))
        ng_box = QGroupBox("Last NG parts (click for full size)")
        nl = QVBoxLayout(ng_box)
        nl.setContentsMargins(4, 4, 4, 4)
        nl.addWidget(self.ng_strip)
        camera_box = QGroupBox("Camera (live)")
        cl = QVBoxLayout(camera_box)
        cl.setContentsMargins(4, 4, 4, 4)
        cl.addWidget(self.camera_view)
        bottom = QHBoxLayout()
        bottom.addWidget(camera_box)
        bottom.addWidget(self.numbers.rates)
        bottom.addWidget(ng_box, 1)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.busy)
        layout.addWidget(self.line_status)
        layout.addLayout(centre, 1)
        layout.addLayout(bottom)

        self.display_timer = QTimer(self)
        self.display_timer.setInterval(DISPLAY_INTERVAL_MS)
        self.display_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.display_timer.timeout.connect(self.poll)
        self.stats_timer = QTimer(self)
        self.stats_timer.setInterval(STATS_INTERVAL_MS)
        self.stats_timer.timeout.connect(self.refresh_stats)
        self.stats_timer.start()

        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(lambda: self.stop())
        self.new_shift_button.clicked.connect(self.new_shift)
        self.results_button.clicked.connect(self.open_results)
        self.heatmap_box.toggled.connect(self.canvas.set_heatmap_visible)
        self.source.activated.connect(lambda _i: self._source_chosen(self.source.currentText()))
        self.source.lineEdit().editingFinished.connect(lambda: self._source_chosen(self.source.currentText()))
        self.recipe.activated.connect(self._recipe_chosen)
        self.ng_strip.activated_key.connect(self.open_ng)

        on_event(self, ctx.events.recipes_changed, self.fill_recipes)
        self.fill_sources()
        self.fill_recipes()
        self.set_locked(True)
        self._update_buttons()

    # --- pickers ----------------------------------------------------------------------------------
    def fill_sources(self) -> None:
        self.source.blockSignals(True)
        self.source.clear()
        for uri in self.ctx.settings.recent_sources:
            self.source.addItem(uri)
        if self.source.findText(self.ctx.settings.source_uri) < 0:
            self.source.insertItem(0, self.ctx.settings.source_uri)
        self.source.setCurrentText(self.ctx.settings.source_uri)
        self.source.blockSignals(False)

    def fill_recipes(self) -> None:
        self.recipe.blockSignals(True)
        self.recipe.clear()
        for entry in list_recipes(self.ctx.models_dir):
            self.recipe.addItem(entry.label, str(entry.path))
        if self.recipe_path and self.recipe.findData(self.recipe_path) < 0:
            self.recipe.insertItem(0, recipe_label(self.recipe_path), self.recipe_path)
        self.recipe.addItem("Browse…", BROWSE)
        if self.recipe_path:
            self.recipe.setCurrentIndex(self.recipe.findData(self.recipe_path))
        else:
            self.recipe.setCurrentIndex(-1)
        self.recipe.blockSignals(False)

    def set_locked(self, locked: bool) -> None:
        """Operators inspect; only an engineer changes the source or the recipe."""
        self._locked = locked
        tip = "Unlock engineer mode to change" if locked else ""
        for w in (self.source, self.recipe):
            w.setEnabled(not locked)
            w.setToolTip(tip)
        if self.history is not None and self.history.marks is not None:
            self.history.marks.refresh()  # marking false rejects is for engineers

    def _source_chosen(self, uri: str) -> None:
        if self._locked or not self.ctx.select_source(uri):
            return
        self.fill_sources()
        if self.running:
            self.restart()

    def _recipe_chosen(self, index: int) -> None:
        data = self.recipe.itemData(index)
        if data == BROWSE:
            folder = QFileDialog.getExistingDirectory(self, "Recipe folder (a part or one of its versions)",
                                                      str(self.ctx.models_dir))
            if not folder:
                self.fill_recipes()
                return
            data = folder
        self.choose_recipe(str(data))

    def choose_recipe(self, path: str, role: str | None = None, note: str = "") -> bool:
        """Switch to another recipe (audited); restarts a running inspection with it. While running,
        the recipe is first checked against the camera's newest frame: on a mismatch the engineer
        keeps the old recipe, switches anyway, or picks another source. Returns whether it switched."""
        if path == self.recipe_path:
            return True
        check_at_start = True
        problems = self.check_recipe(path)
        if problems:
            answer = self.ask_mismatch(path, problems)
            if answer == "keep":
                self.ctx.keep_recipe(self.recipe_path, path, problems, role=role)
                self.fill_recipes()
                return False
            if answer == "source":
                self.fill_recipes()
                self.source.setFocus()
                self.source.lineEdit().selectAll()
                return False
            check_at_start = False  # switched knowingly: the first-frame check would only stop it again
        self.ctx.select_recipe(path, self.recipe_path, role=role,
                               note="; ".join(filter(None, [note, *(f"despite: {p}" for p in problems)])))
        self.set_recipe(path)
        if self.running:
            self._check_next_start = check_at_start
            self.restart()
        return True

    def check_recipe(self, path: str) -> list[str]:
        """Why ``path`` would not fit the source, from the running camera's newest frame (instant: only
        ``recipe.json`` is read). Not running: the session checks its first frame before inspecting."""
        frame = self.session.latest_frame() if self.running and self.session is not None else None
        if frame is None:
            return []
        try:
            return check_frame(recipe_needs(path), frame.image)
        except Exception as exc:  # noqa: BLE001 - loading reports the recipe's own problem
            log.info("recipe check skipped: %s", exc)
            return []

    def _ask_mismatch(self, path: str, problems: list[str]) -> MismatchAnswer:
        current = recipe_label(self.recipe_path) if self.recipe_path else "no recipe"
        return ask_recipe_mismatch(self, recipe_label(path), current, self.source.currentText(), problems)

    def set_recipe(self, path: str) -> None:
        """Use ``path`` for the next start (no audit: for start-up and the demo)."""
        self.recipe_path = str(path)
        self.fill_recipes()
        self._update_buttons()
        self.recipe_changed.emit(self.recipe_path)
        self.status_changed.emit()

    # --- running ----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.session is not None and self.session.running

    def start(self) -> None:
        if self.session is not None and self.session.running:
            return
        if not self.recipe_path:
            self.report("inspection", "no recipe chosen: an engineer picks one (or teaches a part)", "")
            return
        uri = self.source.currentText().strip() or self.ctx.settings.source_uri
        uri = with_camera_settings(uri, recipe_camera_settings(self.recipe_path))  # the recipe's exposure, gain ...
        settings = self.ctx.settings
        rule = StopRule(failures=max(0, settings.stop_line_after_failures),
                        dropped_share=max(0.0, settings.dropped_warning_percent) / 100.0)
        self.session = LiveSession(uri, self.recipe_path, counters=self.ctx.counters, device=self.ctx.device,
                                   ng_keep=max(1, settings.ng_strip_size), results=self.results,
                                   archive=self.archive, listeners=list(self.listeners), stop_rule=rule,
                                   check_first_frame=self._check_next_start,
                                   on_golden=self._golden_reports.append, watch=settings.input_watch,
                                   drift_alarm_level=max(0.0, settings.drift_alarm_level))
        self._check_next_start = True
        self.clear_view()
        self._ng.new_session()
        self._shown_seq = 0
        self._generation = self.session.generation
        self._first_reported = False
        self.session.start()
        self.display_timer.start()
        self._update_buttons()
        self.status_changed.emit()

    def stop(self, timeout: float = 1.5) -> bool:
        ok = True
        if self.session is not None:
            ok = self.session.stop(timeout)
            self._drain_errors()
        self.display_timer.stop()
        self.show_stopped()
        self._update_buttons()
        self.status_changed.emit()
        return ok

    # --- what the view shows: always one frame's tile, image, overlay and line together ------------------
    def show_live(self, live: LiveResult) -> None:
        """Show one result: the verdict tile, the image, its overlay and the frame line all come from
        ``live`` -- never the tile of one frame over the image of another."""
        result = live.result
        self.shown = live
        if result is None:  # not judged (input out of range): the frame and why, never an OK
            self.canvas.show_image(live.frame.image)
            self.canvas.show_result(None)
            self.verdict.set_verdict(live.verdict)
            self.frame_info.setText(f"frame {live.frame.frame_id}\n{live.input_problem or live.error or ''}")
            return
        self.canvas.show_image(live.frame.image)
        self.canvas.show_result(result)
        self.verdict.set_verdict(result.verdict.value)
        text = f"frame {live.frame.frame_id}\nscore {result.score:.3g} (threshold {result.threshold:.3g})"
        if result.regions:
            text += f"\n{len(result.regions)} defect region(s), largest {result.regions[0].area_px:.0f} px"
        self.frame_info.setText(text)

    def mark_stale(self, why: str) -> None:
        """Newer frames failed: the result on screen is not the line's state now."""
        self.verdict.set_verdict("STALE")
        if self.shown is not None:
            self.frame_info.setText(f"stale: last verdict {self.shown.verdict} of frame "
                                    f"{self.shown.frame.frame_id}; newer frames fail\n{why}")

    def clear_view(self) -> None:
        self.shown = None
        self.canvas.clear_all()
        self.verdict.set_verdict(None)
        self.frame_info.setText("")

    def show_stopped(self) -> None:
        """After Stop the view is cleared and says what the last result was and when."""
        last = self.shown
        self.clear_view()
        when = datetime.now().strftime("%H:%M:%S")
        self.frame_info.setText(f"stopped at {when}" + (
            f"\nlast result: {last.verdict} of frame {last.frame.frame_id}" if last is not None else ""))

    def restart(self) -> None:
        self.stop()
        self.start()

    def new_shift(self) -> None:
        self.ctx.counters.new_shift()
        if self.session is not None:
            self.session.run_golden()  # the shift starts with the golden parts judged
        self.ng_strip.clear()  # NG parts of the old shift not shown yet stay out of the new one
        self._ng.new_shift(self.session.ng_records() if self.session is not None else ())
        self.refresh_stats()

    def _update_buttons(self) -> None:
        running = self.running
        self.start_button.setEnabled(not running and bool(self.recipe_path))
        self.stop_button.setEnabled(running)

    def _drain_errors(self) -> None:
        self._audit_golden()
        if self.session is None:
            return
        for err in self.session.drain_errors():
            self._reported.add(err.where)
            self._last_report_at = time.monotonic()
            self.report(err.where, err.message, err.details)

    def _resolved(self) -> None:
        """A verdict came after problems were reported: their banner can go."""
        for where in sorted(self._reported):
            self.problem_resolved.emit(where)
        self._reported.clear()

    def poll(self) -> None:
        """Show the newest result if there is one the view has not shown yet (display timer)."""
        s = self.session
        if s is None:
            return
        frame = s.latest_frame()
        if frame is not None and frame.frame_id != self._camera_frame_id:
            self._camera_frame_id = frame.frame_id
            self.camera_view.show_image(frame.image)
            self.camera_frames_shown += 1
            self.camera_rate.tick()
        latest = s.latest()
        if latest is None or latest.sequence == self._shown_seq:
            if not s.running:
                self._drain_errors()
                self.display_timer.stop()
                self.show_stopped()
                self._update_buttons()
                self.status_changed.emit()
            return
        if latest.generation < self._generation:
            return  # computed with a threshold that no longer applies
        self._shown_seq = latest.sequence
        self.show_live(latest)
        if self._reported and latest.done_at > self._last_report_at:
            self._resolved()
        self.frames_shown += 1
        self.display_rate.tick()
        if not self._first_reported:
            self._first_reported = True
            self.first_verdict.emit(time.monotonic() - s.started_at)
            self.status_changed.emit()

    def refresh_stats(self) -> None:
        self.ctx.counters.flush()  # the shift survives a restart
        running = self.running
        self.numbers.update_numbers(self.ctx.counters.snapshot(), self.session.stats() if self.session is not None else None,
                          running, self.camera_rate.rate(), self.display_rate.rate(),
                          self.archive.describe() if self.archive is not None else
                          "NG images are not archived (quota 0)",
                          self.ctx.settings.dropped_warning_percent / 100.0)
        self._show_health()
        self._drain_errors()
        if self.session is not None:
            for key, rec in self._ng.take_new(self.session.ng_records()):  # oldest first: newest in front
                when = datetime.fromtimestamp(rec.time).strftime("%H:%M:%S")
                self.ng_strip.prepend(rec.thumb, f"{when}\n#{rec.frame_id}", key)
        self.status_changed.emit()

    def open_ng(self, key: object) -> NgDialog | None:
        record = self._ng.record(key)
        if record is None:
            return None
        pixel_size = self.session.pixel_size_mm if self.session is not None else None
        dialog = NgDialog(record, pixel_size, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def open_results(self) -> HistoryDialog:
        """The results history (one window, brought to the front and re-read if already open)."""
        if self.history is None:
            self.history = HistoryDialog(self.ctx.paths.results_db, self.ctx.paths.archive,
                                         shift_start=lambda: self.ctx.counters.started.timestamp(), parent=self,
                                         ctx=self.ctx)
        if self.history.isVisible():
            self.history.refresh()
        else:
            self.history.show()  # its showEvent reads the database
        self.history.raise_()
        self.history.activateWindow()
        return self.history

    def _audit_golden(self) -> None:
        """Each run of the golden parts into the audit log (written here, not on the inspection thread)."""
        while self._golden_reports:
            record_golden_run(self.ctx.audit, self._golden_reports.popleft(), reason="live inspection")

    def _show_health(self) -> None:
        """The line-status bar: shown while something is wrong, gone (and the banner told so) once
        the cause is fixed."""
        s = self.session
        h = s.health() if s is not None else None
        text, style = "", STALE_STYLE
        if h is not None and h.line_stopped:
            text, style = f"LINE STOPPED – {h.line_stopped} {h.fix}", STOP_STYLE
        elif h is not None and h.stale:
            text = f"Frames are failing ({h.failing} in a row): {h.cause} Fix: {h.fix}"
            self.mark_stale(h.cause)
        elif h is not None and h.input_problem:
            text = f"Input out of range – {h.input_problem}. Check the light, the lens and the part's position."
        elif h is not None and h.drift_warning:
            text = f"Warning – {h.drift_warning}. Check the light, the lens and the parts."
        elif h is not None and h.dropped_warning:
            text = h.dropped_warning
        elif h is not None and h.golden_warning:
            text = h.golden_warning
        if text:
            self.line_status.setText(text)
            self.line_status.setStyleSheet(style)
            self.line_status.show()
        else:
            self.line_status.hide()

    # --- status bar -------------------------------------------------------------------------------
    def camera_state(self) -> str:
        if self.session is None:
            return "camera: closed"
        return f"camera: {self.session.source_state}"

    def device_text(self) -> str:
        return (self.session.device_name if self.session is not None else "") or "–"

    def recipe_text(self) -> str:
        if self.session is not None and self.session.recipe_label:
            return self.session.recipe_label
        return recipe_label(self.recipe_path) if self.recipe_path else "no recipe"
