"""The Review window's metrics (overall and per defect type, each heading explained in its tooltip)
and its ROC / PRO curves, as two tabs."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from station.app.review import ReviewOutcome
from station.core.report_html import METRIC_HELP, SUBSET_HELP
from station.gui.detectability_view import DetectabilityView


class MetricsView(QTabWidget):
    """Tab 0: the metrics table; tab 1: the curves; tab 2: the recipe's detectability."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.metrics = QTableWidget(0, len(METRIC_HELP) + 1)
        self.metrics.setHorizontalHeaderLabels(["subset", *[name for name, _, _ in METRIC_HELP]])
        header_tips = [SUBSET_HELP, *[tip for _, _, tip in METRIC_HELP]]
        for c, tip in enumerate(header_tips):
            self.metrics.horizontalHeaderItem(c).setToolTip(tip)
        self.metrics.verticalHeader().hide()
        self.metrics.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        # the numbers share the width, a long heading wraps: at 1024x768 the last columns were out of sight
        header = self.metrics.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setMinimumSectionSize(52)
        header.setDefaultAlignment(Qt.AlignmentFlag(Qt.AlignmentFlag.AlignCenter.value | Qt.TextFlag.TextWordWrap.value))
        header.setMinimumHeight(2 * header.fontMetrics().height() + 8)  # room for a wrapped heading
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
        # the recipe's stored recall on synthetic defects (station eval --synthetic, the wizard's Measure)
        self.detectability = DetectabilityView()
        self.detectability_note = QLabel()
        self.detectability_note.setWordWrap(True)
        self.detectability_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        detect = QWidget()
        dl = QVBoxLayout(detect)
        dl.setContentsMargins(0, 0, 0, 0)
        dl.addWidget(self.detectability_note)
        dl.addWidget(self.detectability, 1)
        self.addTab(self.metrics, "Metrics")
        self.addTab(curves, "Curves")
        self.addTab(detect, "Detectability")

    def clear_all(self) -> None:
        self.metrics.setRowCount(0)
        self.detectability.set_table(None)
        self.detectability_note.setText("")
        self.roc_plot.clear()
        self.pro_plot.clear()

    def show_outcome(self, outcome: ReviewOutcome) -> None:
        res = outcome.result
        self.clear_all()
        self.detectability.set_table(outcome.detectability)
        self.detectability.setVisible(outcome.detectability is not None)
        self.detectability_note.setText(outcome.detectability_note)
        self.detectability_note.setVisible(bool(outcome.detectability_note))
        if outcome.labelled:
            for name, m in res.metrics.items():
                r = self.metrics.rowCount()
                self.metrics.insertRow(r)
                first = QTableWidgetItem(name)
                first.setToolTip(SUBSET_HELP)
                self.metrics.setItem(r, 0, first)
                for c, (_, key, _) in enumerate(METRIC_HELP, 1):
                    v = m.get(key)
                    text = "–" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
                    item = QTableWidgetItem(text)
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                    self.metrics.setItem(r, c, item)
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
