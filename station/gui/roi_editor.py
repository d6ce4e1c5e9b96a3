"""The teach-in wizard's region-of-interest editor: the first good sample with a rectangle the engineer
drags and resizes to leave the fixture, the conveyor or a label out of the inspection.

The widget is thin: a finished drag -- or x, y, width and height typed in the fields beside it --
writes the rectangle to :attr:`TeachSession.roi`, which clamps or refuses it; the rectangle then shows the session's value, so what is drawn is always what will be
inspected. Outside the region the image is dimmed.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainterPath
from PySide6.QtWidgets import (
    QGraphicsPathItem,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from station.app.teach_session import TeachSession
from station.gui.image_view import ROI_PEN, ImageCanvas
from station.gui.widgets import EnterKey

SHADE = QColor(0, 0, 0, 150)  # outside the region: dark enough to read as "not inspected"


class RoiEditor(QWidget):
    """``changed()`` after the session's region of interest changed."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session: TeachSession | None = None
        self._bounds = QRectF()
        self.canvas = ImageCanvas(show_heatmap=False)
        self.canvas.setMinimumSize(240, 200)
        self.rect = pg.RectROI([0, 0], [1, 1], pen=pg.mkPen(ROI_PEN, width=2), rotatable=False,
                               snapSize=1.0, translateSnap=True, scaleSnap=True)
        # a handle on every corner and side, each scaling about the opposite one
        for handle, centre in (([0, 0], [1, 1]), ([1, 0], [0, 1]), ([0, 1], [1, 0]),
                               ([0.5, 0], [0.5, 1]), ([0.5, 1], [0.5, 0]), ([0, 0.5], [1, 0.5]),
                               ([1, 0.5], [0, 0.5])):
            self.rect.addScaleHandle(handle, centre)
        self.rect.setZValue(10)
        self.shade = QGraphicsPathItem()
        self.shade.setBrush(QBrush(SHADE))
        self.shade.setPen(pg.mkPen(None))
        self.shade.setZValue(5)
        self.canvas.view.addItem(self.shade)
        self.canvas.view.addItem(self.rect)
        self.whole_button = QPushButton("Whole image")
        self.whole_button.setToolTip("Inspect the whole image (no region of interest)")
        self.value_label = QLabel()
        self.value_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message = QLabel()
        self.message.setWordWrap(True)
        hint = QLabel("Drag the yellow frame or its handles so it holds the part only: the fixture, the conveyor "
                      "or a label outside it (dimmed) are not inspected.")
        hint.setWordWrap(True)
        self.fields: dict[str, QSpinBox] = {}
        typed = QHBoxLayout()
        for key, label in (("x", "x"), ("y", "y"), ("w", "width"), ("h", "height")):
            box = QSpinBox()
            box.setRange(0, 100_000)
            box.setSuffix(" px")
            box.setKeyboardTracking(False)
            box.setToolTip(f"The region's {label} in pixels of the image; Enter or leaving the field applies it")
            box.editingFinished.connect(self._typed)
            EnterKey(box, self._typed)  # Enter applies the value; in the wizard it must not press Next
            typed.addWidget(QLabel(label))
            typed.addWidget(box)
            self.fields[key] = box
        typed.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(self.value_label, 1)
        row.addWidget(self.whole_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(hint)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(typed)
        layout.addLayout(row)
        layout.addWidget(self.message)
        self.rect.sigRegionChanged.connect(self._dragged)
        self.rect.sigRegionChangeFinished.connect(self._commit)
        self.whole_button.clicked.connect(self.whole_image)

    # --- session -> view ---------------------------------------------------------------------------
    def load(self, session: TeachSession) -> None:
        """Show the session's first good sample and its region (the whole image when it has none)."""
        self._session = session
        self.message.clear()
        if not session.images:
            self.canvas.clear_all()
            self.rect.hide()
            self.shade.setPath(QPainterPath())
            self.value_label.setText("no good samples yet")
            self.setEnabled(False)
            return
        self.setEnabled(True)
        image = session.images[0]
        h, w = image.shape[:2]
        self.canvas.show_image(image)
        self._bounds = QRectF(0, 0, w, h)
        self.rect.maxBounds = self._bounds  # pyqtgraph keeps drags and resizes inside the image
        self.rect.show()
        self._show(session.roi)
        self.canvas.view.autoRange(padding=0.04)  # room for the handles on the image's edges

    def _show(self, roi: tuple[int, int, int, int] | None) -> None:
        x, y, w, h = roi if roi is not None else (0, 0, int(self._bounds.width()), int(self._bounds.height()))
        self.rect.blockSignals(True)  # a programmatic move is not an edit
        try:
            self.rect.setPos((x, y), update=False)
            self.rect.setSize((w, h))
        finally:
            self.rect.blockSignals(False)
        self._update_overlay()

    def _current(self) -> tuple[float, float, float, float]:
        pos, size = self.rect.pos(), self.rect.size()
        return float(pos.x()), float(pos.y()), float(size.x()), float(size.y())

    def _update_overlay(self) -> None:
        x, y, w, h = self._current()
        path = QPainterPath()  # odd-even fill: the image minus the region
        path.addRect(self._bounds)
        path.addRect(QRectF(x, y, w, h))
        whole = (round(x), round(y), round(w), round(h)) == (0, 0, round(self._bounds.width()),
                                                            round(self._bounds.height()))
        self.shade.setPath(QPainterPath() if whole else path)
        self.value_label.setText(self.describe((round(x), round(y), round(w), round(h)), whole))
        for key, value in zip("xywh", (x, y, w, h), strict=True):
            box = self.fields[key]
            box.blockSignals(True)
            box.setValue(round(value))
            box.blockSignals(False)

    def describe(self, roi: tuple[int, int, int, int], whole: bool = False) -> str:
        """``x, y, w x h`` in pixels, and in mm when the session knows the pixel size."""
        x, y, w, h = roi
        text = f"whole image: {w} × {h} px" if whole else f"x {x}, y {y}, {w} × {h} px"
        px = self._session.pixel_size_mm if self._session is not None else None
        if px:
            text += (f"  ({w * px:.1f} × {h * px:.1f} mm)" if whole else
                     f"  ({x * px:.1f}, {y * px:.1f} mm; {w * px:.1f} × {h * px:.1f} mm)")
        return text

    # --- view -> session ---------------------------------------------------------------------------
    def _dragged(self) -> None:
        self._update_overlay()

    def _commit(self) -> None:
        s = self._session
        if s is None or not s.images:
            return
        before = s.roi
        try:
            s.roi = self._current()
            self.message.clear()
        except ValueError as exc:  # too small: say why and go back to the last accepted region
            self.message.setText(f"<span style='color:#a50e0e'>{exc}</span>")
        self._show(s.roi)
        if s.roi != before:
            self.changed.emit()

    def _typed(self) -> None:
        """The values typed in the fields, applied as a finished drag would be."""
        s = self._session
        if s is None or not s.images:
            return
        x, y, w, h = (self.fields[k].value() for k in "xywh")
        if (x, y, w, h) == tuple(round(v) for v in self._current()):
            return
        self.rect.blockSignals(True)
        try:
            self.rect.setPos((x, y), update=False)
            self.rect.setSize((w, h))
        finally:
            self.rect.blockSignals(False)
        self._commit()

    def whole_image(self) -> None:
        """Inspect the whole image again."""
        s = self._session
        if s is None:
            return
        before = s.roi
        s.roi = None
        self.message.clear()
        self._show(None)
        if before is not None:
            self.changed.emit()
