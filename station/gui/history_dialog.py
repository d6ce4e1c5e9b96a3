"""The results history: what the station inspected, filtered by time, verdict and source, with the
archived image of an NG part and a CSV export for the quality department.

Reading runs on a worker thread (:class:`~station.gui.workers.Job`) and is bounded by
:data:`~station.app.history.ROW_LIMIT` rows; a newer refresh makes older answers stale (generation
counter), so changing filters quickly never shows an old result. The live pipeline may write the
database meanwhile: readers use their own read-only connections (WAL). Given the station's context,
an engineer marks NG parts as false rejects here (``history_marks``: the mark bar under the image).

Over ~450 lines: the table model (sortable by any column) and the dialog around it are one screen; the
model is the first candidate to move out (``history_table.py``) when the dialog grows again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from station.app.context import StationContext
from station.app.history import (
    HEADERS,
    RANGES,
    ROW_LIMIT,
    VERDICTS,
    HistoryPage,
    HistoryQuery,
    archived_image,
    format_row,
    largest_area,
    summary_text,
    time_window,
)
from station.core.images import ImageLoadError, load_image
from station.gui.history_marks import MarkBar
from station.gui.image_view import ImageCanvas, polyline_xy
from station.gui.workers import Job

log = logging.getLogger(__name__)

VERDICT_COLUMN = HEADERS.index("Verdict")
SOURCE_COLUMN = HEADERS.index("Source")
NUMERIC_COLUMNS = {HEADERS.index(h) for h in ("Frame", "Score", "Regions", "Largest area", "Latency ms")}
SORT_KEYS: list[Callable[[dict[str, Any]], Any]] = [  # in HEADERS order
    lambda r: r.get("time"),
    lambda r: str(r.get("source") or ""),
    lambda r: r.get("frame_id"),
    lambda r: (str(r.get("recipe") or ""), r.get("recipe_version") or 0),
    lambda r: str(r.get("verdict") or ""),
    lambda r: r.get("score"),
    lambda r: int(r.get("n_regions") or 0),
    largest_area,
    lambda r: r.get("latency_ms"),
]
VERDICT_COLOURS = {"OK": ("#1e8e3e", "white"), "NG": ("#d93025", "white"), "ERROR": ("#f29900", "black"),
                   "OUT_OF_RANGE": ("#fde293", "black")}


class ResultsTableModel(QAbstractTableModel):
    """The rows of one read, newest first; cells are formatted once, when the rows arrive."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[dict[str, Any]] = []
        self._cells: list[tuple[str, ...]] = []
        self.is_marked: Callable[[dict[str, Any]], bool] = lambda _row: False  # a false reject marked good

        self._sort: tuple[int, Qt.SortOrder] = (0, Qt.SortOrder.DescendingOrder)  # newest first

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self._rows = self._sorted(rows)
        self._cells = [format_row(r) for r in self._rows]
        self.endResetModel()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """By any column, on the values (numbers as numbers; empty ones last either way)."""
        self._sort = (column, order)
        self.layoutAboutToBeChanged.emit()
        self._rows = self._sorted(self._rows)
        self._cells = [format_row(r) for r in self._rows]
        self.layoutChanged.emit()

    def _sorted(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        column, order = self._sort
        key = SORT_KEYS[column]
        present = [r for r in rows if key(r) is not None]
        missing = [r for r in rows if key(r) is None]
        present.sort(key=key, reverse=order == Qt.SortOrder.DescendingOrder)  # stable: ties keep their order
        return present + missing

    def row(self, i: int) -> dict[str, Any]:
        return self._rows[i]

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return HEADERS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if c == VERDICT_COLUMN and self.is_marked(self._rows[r]):
                return f"{self._cells[r][c]} → good"
            return self._cells[r][c]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if c in NUMERIC_COLUMNS:
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if c == VERDICT_COLUMN:
                return int(Qt.AlignmentFlag.AlignCenter)
            return None
        colours = VERDICT_COLOURS.get(self._rows[r].get("verdict") or "")
        if c == VERDICT_COLUMN and colours:
            if role == Qt.ItemDataRole.BackgroundRole:
                return QColor(colours[0])
            if role == Qt.ItemDataRole.ForegroundRole:
                return QColor(colours[1])
        if role == Qt.ItemDataRole.ToolTipRole:
            row = self._rows[r]
            tip = [f"{row.get('time_local', '')}", str(row.get("source") or "")]
            if row.get("threshold") is not None:
                tip.append(f"threshold {row['threshold']:.4g}")
            if row.get("label"):
                tip.append(f"the source says: {row['label']}")
            if row.get("error"):
                tip.append(f"error: {row['error']}")
            return "\n".join(tip)
        return None


def bbox_outlines(regions: list[dict[str, Any]]) -> list[np.ndarray]:
    """Closed rectangles through the edge pixels' centres of each region's box (the database keeps
    boxes, not contours)."""
    out = []
    for reg in regions:
        box = reg.get("bbox")
        if not box or len(box) != 4:
            continue
        x, y, w, h = (int(v) for v in box)
        x1, y1 = x + max(1, w) - 1, y + max(1, h) - 1
        out.append(np.array([[x, y], [x1, y], [x1, y1], [x, y1]], dtype=np.int32))
    return out


class HistoryDialog(QDialog):
    """Non-modal "Inspection results" window over the results database and the image archive.

    Parameters
    ----------
    db_path
        The results database (SQLite).
    archive_root
        The image archive, where moved archives are looked for too.
    shift_start
        Returns the start of the shift (Unix seconds) for the "This shift" range, or ``None``.
    """

    def __init__(self, db_path: str | Path, archive_root: str | Path | None = None,
                 shift_start: Callable[[], float | None] | None = None, parent: QWidget | None = None,
                 ctx: StationContext | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Inspection results")
        self.db_path = Path(db_path)
        self.archive_root = archive_root
        self._shift_start = shift_start
        self._generation = 0
        self._job: Job | None = None
        self._export_job: Job | None = None
        self.page: HistoryPage | None = None
        self.error: str | None = None

        self.range_box = QComboBox()
        for key, label in RANGES.items():
            self.range_box.addItem(label, key)
        self.range_box.setCurrentIndex(self.range_box.findData("shift" if shift_start else "today"))
        self.verdict_box = QComboBox()
        for v in VERDICTS:
            self.verdict_box.addItem("All verdicts" if v == "all" else v, None if v == "all" else v)
        self.source_box = QComboBox()
        self.source_box.setMinimumContentsLength(24)
        self.source_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.source_box.addItem("All sources", None)
        self.refresh_button = QPushButton("Refresh")
        self.export_button = QPushButton("Export CSV…")
        top = QHBoxLayout()
        for text, w in (("Time", self.range_box), ("Verdict", self.verdict_box), ("Source", self.source_box)):
            top.addWidget(QLabel(text))
            top.addWidget(w)
        top.addStretch(1)
        top.addWidget(self.refresh_button)
        top.addWidget(self.export_button)

        self.summary_label = QLabel("…")
        self.summary_label.setStyleSheet("font-size:11pt; font-weight:bold;")
        self.summary_label.setWordWrap(True)
        self.message = QLabel()  # errors (database unreadable) and notes (limit, export)
        self.message.setWordWrap(True)
        self.message.hide()

        self.model = ResultsTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)  # any column; the model sorts (newest first to begin with)
        self.table.horizontalHeader().setSortIndicator(0, Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().lineSpacing() + 6)
        self.table.horizontalHeader().setStretchLastSection(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setSectionResizeMode(SOURCE_COLUMN, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().currentRowChanged.connect(lambda cur, _prev: self.show_row(cur.row()))

        self.preview = ImageCanvas(show_heatmap=False)
        self.preview.setMinimumSize(260, 260)
        self.preview_info = QLabel("Select a row to see its archived image.")
        self.preview_info.setWordWrap(True)
        self.preview_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        side = QWidget()
        sl = QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(self.preview, 1)
        sl.addWidget(self.preview_info)
        # with the station's context: NG parts are marked as false rejects here (station.gui.history_marks)
        self.marks: MarkBar | None = MarkBar(ctx) if ctx is not None else None
        if self.marks is not None:
            sl.addWidget(self.marks)
            self.model.is_marked = self.marks.is_marked
            self.marks.changed.connect(lambda: self.model.layoutChanged.emit())
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.table)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.message)
        layout.addWidget(splitter, 1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        self.close_button = close.button(QDialogButtonBox.StandardButton.Close)
        layout.addWidget(close)
        self.resize(1280, 720)
        splitter.setSizes([800, 480])

        self.range_box.currentIndexChanged.connect(lambda _i: self.refresh())
        self.verdict_box.currentIndexChanged.connect(lambda _i: self.refresh())
        self.source_box.activated.connect(lambda _i: self.refresh())
        self.refresh_button.clicked.connect(self.refresh)
        self.export_button.clicked.connect(self.ask_export)

    # --- reading ----------------------------------------------------------------------------------
    @property
    def loading(self) -> bool:
        return self._job is not None

    def current_query(self, now: float | None = None) -> HistoryQuery:
        start = self._shift_start() if self._shift_start is not None else None
        since, until = time_window(self.range_box.currentData(), now, start)
        return HistoryQuery(since, until, self.verdict_box.currentData(), self.source_box.currentData())

    def refresh(self) -> None:
        """Read again with the current filters (on a worker; older reads still running are dropped)."""
        from station.app.history import load_history

        q = self.current_query()
        if self.marks is not None:
            self.marks.reload()
        self._generation += 1
        generation = self._generation
        self.refresh_button.setEnabled(False)
        job = Job(lambda _progress, _cancel: load_history(self.db_path, q, ROW_LIMIT), name="results-history",
                  parent=self)
        job.finished.connect(lambda page: self._loaded(generation, page))
        job.failed.connect(lambda msg, _tb: self._failed(generation, msg))
        for signal in (job.finished, job.failed):
            signal.connect(job.deleteLater)  # one small QObject per refresh must not pile up
        self._job = job
        job.start()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.refresh()  # opening the window shows what the line did up to now

    def _done(self, generation: int) -> bool:
        if generation != self._generation:
            return False  # a newer refresh is on its way
        self._job = None
        self.refresh_button.setEnabled(True)
        return True

    def _failed(self, generation: int, message: str) -> None:
        if not self._done(generation):
            return
        self.page = None
        self.error = message
        self.model.set_rows([])
        self.summary_label.setText("No results to show.")
        self._note(f"Cannot read the results database: {message}", error=True)
        self._show_nothing("")
        self.export_button.setEnabled(False)

    def _loaded(self, generation: int, page: HistoryPage) -> None:
        if not self._done(generation):
            return
        self.page = page
        self.error = None
        self._fill_sources(page.sources)
        self.summary_label.setText(summary_text(page.summary))
        self.model.set_rows(page.rows)
        if page.rows:
            header = self.table.horizontalHeader()
            header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
            self.table.resizeColumnsToContents()  # samples the first rows only (header precision)
            # a long source URI must not push the numbers out of sight: it takes the width that is left
            # (elided; the full URI is in the tooltip)
            header.setSectionResizeMode(SOURCE_COLUMN, QHeaderView.ResizeMode.Stretch)
        if page.truncated:
            self._note(f"Showing the newest {len(page.rows)} of {page.matching} matching rows; "
                       "narrow the time range, or export them all as CSV.")
        else:
            self._note("")
        self.export_button.setEnabled(True)
        self._show_nothing("Select a row to see its archived image.")

    def _fill_sources(self, present: list[tuple[str, int]]) -> None:
        chosen = self.source_box.currentData()
        self.source_box.blockSignals(True)
        self.source_box.clear()
        self.source_box.addItem("All sources", None)
        names = [s for s, _ in present]
        for src, n in present:
            self.source_box.addItem(f"{src} ({n})", src)
        if chosen and chosen not in names:  # keep the user's choice even when it has no rows here
            self.source_box.addItem(f"{chosen} (0)", chosen)
        self.source_box.setCurrentIndex(max(0, self.source_box.findData(chosen)) if chosen else 0)
        self.source_box.blockSignals(False)

    def _note(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color:#d93025; font-weight:bold;" if error else "color:#5f6368;")
        self.message.setVisible(bool(text))

    # --- preview ----------------------------------------------------------------------------------
    def _show_nothing(self, text: str, row: dict[str, Any] | None = None) -> None:
        self.preview.clear_all()
        self.preview_info.setText(text)
        if self.marks is not None:
            self.marks.set_row(row, None)

    def show_row(self, i: int) -> None:
        """Show row ``i``'s archived image with its defect boxes, or say why there is none."""
        if i < 0 or i >= self.model.rowCount():
            self._show_nothing("")
            return
        row = self.model.row(i)
        cells = format_row(row)
        head = f"frame {row.get('frame_id')} — {row.get('verdict')} — {cells[0]}"
        if row.get("score") is not None:
            head += f"\nscore {row['score']:.4g}" + (f" (threshold {row['threshold']:.4g})"
                                                     if row.get("threshold") is not None else "")
        regions = row.get("regions") or []
        for k, reg in enumerate(regions[:4], 1):
            c = reg.get("centroid")
            at = f" at ({c[0]:.0f}, {c[1]:.0f})" if isinstance(c, list) and len(c) == 2 else ""
            head += f"\nregion {k}: {float(reg.get('area_px') or 0):.0f} px{at}"
        if len(regions) > 4:
            head += f"\n… {len(regions) - 4} more region(s)"
        if row.get("error"):
            head += f"\nerror: {row['error']}"
        path, why = archived_image(row, self.archive_root)
        if path is None:
            self._show_nothing(f"{head}\n\nImage {why}.", row)
            return
        try:
            # one image, read on the GUI thread: a PNG of a few MB loads in tens of ms
            image = load_image(path)
        except (ImageLoadError, OSError) as exc:
            self._show_nothing(f"{head}\n\nThe archived image cannot be read: {exc}", row)
            return
        self.preview.show_image(image)
        self.preview.view.autoRange(padding=0.0)
        self.preview.det_item.setData(*polyline_xy(bbox_outlines(regions)))
        self.preview_info.setText(f"{head}\n{path.name}")
        if self.marks is not None:
            self.marks.set_row(row, path)

    # --- export -----------------------------------------------------------------------------------
    def ask_export(self) -> None:
        name = f"results_{self.range_box.currentData()}.csv"
        out, _ = QFileDialog.getSaveFileName(self, "Export the results as CSV", str(Path.home() / name),
                                             "CSV files (*.csv);;All files (*)")
        if out:
            self.export_to(out)

    def export_to(self, out: str | Path) -> Job:
        """Write the rows matching the shown filters (the same time window, no row limit) as CSV."""
        from station.live.results_db import export_csv

        q = self.page.query if self.page is not None else self.current_query()
        out = Path(out)

        def work(_progress: object, _cancel: object) -> int:
            tmp = out.with_name(out.name + ".tmp")
            try:  # whole or nothing: a half-written export must not look like the real one
                with open(tmp, "w", newline="", encoding="utf-8") as f:
                    n = export_csv(self.db_path, f, **q.filters())
                os.replace(tmp, out)
            finally:
                tmp.unlink(missing_ok=True)
            return n

        self.export_button.setEnabled(False)
        self._note(f"Exporting to {out} …")
        job = Job(work, name="results-export", parent=self)
        job.finished.connect(lambda n: self._exported(f"Exported {n} rows to {out}.", False))
        job.failed.connect(lambda msg, _tb: self._exported(f"Export failed: {msg}", True))
        for signal in (job.finished, job.failed):
            signal.connect(job.deleteLater)
        self._export_job = job
        return job.start()

    def _exported(self, text: str, error: bool) -> None:
        self._export_job = None
        self.export_button.setEnabled(True)
        self._note(text, error)

    @property
    def exporting(self) -> bool:
        return self._export_job is not None
