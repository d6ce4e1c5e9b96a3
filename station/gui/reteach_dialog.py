"""Re-teach from the line, in the Teach tab: teach a new version of the recipe in use from its part's
good-sample pool (on a worker), show how it compares with the running version on the archived parts,
switch to it only on the engineer's word, and roll back to the previous version in one click. The
work is :mod:`station.app.reteach`; this is its assembly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from station.app.context import StationContext
from station.app.recipes import recipe_label
from station.app.reteach import (
    ReteachCandidate,
    record_rollback,
    rollback_target,
    switch_to,
    taught_from,
    teach_candidate,
)
from station.app.sample_pool import PoolError, SamplePool
from station.core.recipe import resolve_recipe_dir
from station.gui.widgets import ProgressLine
from station.gui.workers import Job

log = logging.getLogger(__name__)
DANGER = "#d93025"


def _item(text: str, colour: str | None = None, bold: bool = False) -> QTableWidgetItem:
    it = QTableWidgetItem(text)
    it.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    if colour:
        it.setForeground(QColor(colour))
    if bold:
        f = it.font()
        f.setBold(True)
        it.setFont(f)
    return it


def _table(headers: list[str]) -> QTableWidget:
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.verticalHeader().hide()
    t.verticalHeader().setDefaultSectionSize(t.fontMetrics().lineSpacing() + 6)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    return t


class ComparisonDialog(QDialog):
    """The new version against the running one: metrics side by side, the parts whose verdict changes
    (dangerous ones first, in red), Switch or Cancel."""

    def __init__(self, candidate: ReteachCandidate, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.candidate = candidate
        c = candidate.comparison
        m = c.metrics()
        self.setWindowTitle(f"Re-teach: {c.new_label} against {c.old_label}")
        head = QLabel(f"<b>{c.new_label}</b> was taught from {len(candidate.samples)} pool samples "
                      f"({candidate.false_rejects} marked false rejects) with the detector, parameters and minimum "
                      f"defect area of <b>{c.old_label}</b>, and compared on {m['compared']} archived parts. "
                      f"Nothing is saved until you switch.")
        head.setWordWrap(True)
        self.warnings = QLabel("<br>".join(c.warnings()) or "No archived NG part that was not marked would pass.")
        self.warnings.setWordWrap(True)
        loud = m["ng_now_ok"] or m["still_rejected"] or (c.golden is not None and not c.golden.passed)
        self.warnings.setStyleSheet(f"color:{DANGER}; font-weight:bold; font-size:12pt;" if loud else "color:#1e8e3e;")

        self.metrics = _table(["", c.old_label + " (running)", c.new_label + " (new)"])
        rows = [("Threshold", f"{c.old_threshold:.4g}", f"{c.new_threshold:.4g}"),
                ("Minimum defect area", f"{c.min_defect_area_px:g} px", f"{c.min_defect_area_px:g} px"),
                ("NG among the compared parts", str(m["old_ng"]), str(m["new_ng"])),
                ("Marked false rejects rejected", f"{m['marked']} of {m['marked']}",
                 f"{m['still_rejected']} of {m['marked']}"),
                ("False rejects fixed", "–", str(m["fixed"])),
                ("Unmarked NG parts judged OK", "–", str(m["ng_now_ok"])),
                ("OK parts judged NG", "–", str(m["ok_now_ng"]))]
        if c.golden is not None:
            rows.append(("Golden parts", "", f"{sum(o.passed for o in c.golden.outcomes)} of "
                                             f"{len(c.golden.outcomes)} right"))
        self.metrics.setRowCount(len(rows))
        for r, (name, a, b) in enumerate(rows):
            danger = (name.startswith("Unmarked") and m["ng_now_ok"]) or (name.startswith("Golden") and
                                                                          c.golden is not None and not c.golden.passed)
            self.metrics.setItem(r, 0, _item(name))
            self.metrics.setItem(r, 1, _item(a))
            self.metrics.setItem(r, 2, _item(b, DANGER if danger else None, bool(danger)))
        # all the metrics at once, without a scroll bar
        height = (len(rows) * self.metrics.verticalHeader().defaultSectionSize()
                  + self.metrics.horizontalHeader().sizeHint().height() + 2 * self.metrics.frameWidth())
        self.metrics.setFixedHeight(height)
        self.metrics.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        changes = c.changes()
        self.changes = _table(["Time", "Frame", "Marked good", "Logged", c.old_label, c.new_label, ""])
        self.changes.setRowCount(len(changes))
        for r, p in enumerate(changes):
            when = datetime.fromtimestamp(p.time).strftime("%Y-%m-%d %H:%M:%S") if p.time else "–"
            note = "NG NOBODY MARKED WOULD PASS" if p.danger else ("false reject fixed" if p.marked and p.new == "OK" else "")
            cells = [when, str(p.frame_id), "yes" if p.marked else "", p.logged, f"{p.old} ({p.old_score:.3g})",
                     f"{p.new} ({p.new_score:.3g})", note]
            for col, text in enumerate(cells):
                self.changes.setItem(r, col, _item(text, DANGER if p.danger else None, p.danger))
        changed = QLabel(f"{len(changes)} of {m['compared']} parts change their verdict"
                         + (f"; {len(c.skipped)} could not be compared" if c.skipped else "") + ":")

        self.buttons = QDialogButtonBox()
        self.switch_button = self.buttons.addButton(f"Switch to {c.new_label}", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.cancel_button.setDefault(True)  # switching is a decision, never the Enter key's
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(head)
        layout.addWidget(self.warnings)
        layout.addWidget(self.metrics)
        layout.addWidget(changed)
        layout.addWidget(self.changes, 1)
        layout.addWidget(self.buttons)
        self.resize(900, 560)


class ReteachBox(QGroupBox):
    """The Teach tab's "Re-teach from the line" group. ``choose(path, note)`` inspects with a version from
    now on and says whether it did (the window's Inspect panel: audited, restarts a running
    inspection, may be refused when the recipe does not fit the camera)."""

    def __init__(self, ctx: StationContext, report: Callable[[str, str, str], None],
                 parent: QWidget | None = None) -> None:
        super().__init__("Re-teach from the line: marked false rejects → new version", parent)
        self.ctx = ctx
        self.report = report
        # the window replaces both with its Inspect panel's
        self.current: Callable[[], str | None] = lambda: ctx.settings.recipe_path or None
        self.choose: Callable[[str, str], bool] = self._select
        self.job: Job | None = None
        self.dialog: ComparisonDialog | None = None
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.reteach_button = QPushButton("Re-teach and compare…")
        self.rollback_button = QPushButton("Roll back")
        self.busy = ProgressLine()
        self.busy.hide()
        row = QHBoxLayout()
        row.addWidget(self.info, 1)
        row.addWidget(self.reteach_button)
        row.addWidget(self.rollback_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.busy)
        self.reteach_button.clicked.connect(self.start)
        self.rollback_button.clicked.connect(self.rollback)
        self.busy.cancel_requested.connect(lambda: self.job.cancel() if self.job is not None else None)
        self.refresh()

    def _select(self, path: str, note: str) -> bool:
        self.ctx.select_recipe(path, self.current(), note=note)
        return True

    def _folder(self) -> Path | None:
        path = self.current()
        try:
            return resolve_recipe_dir(path) if path else None
        except Exception:  # noqa: BLE001 - a missing recipe: nothing to re-teach, said in the text
            return None

    def refresh(self) -> None:
        folder = self._folder()
        target = rollback_target(folder) if folder is not None else None
        self.rollback_button.setEnabled(target is not None and self.job is None)
        self.rollback_button.setText(f"Roll back to {recipe_label(target)}" if target else "Roll back")
        if folder is None:
            self.info.setText("No recipe in use: choose one in Inspect.")
            self.reteach_button.setEnabled(False)
            return
        try:
            pool = SamplePool(folder.parent)
            taught = taught_from(folder)
            n_fr = sum(s.id not in taught for s in pool.false_rejects())  # not yet learned by the version in use
            text = f"In use: <b>{recipe_label(folder)}</b>. Good-sample pool: {pool.describe()}"
            text += f", {n_fr} not yet taught." if taught else "."
        except PoolError as exc:
            n_fr, text = 0, str(exc)
        if not n_fr:
            text += " Mark false rejects in Inspect → Results… to re-teach."
        self.info.setText(text)
        self.reteach_button.setEnabled(bool(n_fr) and self.job is None)

    def start(self) -> Job | None:
        folder = self._folder()
        if folder is None or self.job is not None:
            return None
        models, db, archive, device = self.ctx.models_dir, self.ctx.paths.results_db, self.ctx.paths.archive, self.ctx.device
        job = Job(lambda progress, cancel: teach_candidate(folder, models, db, archive, device, progress, cancel),
                  name="reteach", parent=self)
        job.progress.connect(self.busy.update_progress)
        job.finished.connect(self._taught)
        job.failed.connect(lambda msg, tb: self._ended(f"re-teach failed: {msg}", tb))
        job.cancelled.connect(lambda: self._ended("", ""))
        self.busy.begin(f"re-teaching {recipe_label(folder)}")
        self.job = job
        self.refresh()
        return job.start()

    def _ended(self, message: str, details: str) -> None:
        self.job = None
        self.busy.hide()
        if message:
            self.report("re-teach", message, details)
        self.refresh()

    def _taught(self, candidate: ReteachCandidate) -> None:
        self._ended("", "")
        dialog = ComparisonDialog(candidate, self)
        dialog.accepted.connect(lambda: self.switch(candidate))
        dialog.finished.connect(lambda _r: dialog.deleteLater())
        self.dialog = dialog
        dialog.show()

    def switch(self, candidate: ReteachCandidate) -> Job:
        """Save the new version (on a worker: a deep detector's state is tens of MB), then inspect with it."""
        audit, role = self.ctx.audit, self.ctx.role
        job = Job(lambda _p, _c: switch_to(candidate, audit, role=role), name="reteach-save", parent=self)
        job.finished.connect(lambda folder: self._saved(folder, candidate))
        job.failed.connect(lambda msg, tb: self._ended(f"the new version was not saved: {msg}; "
                                                       f"{candidate.old.label} stays in use", tb))
        self.busy.begin(f"saving {candidate.comparison.new_label}")
        self.job = job
        self.refresh()
        return job.start()

    def _saved(self, folder: Path, candidate: ReteachCandidate) -> None:
        self._ended("", "")
        self.ctx.recipe_saved(folder)
        self.choose(str(folder), f"re-taught from {candidate.old.label}")
        self.refresh()

    def rollback(self) -> str | None:
        folder = self._folder()
        target = rollback_target(folder) if folder is not None else None
        if target is None:
            return None
        if not self.choose(str(target), f"rolled back from {recipe_label(folder)}"):
            return None
        record_rollback(self.ctx.audit, folder, target, role=self.ctx.role)
        self.refresh()
        return str(target)

    def shutdown(self, timeout: float = 1.5) -> bool:
        if self.job is None:
            return True
        self.job.cancel()
        return self.job.wait(timeout)
