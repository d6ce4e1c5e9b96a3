"""Review mode (engineer): score an MVTec AD category or any folder with a recipe -- or teach one from
the category's ``train/good`` first -- on a worker, then browse the result: a sortable table, the
selected image with ground truth (red) and detections (green) beside its heatmap as in the MVTec AD
paper's Figure 3, the metrics and the ROC / PRO curves, and export the report."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSortFilterProxyModel, Qt, QUrl, Signal
from PySide6.QtGui import QBrush, QColor, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from station.app.context import StationContext
from station.app.recipes import list_recipes
from station.app.review import ReviewOutcome, ReviewRequest, export_report, inspection_of, run_review
from station.core.datasets import Sample
from station.core.inspection import InspectionResult
from station.core.progress import Progress
from station.detectors.base import available_detectors
from station.gui.gc_guard import release_memory_soon
from station.gui.review_detail import DetailView
from station.gui.review_metrics import MetricsView
from station.gui.widgets import ProgressLine, on_event
from station.gui.workers import Job

log = logging.getLogger(__name__)

TEACH_FIRST = "__teach__"
QUICK_DETECTOR = "variation"
STAGE_TEXT = {"metrics": "computing the metrics (ROC, PRO)"}
COLUMNS = ["image", "defect type", "score", "verdict", "agrees"]
ErrorReporter = Callable[[str, str, str], None]


def _relative(path: Path, root: Path) -> Path:
    try:
        return path.relative_to(root)
    except ValueError:
        return path


class ReviewPanel(QWidget):
    """``scored(ReviewOutcome)`` when a scoring run finished; ``recipe_taught(str)`` for a recipe
    taught first; ``exported(str)`` with the report's path. A run that fails or is cancelled leaves
    the previous results on screen."""

    scored = Signal(object)
    recipe_taught = Signal(str)
    exported = Signal(str)  # the report.html written

    def __init__(self, ctx: StationContext, report: ErrorReporter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.report = report
        self.outcome: ReviewOutcome | None = None
        self.job: Job | None = None
        self.export_job: Job | None = None
        self._rows: list[dict[str, Any]] = []
        self._previous: tuple[ReviewOutcome | None, str] = (None, "")  # shown again if a run fails
        self._picked = False  # the engineer chose a recipe (else it follows the one in use)

        # --- controls
        self.data = QLineEdit(ctx.settings.review_folder)
        self.data.setPlaceholderText("an MVTec AD category (e.g. …/mvtec_ad/bottle) or any folder of images")
        browse = QPushButton("Open…")
        browse.clicked.connect(self._browse)
        self.recipe = QComboBox()
        self.detector = QComboBox()
        for info in available_detectors():
            self.detector.addItem(info.title, info.kind)
        # teaching first defaults to the quick detector (seconds), not the first listed (minutes)
        self.detector.setCurrentIndex(max(0, self.detector.findData(QUICK_DETECTOR)))
        self.per_type = QSpinBox()
        self.per_type.setRange(0, 100000)
        self.per_type.setSpecialValueText("all")
        self.per_type.setValue(ctx.settings.review_max_per_type)
        self.per_type.setToolTip("a quick look: at most this many test images per defect type (all: every one)")
        self.score_button = QPushButton("Score")
        self.export_button = QPushButton("Export report…")
        self.export_button.setEnabled(False)
        self.export_button.setToolTip("report.html (summary, metrics, curves, worst misses), CSV, JSON and an "
                                      "overlay per image")
        self.raw_maps = QCheckBox("raw maps")
        self.raw_maps.setToolTip("also every anomaly map (compressed maps.npz: most of a report's size)")
        self.report_path: Path | None = None
        self.progress = ProgressLine()
        self.progress.hide()
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setOpenExternalLinks(True)
        row1 = QHBoxLayout()
        row1.addWidget(QLabel("Data"))
        row1.addWidget(self.data, 1)
        row1.addWidget(browse)
        row2 = QHBoxLayout()
        row2.addWidget(QLabel("Recipe"))
        row2.addWidget(self.recipe, 1)
        self.detector_label = QLabel("detector")
        row2.addWidget(self.detector_label)
        row2.addWidget(self.detector)
        per_type_label = QLabel("per type")
        per_type_label.setToolTip(self.per_type.toolTip())
        row2.addWidget(per_type_label)
        row2.addWidget(self.per_type)
        row2.addWidget(self.score_button)
        row2.addWidget(self.export_button)
        row2.addWidget(self.raw_maps)

        # --- table
        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(COLUMNS)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(Qt.ItemDataRole.UserRole)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        # every column as wide as its contents: a stretched name column was squeezed to "00…" at 1024x768
        for c in range(len(COLUMNS) - 1):
            self.table.horizontalHeader().setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().currentRowChanged.connect(lambda cur, _prev: self.show_row(cur.row()))

        # --- detail: Figure 3 (image with outlines | heatmap)
        detail = DetailView()
        detail.mode_changed.connect(lambda: self.show_row(self.current_row()))
        self.detail = detail
        self.image_view, self.heat_view, self.detail_info = detail.image_view, detail.heat_view, detail.info

        # --- metrics and curves
        self.bottom_tabs = MetricsView()
        self.metrics, self.roc_plot, self.pro_plot = (self.bottom_tabs.metrics, self.bottom_tabs.roc_plot,
                                                      self.bottom_tabs.pro_plot)

        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(detail)
        right.addWidget(self.bottom_tabs)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        main = QSplitter()
        main.addWidget(self.table)
        main.addWidget(right)
        main.setStretchFactor(0, 2)
        main.setStretchFactor(1, 5)
        self.table.setMinimumWidth(400)
        main.setSizes([440, 960])

        layout = QVBoxLayout(self)
        layout.addLayout(row1)
        layout.addLayout(row2)
        layout.addWidget(self.progress)
        layout.addWidget(self.summary)
        layout.addWidget(main, 1)

        self.score_button.clicked.connect(self.score)
        self.export_button.clicked.connect(self._choose_export)
        self.progress.cancel_requested.connect(self.cancel)
        self.recipe.currentIndexChanged.connect(lambda _i: self._recipe_mode())
        self.recipe.activated.connect(lambda _i: setattr(self, "_picked", True))
        on_event(self, ctx.events.recipes_changed, self.fill_recipes)
        self.fill_recipes()

    # --- controls ---------------------------------------------------------------------------------
    def fill_recipes(self) -> None:
        current = self.recipe.currentData()
        self.recipe.blockSignals(True)
        self.recipe.clear()
        for entry in list_recipes(self.ctx.models_dir):
            self.recipe.addItem(entry.label, str(entry.path))
        self.recipe.addItem("teach from train/good first", TEACH_FIRST)
        # the engineer's own pick stays; until there is one, the recipe in use (taught since, maybe)
        i = self.recipe.findData(current if self._picked and current is not None else self._current_recipe())
        self.recipe.setCurrentIndex(i if i >= 0 else 0)
        self.recipe.blockSignals(False)
        self._recipe_mode()

    def _current_recipe(self) -> str | None:
        """The version folder of the recipe the station inspects with (the demo part's by default)."""
        chosen = Path(self.ctx.settings.recipe_path or self.ctx.models_dir / "demo")
        entries = list_recipes(self.ctx.models_dir)
        for e in entries:  # a version folder, else the part's newest version (listed first)
            if e.path == chosen or e.path.parent == chosen:
                return str(e.path)
        return str(entries[0].path) if entries else None

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        if self.job is None or not self.job.running:
            self.fill_recipes()  # recipes taught since (the demo part at the first start) appear
        super().showEvent(event)

    def _recipe_mode(self) -> None:
        teach = self.recipe.currentData() == TEACH_FIRST
        self.detector.setVisible(teach)
        self.detector_label.setVisible(teach)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "MVTec AD category or folder of images", self.data.text())
        if folder:
            self.data.setText(folder)

    def set_request(self, data: str | Path, recipe: str | None = None, per_type: int | None = None,
                    detector: str | None = None) -> None:
        """Fill the controls (as a user would); ``recipe`` ``None`` means teach first."""
        self._picked = True
        self.data.setText(str(data))
        if recipe is None:
            self.recipe.setCurrentIndex(self.recipe.findData(TEACH_FIRST))
        else:
            i = self.recipe.findData(str(recipe))
            if i < 0:
                self.recipe.insertItem(0, Path(recipe).name, str(recipe))
                i = 0
            self.recipe.setCurrentIndex(i)
        if per_type is not None:
            self.per_type.setValue(per_type)
        if detector is not None:
            self.detector.setCurrentIndex(self.detector.findData(detector))

    # --- scoring ----------------------------------------------------------------------------------
    def score(self) -> Job | None:
        if self.job is not None and self.job.running:
            return None
        data = self.data.text().strip()
        if not data:
            self.report("review", "choose a data folder first", "")
            return None
        recipe = self.recipe.currentData()
        request = ReviewRequest(
            data=Path(data), recipe_path=None if recipe == TEACH_FIRST else Path(recipe),
            detector_kind=self.detector.currentData() or "variation", models_dir=self.ctx.models_dir,
            max_per_type=self.per_type.value(), device=None if self.ctx.device == "auto" else self.ctx.device)
        self.ctx.remember_review(data, self.per_type.value())
        self._previous = (self.outcome, self.summary.text())
        self.clear()
        self.summary.setText("")
        self.progress.begin("opening")
        self.score_button.setEnabled(False)
        self.export_button.setEnabled(False)
        audit = self.ctx.audit

        def fn(progress: Callable[[Progress], None], cancel: Any) -> ReviewOutcome:
            def on_image(sample: Sample, _image: np.ndarray, res: InspectionResult, _mask: Any) -> None:
                job.emit_item((sample, res.score, res.verdict.value))
            def named(p: Progress) -> None:
                progress(replace(p, message=STAGE_TEXT.get(p.stage, p.message)))

            return run_review(request, named, cancel, on_image=on_image, audit=audit)

        job = Job(fn, "review", self)
        job.progress.connect(self.progress.update_progress)
        job.item.connect(self._add_row)
        job.finished.connect(self._finished)
        job.failed.connect(self._failed)
        job.cancelled.connect(self._cancelled)
        self.job = job.start()
        return job

    def cancel(self) -> None:
        for job in (self.job, self.export_job):
            if job is not None:
                job.cancel()

    def clear(self) -> None:
        self.outcome = None
        self.model.removeRows(0, self.model.rowCount())
        self._rows.clear()
        self.bottom_tabs.clear_all()
        self.detail.clear_all()

    def _add_row(self, item: tuple[Sample, float, str]) -> None:
        sample, score, verdict = item
        self._append_row(len(self._rows), sample.path.name, sample.label, score, verdict, None)

    def _append_row(self, index: int, name: str, label: str, score: float, verdict: str, agrees: bool | None) -> None:
        def cell(text: str, sort: Any) -> QStandardItem:
            it = QStandardItem(text)
            it.setData(sort, Qt.ItemDataRole.UserRole)
            return it

        cells = [cell(name, index), cell(label, label), cell(f"{score:.4g}", float(score)), cell(verdict, verdict),
                 cell("" if agrees is None else ("yes" if agrees else "no"), -1 if agrees is None else int(agrees))]
        cells[3].setForeground(QBrush(QColor("#d93025" if verdict == "NG" else "#1e8e3e")))
        if agrees is False:
            cells[4].setForeground(QBrush(QColor("#d93025")))
        cells[0].setData(index, Qt.ItemDataRole.UserRole + 1)
        self.model.appendRow(cells)
        self._rows.append({"name": name})

    def _finished(self, outcome: ReviewOutcome) -> None:
        self.progress.end("done")
        self.progress.hide()
        self.score_button.setEnabled(True)
        self._previous = (None, "")  # the results replaced: nothing of them stays
        self._show_outcome(outcome)
        release_memory_soon()  # what scoring and the metrics took at their peak goes back to the system
        res = outcome.result
        for path, msg in res.problems:
            self.report("review", f"{path}: {msg}", "")
        if outcome.taught:
            self.recipe_taught.emit(str(outcome.taught))
            self.ctx.recipe_saved(outcome.taught)  # every recipe list shows it
        self.scored.emit(outcome)

    def _show_outcome(self, outcome: ReviewOutcome) -> None:
        self.outcome = outcome
        res = outcome.result
        self.export_button.setEnabled(True)
        # the exact records (same order as the rows that streamed in)
        self.table.setSortingEnabled(False)
        self.model.removeRows(0, self.model.rowCount())
        self._rows.clear()
        for i, rec in enumerate(res.records):
            path = Path(rec.path)
            name = path.name if outcome.labelled else str(_relative(path, outcome.data))
            self._append_row(i, name, rec.label if outcome.labelled else "–", rec.score, rec.verdict,
                             rec.correct if outcome.labelled else None)
        self.table.setSortingEnabled(True)
        self.bottom_tabs.show_outcome(outcome)
        problems = f"; {len(res.problems)} file(s) skipped (see Details)" if len(res.problems) else ""
        taught = f" Recipe taught first: {outcome.taught}." if outcome.taught else ""
        self.summary.setText(
            f"<b>{res.category}</b> scored with <b>{res.recipe}</b> at threshold {res.threshold:.4g}, minimum area "
            f"{res.min_defect_area_px:g} px: {len(res.records)} images, {res.timing['ms_per_image']:.0f} ms/image"
            f"{problems}.{taught}" + ("" if outcome.labelled else
                                      " No ground truth in a plain folder: verdicts and scores only."))
        if res.records:
            self.table.selectRow(0)

    def _restore_previous(self, why: str) -> None:
        """After a failed or cancelled run: the previous results again, if there were any."""
        previous, text = self._previous
        self._previous = (None, "")
        release_memory_soon()  # what the failed run took
        if previous is not None:
            self._show_outcome(previous)
            self.summary.setText(f"{why} Showing the previous results:<br>{text}")
        else:
            self.summary.setText(why)

    def _failed(self, message: str, details: str) -> None:
        self.progress.end("failed")
        self.score_button.setEnabled(True)
        self._restore_previous(f"<span style='color:#a50e0e'>Scoring failed: {html.escape(message)}</span>")
        self.report("review", message, details)

    def _cancelled(self) -> None:
        self.progress.end("cancelled")
        self.score_button.setEnabled(True)
        self._restore_previous("Scoring cancelled.")

    # --- results ----------------------------------------------------------------------------------
    def current_row(self) -> int:
        idx = self.table.currentIndex()
        return idx.row() if idx.isValid() else -1

    def show_row(self, proxy_row: int) -> None:
        if self.outcome is None or proxy_row < 0:
            return
        index = self.proxy.index(proxy_row, 0).data(Qt.ItemDataRole.UserRole)
        if index is None:
            return
        try:
            image, inspection, mask = inspection_of(self.outcome, int(index))
        except Exception as exc:  # noqa: BLE001 - a file deleted since scoring
            self.report("review", f"cannot show the image: {exc}", "")
            return
        rec = self.outcome.result.records[int(index)]
        self.detail.show_record(rec, image, inspection, mask if self.outcome.labelled else None)

    # --- export -----------------------------------------------------------------------------------
    def _choose_export(self) -> None:
        if self.outcome is None:
            return
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        default = self.ctx.paths.runs / f"review-{self.outcome.result.category}-{stamp}"
        try:  # the dialog cannot choose a folder that does not exist
            default.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.report("export", f"{default.parent}: {exc}", "")
        folder = QFileDialog.getExistingDirectory(self, "Folder for the report", str(default.parent))
        if folder:
            self.export(Path(folder) / default.name)

    def export(self, out_dir: Path) -> Job | None:
        if self.outcome is None:
            return None
        outcome = self.outcome
        self.progress.begin("exporting")
        self.export_button.setEnabled(False)
        raw = self.raw_maps.isChecked()
        job = Job(lambda progress, cancel: export_report(outcome, out_dir, progress, cancel, raw_maps=raw),
                  "export", self)
        job.progress.connect(self.progress.update_progress)

        def finished(path: Path) -> None:
            self.progress.end("exported")
            self.export_button.setEnabled(True)
            self.report_path = Path(path)
            url = QUrl.fromLocalFile(str(path)).toString()
            self.summary.setText(self.summary.text() + f"<br>Report written: <a href='{url}'>{html.escape(str(path))}"
                                 f"</a> (open it in a browser; the other files are beside it)")
            self.exported.emit(str(path))

        def failed(message: str, details: str) -> None:
            self.progress.end("export failed")
            self.export_button.setEnabled(True)
            self.report("export", message, details)

        job.finished.connect(finished)
        job.failed.connect(failed)
        job.cancelled.connect(lambda: (self.progress.end("export cancelled"), self.export_button.setEnabled(True)))
        self.export_job = job.start()
        return job

    def shutdown(self, timeout: float = 1.5) -> bool:
        self.cancel()
        ok = True
        for job in (self.job, self.export_job):
            if job is not None:
                ok = job.wait(timeout) and ok
        return ok
