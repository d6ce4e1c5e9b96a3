"""Review mode (engineer): score an MVTec AD category or any folder with a recipe -- or teach one from
the category's ``train/good`` first -- on a worker, then browse the result: a sortable table, the
selected image with ground truth (red) and detections (green) beside its heatmap as in the MVTec AD
paper's Figure 3, the metrics and the ROC / PRO curves, and export the report."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
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
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
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
from station.gui.image_view import FULL_LUT, ImageCanvas
from station.gui.widgets import ProgressLine
from station.gui.workers import Job

log = logging.getLogger(__name__)

TEACH_FIRST = "__teach__"
COLUMNS = ["image", "defect type", "score", "verdict", "agrees"]
METRICS = [("image AUC", "image_roc_auc"), ("pixel AUC", "pixel_roc_auc"), ("AU-PRO", "au_pro"),
           ("region overlap", "region_overlap"), ("acc. good", "accuracy_good"),
           ("acc. defective", "accuracy_defective"), ("images", "n_images")]
ErrorReporter = Callable[[str, str, str], None]


def _relative(path: Path, root: Path) -> Path:
    try:
        return path.relative_to(root)
    except ValueError:
        return path


class ReviewPanel(QWidget):
    """``scored(ReviewOutcome)`` when a scoring run finished; ``recipe_taught(str)`` for a recipe
    taught first."""

    scored = Signal(object)
    recipe_taught = Signal(str)

    def __init__(self, ctx: StationContext, report: ErrorReporter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.report = report
        self.outcome: ReviewOutcome | None = None
        self.job: Job | None = None
        self.export_job: Job | None = None
        self._rows: list[dict[str, Any]] = []

        # --- controls
        self.data = QLineEdit(ctx.settings.review_folder)
        self.data.setPlaceholderText("an MVTec AD category (e.g. …/mvtec_ad/bottle) or any folder of images")
        browse = QPushButton("Open…")
        browse.clicked.connect(self._browse)
        self.recipe = QComboBox()
        self.detector = QComboBox()
        for info in available_detectors():
            self.detector.addItem(info.title, info.kind)
        self.per_type = QSpinBox()
        self.per_type.setRange(0, 100000)
        self.per_type.setSpecialValueText("all")
        self.per_type.setValue(ctx.settings.review_max_per_type)
        self.per_type.setToolTip("a quick look: at most this many test images per defect type")
        self.score_button = QPushButton("Score")
        self.export_button = QPushButton("Export report…")
        self.export_button.setEnabled(False)
        self.progress = ProgressLine()
        self.progress.hide()
        self.summary = QLabel()
        self.summary.setWordWrap(True)
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
        row2.addWidget(QLabel("per type"))
        row2.addWidget(self.per_type)
        row2.addWidget(self.score_button)
        row2.addWidget(self.export_button)

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
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, len(COLUMNS)):
            self.table.horizontalHeader().setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.table.selectionModel().currentRowChanged.connect(lambda cur, _prev: self.show_row(cur.row()))

        # --- detail: Figure 3 (image with outlines | heatmap)
        self.image_view = ImageCanvas(show_heatmap=False, title="ground truth (red), detections (green)")
        self.heat_view = ImageCanvas(title="anomaly map (blue 0, green the threshold, red twice it)", lut=FULL_LUT)
        self.heat_view.view.setXLink(self.image_view.view)
        self.heat_view.view.setYLink(self.image_view.view)
        self.heat_only = QCheckBox("heatmap over the image")
        self.heat_only.setChecked(True)
        self.heat_only.toggled.connect(lambda _on: self.show_row(self.current_row()))
        self.detail_info = QLabel()
        self.detail_info.setWordWrap(True)
        detail = QWidget()
        dl = QVBoxLayout(detail)
        dl.setContentsMargins(0, 0, 0, 0)
        views = QHBoxLayout()
        views.addWidget(self.image_view, 1)
        views.addWidget(self.heat_view, 1)
        dl.addLayout(views, 1)
        il = QHBoxLayout()
        il.addWidget(self.detail_info, 1)
        il.addWidget(self.heat_only)
        dl.addLayout(il)

        # --- metrics and curves
        self.metrics = QTableWidget(0, len(METRICS) + 1)
        self.metrics.setHorizontalHeaderLabels(["", *[m for m, _ in METRICS]])
        self.metrics.verticalHeader().hide()
        self.metrics.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.metrics.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.roc_plot = pg.PlotWidget(title="ROC")
        self.pro_plot = pg.PlotWidget(title="PRO (up to the FPR limit)")
        for plot, ylabel in ((self.roc_plot, "true-positive rate"), (self.pro_plot, "per-region overlap")):
            plot.setBackground("w")
            plot.setLabel("bottom", "false-positive rate")
            plot.setLabel("left", ylabel)
            plot.showGrid(x=True, y=True, alpha=0.3)
            plot.addLegend(offset=(-10, -10), labelTextColor=(32, 33, 36))
            for axis in ("bottom", "left"):
                plot.getAxis(axis).enableAutoSIPrefix(False)
        curves = QWidget()
        cl = QHBoxLayout(curves)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.addWidget(self.roc_plot)
        cl.addWidget(self.pro_plot)
        self.bottom_tabs = QTabWidget()
        self.bottom_tabs.addTab(self.metrics, "Metrics")
        self.bottom_tabs.addTab(curves, "Curves")

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
        self.table.setMinimumWidth(360)
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
        self.fill_recipes()

    # --- controls ---------------------------------------------------------------------------------
    def fill_recipes(self) -> None:
        current = self.recipe.currentData()
        self.recipe.blockSignals(True)
        self.recipe.clear()
        for entry in list_recipes(self.ctx.models_dir):
            self.recipe.addItem(entry.label, str(entry.path))
        self.recipe.addItem("teach from train/good first", TEACH_FIRST)
        i = self.recipe.findData(current)
        self.recipe.setCurrentIndex(i if i >= 0 else 0)
        self.recipe.blockSignals(False)
        self._recipe_mode()

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
        self.ctx.settings.review_folder = data
        self.ctx.settings.review_max_per_type = self.per_type.value()
        self.ctx.save_settings()
        self.clear()
        self.summary.setText("")
        self.progress.begin("opening")
        self.score_button.setEnabled(False)
        self.export_button.setEnabled(False)
        audit = self.ctx.audit

        def fn(progress: Callable[[Progress], None], cancel: Any) -> ReviewOutcome:
            def on_image(sample: Sample, _image: np.ndarray, res: InspectionResult, _mask: Any) -> None:
                job.emit_item((sample, res.score, res.verdict.value))
            return run_review(request, progress, cancel, on_image=on_image, audit=audit)

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
        self.metrics.setRowCount(0)
        self.roc_plot.clear()
        self.pro_plot.clear()
        self.image_view.clear_all()
        self.heat_view.clear_all()
        self.detail_info.setText("")

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
        self.outcome = outcome
        res = outcome.result
        self.progress.end("done")
        self.progress.hide()
        self.score_button.setEnabled(True)
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
        self._show_metrics(outcome)
        problems = f"; {len(res.problems)} file(s) skipped (see Details)" if len(res.problems) else ""
        taught = f" Recipe taught first: {outcome.taught}." if outcome.taught else ""
        self.summary.setText(
            f"<b>{res.category}</b> scored with <b>{res.recipe}</b> at threshold {res.threshold:.4g}, minimum area "
            f"{res.min_defect_area_px:g} px: {len(res.records)} images, {res.timing['ms_per_image']:.0f} ms/image"
            f"{problems}.{taught}" + ("" if outcome.labelled else
                                      " No ground truth in a plain folder: verdicts and scores only."))
        for path, msg in res.problems:
            self.report("review", f"{path}: {msg}", "")
        if outcome.taught:
            self.recipe_taught.emit(str(outcome.taught))
            self.fill_recipes()
        if res.records:
            self.table.selectRow(0)
        self.scored.emit(outcome)

    def _failed(self, message: str, details: str) -> None:
        self.progress.end("failed")
        self.score_button.setEnabled(True)
        self.summary.setText(f"<span style='color:#a50e0e'>Scoring failed: {message}</span>")
        self.report("review", message, details)

    def _cancelled(self) -> None:
        self.progress.end("cancelled")
        self.score_button.setEnabled(True)
        self.summary.setText("Scoring cancelled.")

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
        self.image_view.show_image(image)
        self.image_view.show_result(inspection)
        self.image_view.show_ground_truth(mask if self.outcome.labelled else None)
        if self.heat_only.isChecked():
            self.heat_view.show_image(image)
        else:
            self.heat_view.show_image(np.zeros(image.shape[:2], np.uint8))
        self.heat_view.show_result(inspection, show_regions=False)
        self.heat_view.set_heatmap_visible(True)
        ov = f", ground-truth overlap {np.mean(rec.overlaps):.0%}" if rec.overlaps else ""
        self.detail_info.setText(f"{rec.name}: score {rec.score:.4g}, {rec.verdict}, {rec.n_regions} region(s)"
                                 f"{', largest ' + format(rec.largest_region_px, '.0f') + ' px' if rec.n_regions else ''}"
                                 f"{ov}")

    def _show_metrics(self, outcome: ReviewOutcome) -> None:
        res = outcome.result
        self.metrics.setRowCount(0)
        if outcome.labelled:
            for name, m in res.metrics.items():
                r = self.metrics.rowCount()
                self.metrics.insertRow(r)
                self.metrics.setItem(r, 0, QTableWidgetItem(name))
                for c, (_, key) in enumerate(METRICS, 1):
                    v = m.get(key)
                    text = "–" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
                    item = QTableWidgetItem(text)
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                    self.metrics.setItem(r, c, item)
        self.roc_plot.clear()
        self.pro_plot.clear()
        m = res.overall
        if len(res.image_roc[0]):
            self.roc_plot.plot(res.image_roc[0], res.image_roc[1], pen=pg.mkPen((26, 115, 232), width=2),
                               name=f"image (AUC {m['image_roc_auc']:.3f})")
        if res.pixel is not None:
            self.roc_plot.plot(res.pixel.fpr, res.pixel.tpr, pen=pg.mkPen((217, 48, 37), width=2),
                               name=f"pixel (AUC {m['pixel_roc_auc']:.3f})")
            lim = m["fpr_limit"]
            sel = res.pixel.fpr <= lim
            self.pro_plot.plot(res.pixel.fpr[sel], res.pixel.pro[sel], pen=pg.mkPen((30, 142, 62), width=2),
                               name=f"AU-PRO@{lim:g} {m['au_pro']:.3f}")
            self.pro_plot.setXRange(0, lim)
            self.pro_plot.setYRange(0, 1)
        self.roc_plot.plot([0, 1], [0, 1], pen=pg.mkPen((180, 180, 180), style=Qt.PenStyle.DashLine))
        self.roc_plot.setXRange(0, 1)
        self.roc_plot.setYRange(0, 1)

    # --- export -----------------------------------------------------------------------------------
    def _choose_export(self) -> None:
        if self.outcome is None:
            return
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        default = self.ctx.paths.runs / f"review-{self.outcome.result.category}-{stamp}"
        folder = QFileDialog.getExistingDirectory(self, "Folder for the report", str(default.parent))
        if folder:
            self.export(Path(folder) / default.name)

    def export(self, out_dir: Path) -> Job | None:
        if self.outcome is None:
            return None
        outcome = self.outcome
        self.progress.begin("exporting")
        self.export_button.setEnabled(False)
        job = Job(lambda progress, cancel: export_report(outcome, out_dir, progress, cancel), "export", self)
        job.progress.connect(self.progress.update_progress)

        def finished(path: Path) -> None:
            self.progress.end("exported")
            self.export_button.setEnabled(True)
            self.summary.setText(self.summary.text() + f"<br>Report written: {Path(path).parent}")

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
