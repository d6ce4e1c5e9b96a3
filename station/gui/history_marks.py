"""The results history's false-reject marks: an engineer marks an NG part whose archived image shows a
good part as a false reject, and it joins the part's good-sample pool (``station.app.sample_pool``),
from which the Teach tab re-teaches (``station.gui.reteach_dialog``). Marking is for engineers only;
an operator sees the marks.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from station.app.context import StationContext
from station.app.sample_pool import PoolError, PoolSample, SamplePool, pool_for_row, result_key

log = logging.getLogger(__name__)


def all_marks(models_dir: Path) -> dict[str, PoolSample]:
    """The marked false rejects of every part in ``models_dir`` by their row's key (a few small JSON
    files; unreadable pools are skipped, logged)."""
    out: dict[str, PoolSample] = {}
    if not models_dir.is_dir():
        return out
    for part in models_dir.iterdir():
        if part.is_dir() and not part.name.startswith("."):
            try:
                out.update(SamplePool(part).marked())
            except PoolError as exc:
                log.warning("%s", exc)
    return out


class MarkBar(QWidget):
    """"Mark as good (false reject)" / "Unmark" for the row the history shows; ``changed()`` after
    either, so the table shows the mark."""

    changed = Signal()

    def __init__(self, ctx: StationContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.row: dict[str, Any] | None = None
        self.image: Path | None = None
        self.marks: dict[str, PoolSample] = {}
        self.mark_button = QPushButton("Mark as good (false reject)")
        self.mark_button.setToolTip("This NG part is good: it joins the part's good-sample pool, and the Teach tab "
                                    "re-teaches the recipe from the pool (audited)")
        self.unmark_button = QPushButton("Unmark")
        self.state = QLabel()
        self.state.setWordWrap(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.mark_button)
        layout.addWidget(self.unmark_button)
        layout.addWidget(self.state, 1)
        self.mark_button.clicked.connect(self.mark)
        self.unmark_button.clicked.connect(self.unmark)
        self.reload()

    def reload(self) -> None:
        self.marks = all_marks(self.ctx.models_dir)
        self.refresh()

    def is_marked(self, row: dict[str, Any]) -> bool:
        return result_key(row) in self.marks

    def set_row(self, row: dict[str, Any] | None, image: Path | None) -> None:
        self.row, self.image = row, image
        self.refresh()

    def refresh(self) -> None:
        """Follow the row and engineer mode (the window calls it when engineer mode changes)."""
        row, engineer = self.row, self.ctx.engineer.unlocked
        marked = row is not None and self.is_marked(row)
        can_mark = row is not None and row.get("verdict") == "NG" and self.image is not None and bool(row.get("recipe"))
        self.mark_button.setVisible(not marked)
        self.unmark_button.setVisible(marked)
        self.mark_button.setEnabled(engineer and can_mark)
        self.unmark_button.setEnabled(engineer)
        if marked:
            s = self.marks[result_key(row)]
            self.state.setText(f"Marked as a false reject{f' by {s.by}' if s.by else ''} ({s.added}); in the good-sample "
                               f"pool of {row.get('recipe')}.")
        elif row is not None and row.get("verdict") == "NG" and not engineer:
            self.state.setText("An engineer can mark this part as a false reject.")
        elif row is not None and row.get("verdict") == "NG" and self.image is None:
            self.state.setText("Without its archived image this part cannot be marked.")
        else:
            self.state.setText("")

    def mark(self) -> PoolSample | None:
        if self.row is None or self.image is None or not self.ctx.engineer.unlocked:
            return None
        try:
            sample = pool_for_row(self.ctx.models_dir, self.row).mark(self.row, self.image, self.ctx.audit,
                                                                      role=self.ctx.role)
        except PoolError as exc:
            self.state.setText(f"<span style='color:#a50e0e'>Not marked: {exc}</span>")
            return None
        self.reload()
        self.changed.emit()
        return sample

    def unmark(self) -> bool:
        if self.row is None or not self.ctx.engineer.unlocked:
            return False
        try:
            done = pool_for_row(self.ctx.models_dir, self.row).unmark(self.row, self.ctx.audit, role=self.ctx.role)
        except PoolError as exc:
            self.state.setText(f"<span style='color:#a50e0e'>{exc}</span>")
            return False
        self.reload()
        self.changed.emit()
        return done
