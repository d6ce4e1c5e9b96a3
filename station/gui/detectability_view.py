"""A detectability table (``station.core.detectability``) as a small heat table: one row per defect
kind, one column per area, the recall at the contrast picked above it, and the sentences below.
Shown on the wizard's threshold page (with a button that asks for it) and in Review (read-only)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
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

from station.core.detectability import TARGET_RECALL, DetectabilityTable
from station.core.synthetic_defects import KIND_NAMES
from station.core.units import px_to_mm2

SHORT_NAMES = {"dark_spot": "dark", "bright_spot": "bright", "scratch": "scratch", "patch": "patch"}


def _num(v: float) -> str:
    """An area for a narrow cell: two significant digits, never an exponent."""
    return f"{v:.0f}" if v >= 100 else f"{v:.2g}"


def recall_colour(recall: float) -> QColor:
    """Red (nothing found) through yellow to green (all found), light enough for black text."""
    return QColor.fromHsvF(max(0.0, min(1.0, recall)) / 3.0, 0.45, 0.97)


class DetectabilityView(QGroupBox):
    """``compute_requested()`` when the button (if any) is pressed."""

    compute_requested = Signal()

    def __init__(self, with_button: bool = False, sentences: bool = True, parent: QWidget | None = None) -> None:
        super().__init__("What it will catch: synthetic defects", parent)
        self.contrast = QComboBox()
        self.contrast.setToolTip("the defects' contrast: how many grey levels they differ from the part")
        self.grid = QTableWidget(0, 0)
        self.grid.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.grid.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.grid.horizontalHeader().setMinimumSectionSize(36)
        self.grid.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.grid.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.grid.setWordWrap(False)
        self.grid.setMinimumHeight(8 * (self.fontMetrics().height() + 6) + 4)
        self._small = self.font()
        self._small.setPointSizeF(self._small.pointSizeF() * 0.85)
        self.sentences = QLabel()
        self.sentences.setWordWrap(True)
        self.sentences.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.sentences.setVisible(sentences)  # on the crowded threshold page: in the last column's tooltips
        self.status = QLabel("not measured yet")
        self.status.setWordWrap(True)
        self.button = QPushButton("Measure") if with_button else None
        top = QHBoxLayout()
        top.addWidget(QLabel("recall at contrast"))
        top.addWidget(self.contrast)
        top.addWidget(QLabel("grey levels"))
        top.addStretch(1)
        if self.button is not None:
            self.button.setToolTip("paste dark and bright spots, scratches and texture patches of several areas "
                                   "and contrasts onto the held-out good samples and inspect them (on a worker)")
            self.button.clicked.connect(self.compute_requested)
            top.addWidget(self.button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.grid, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.sentences)
        self.table: DetectabilityTable | None = None
        self.contrast.currentIndexChanged.connect(lambda _i: self._fill())

    def set_status(self, text: str) -> None:
        self.status.setText(text)

    def set_table(self, table: DetectabilityTable | None) -> None:
        """Show ``table`` (``None``: clear); the contrast picked stays where the new table has it."""
        self.table = table
        picked = self.contrast.currentData()
        self.contrast.blockSignals(True)
        self.contrast.clear()
        if table is not None:
            for c in table.contrasts:
                self.contrast.addItem(f"{c:g}", c)
            i = self.contrast.findData(picked) if picked is not None else -1
            self.contrast.setCurrentIndex(i if i >= 0 else min(1, len(table.contrasts) - 1))
        self.contrast.blockSignals(False)
        self._fill()

    def _fill(self) -> None:
        t = self.table
        if t is None:
            self.grid.setRowCount(0)
            self.grid.setColumnCount(0)
            self.sentences.setText("")
            return
        c = max(0, self.contrast.currentIndex())
        mm = bool(t.pixel_size_mm)
        n_areas = len(t.areas_px)
        # rows: the areas, then where >= 95 % is reached; columns: the kinds (narrow: fits beside the histogram)
        self.grid.setRowCount(n_areas + 1)
        self.grid.setColumnCount(len(t.kinds))
        for k, kind in enumerate(t.kinds):
            item = QTableWidgetItem(SHORT_NAMES.get(kind, kind))
            item.setToolTip(KIND_NAMES[kind])
            self.grid.setHorizontalHeaderItem(k, item)
        for a, area in enumerate(t.areas_px):
            label = f"{_num(px_to_mm2(area, t.pixel_size_mm))} mm²" if mm else f"{_num(area)} px"
            item = QTableWidgetItem(("< " if area < t.min_defect_area_px else "") + label)
            item.setToolTip(f"defects of {t.area_text(area)}" + (
                " -- below the minimum defect area: not to be found by design"
                if area < t.min_defect_area_px else ""))
            self.grid.setVerticalHeaderItem(a, item)
        found = QTableWidgetItem(f"≥{TARGET_RECALL * 100:g} % from")
        found.setToolTip(f"the smallest area from which on (it and every larger one) at least "
                         f"{TARGET_RECALL * 100:g} % are found, and from which contrast up (grey levels)")
        self.grid.setVerticalHeaderItem(n_areas, found)
        for k, kind in enumerate(t.kinds):
            for a in range(n_areas):
                r = float(t.recall[k, a, c])
                cell = QTableWidgetItem(f"{round(r * 100)} %")
                cell.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                cell.setBackground(QBrush(recall_colour(r)))
                cell.setToolTip(f"{KIND_NAMES[kind]} of {t.area_text(t.areas_px[a])}, contrast {t.contrasts[c]:g}: "
                                f"{round(r * t.counts[k, a, c])} of {t.counts[k, a, c]} found")
                self.grid.setItem(a, k, cell)
            _pct, a, ci, reached = t.finding(kind)
            area = t.areas_px[a]
            where = _num(px_to_mm2(area, t.pixel_size_mm)) if mm else _num(area)
            cell = QTableWidgetItem(f"{where} ≥{t.contrasts[ci]:g}" if reached else "never")
            cell.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            cell.setFont(self._small)
            cell.setToolTip(t.sentence(kind) + ".")
            if not reached:
                cell.setBackground(QBrush(recall_colour(0.0)))
            self.grid.setItem(n_areas, k, cell)
        self.sentences.setText("\n".join(f"• {s[0].upper()}{s[1:]}." for s in t.sentences()))
        self.set_status(f"{int(t.counts.sum())} defects on {t.n_images} held-out images"
                        + (f", {t.seconds:.0f} s" if t.seconds else "") + "; found = NG with a region on it")
        self.status.setToolTip(t.header())
