"""Small widgets the modes share: the verdict, the error bar, the progress line, thumbnails."""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import QEvent, QObject, QSize, Qt, Signal
from PySide6.QtGui import QFont, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from station.core.progress import Progress

log = logging.getLogger(__name__)

OK_STYLE = "background:#1e8e3e; color:white; border-radius:8px;"
NG_STYLE = "background:#d93025; color:white; border-radius:8px;"
IDLE_STYLE = "background:#5f6368; color:#e8eaed; border-radius:8px;"
# not judged (the input watch refused the frame): amber, smaller, never mistaken for OK
OUT_STYLE = "background:#f29900; color:black; border-radius:8px; font-size:18pt;"
VERDICT_TEXT = {"OUT_OF_RANGE": "OUT OF RANGE\nnot judged"}


def to_qimage(image: np.ndarray) -> QImage:
    """A deep-copied QImage of an RGB or gray ``uint8`` array."""
    image = np.ascontiguousarray(image)
    h, w = image.shape[:2]
    if image.ndim == 2:
        return QImage(image.data, w, h, image.strides[0], QImage.Format.Format_Grayscale8).copy()
    return QImage(image.data, w, h, image.strides[0], QImage.Format.Format_RGB888).copy()


def thumbnail(image: np.ndarray, side: int = 96) -> np.ndarray:
    h, w = image.shape[:2]
    f = side / max(h, w)
    if f >= 1:
        return image
    return cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def to_icon(image: np.ndarray, side: int = 96) -> QIcon:
    return QIcon(QPixmap.fromImage(to_qimage(thumbnail(image, side))))


class VerdictLabel(QLabel):
    """The large OK / NG sign."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("—", parent)
        font = QFont()
        font.setPointSize(48)
        font.setBold(True)
        self.setFont(font)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(200, 110)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.set_verdict(None)

    def set_verdict(self, verdict: str | None) -> None:
        if getattr(self, "verdict", object()) == verdict:
            return  # restyling costs more than a frame's worth of drawing
        self.verdict = verdict
        self.setText(VERDICT_TEXT.get(verdict or "", verdict or "—"))
        self.setStyleSheet(OK_STYLE if verdict == "OK" else NG_STYLE if verdict == "NG" else
                           OUT_STYLE if verdict == "OUT_OF_RANGE" else IDLE_STYLE)


class ThumbnailStrip(QListWidget):
    """A horizontal strip of thumbnails; ``activated_key(object)`` when one is clicked."""

    activated_key = Signal(object)

    def __init__(self, side: int = 96, max_items: int = 12, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.side = side
        self.max_items = max_items
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setFlow(QListWidget.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListWidget.Movement.Static)
        self.setIconSize(QSize(side, side))
        self.setFixedHeight(side + 58)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setSpacing(4)
        self.itemClicked.connect(lambda item: self.activated_key.emit(item.data(Qt.ItemDataRole.UserRole)))

    def prepend(self, image: np.ndarray, text: str, key: object) -> None:
        item = QListWidgetItem(to_icon(image, self.side), text)
        item.setData(Qt.ItemDataRole.UserRole, key)
        self.insertItem(0, item)
        while self.count() > self.max_items:
            self.takeItem(self.count() - 1)

    def append(self, image: np.ndarray, text: str, key: object) -> None:
        item = QListWidgetItem(to_icon(image, self.side), text)
        item.setData(Qt.ItemDataRole.UserRole, key)
        self.addItem(item)
        while self.count() > self.max_items:
            self.takeItem(0)
        self.scrollToBottom()


class ErrorBar(QWidget):
    """A red bar with the latest error from any worker; repeated messages are counted, not stacked.
    Every message is logged, and all of them stay available under "Details"."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setStyleSheet("ErrorBar { background:#fce8e6; } QLabel { color:#a50e0e; }")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        details = QPushButton("Details…")
        details.clicked.connect(self.show_details)
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(self.dismiss)
        layout.addWidget(self.label, 1)
        layout.addWidget(details)
        layout.addWidget(dismiss)
        self.messages: list[tuple[str, str, str, str, int]] = []  # time, where, message, details, count
        self.hide()

    def report(self, where: str, message: str, details: str = "", level: int = logging.ERROR) -> None:
        """Show a problem. ``where`` says which part of the station had it (e.g. "camera")."""
        stamp = datetime.now().strftime("%H:%M:%S")
        if self.messages and self.messages[-1][1:3] == (where, message):
            t, w, m, d, n = self.messages[-1]
            self.messages[-1] = (stamp, w, m, d, n + 1)
        else:
            log.log(level, "%s: %s", where, message)
            self.messages.append((stamp, where, message, details, 1))
            del self.messages[:-200]
        t, w, m, _, n = self.messages[-1]
        repeat = f" (×{n})" if n > 1 else ""
        self.label.setText(f"<b>{html.escape(w)}</b> {t}: {html.escape(m)}{repeat}")
        self.show()

    @property
    def last_message(self) -> str | None:
        return self.messages[-1][2] if self.messages else None

    def dismiss(self) -> None:
        self.hide()

    def resolve(self, where: str) -> None:
        """The cause of the problems from ``where`` is gone: hide the bar if it shows one of them
        (they stay under "Details")."""
        if self.messages and self.messages[-1][1] == where:
            self.hide()

    def show_details(self) -> None:
        text = "\n\n".join(f"{t} {w}: {m}" + (f" (×{n})" if n > 1 else "") + (f"\n{d}" if d else "")
                           for t, w, m, d, n in self.messages[-30:])
        box = QMessageBox(QMessageBox.Icon.Warning, "Problems", "Recent problems (newest last):", parent=self)
        box.setDetailedText(text)
        box.setInformativeText("\n".join(f"{t} {w}: {m}" for t, w, m, _, _ in self.messages[-5:]))
        box.exec()


class ProgressLine(QWidget):
    """Stage, progress bar, elapsed time and an estimate of the time left, plus a Cancel button."""

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None, cancellable: bool = True) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.stage = QLabel()
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.time = QLabel()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.cancel_button.setVisible(cancellable)
        layout.addWidget(self.stage)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.time)
        layout.addWidget(self.cancel_button)
        self._stage_name = ""
        self._stage_t0 = time.monotonic()
        self._t0 = time.monotonic()

    def begin(self, text: str = "") -> None:
        self._t0 = self._stage_t0 = time.monotonic()
        self._stage_name = ""
        self.stage.setText(text)
        self.bar.setValue(0)
        self.time.setText("")
        self.cancel_button.setEnabled(True)
        self.show()

    def update_progress(self, p: Progress) -> None:
        now = time.monotonic()
        if p.stage != self._stage_name:
            self._stage_name, self._stage_t0 = p.stage, now
        if p.total <= 1 and p.done < 1:  # one step without counts (e.g. the metrics): a busy bar
            self.stage.setText(f"{p.message or p.stage}…")
            self.bar.setRange(0, 0)
        else:
            self.stage.setText(f"{p.stage} {p.done}/{p.total}")
            self.bar.setRange(0, 1000)
            self.bar.setValue(round(1000 * p.fraction))
        elapsed = now - self._t0
        stage_elapsed = now - self._stage_t0
        text = f"{elapsed:.0f} s"
        if 0 < p.fraction < 1 and stage_elapsed > 0.5:
            left = stage_elapsed / p.fraction - stage_elapsed
            text += f", ~{left:.0f} s left in this step"
        self.time.setText(text)

    def end(self, text: str = "") -> None:
        self.stage.setText(text)
        self.bar.setRange(0, 1000)
        self.bar.setValue(1000 if text else 0)
        self.cancel_button.setEnabled(False)


class EnterKey(QObject):
    """Enter in ``widget`` calls ``action`` and goes no further: in a wizard an unhandled Enter presses
    the default button, Next -- typing a source and pressing Enter must not leave the page."""

    def __init__(self, widget: QWidget, action: Callable[[], None]) -> None:
        super().__init__(widget)
        self.action = action
        widget.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.KeyPress and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.action()
            return True
        return False


def on_event(widget: QObject, event: Any, slot: Callable[..., Any]) -> None:
    """Call ``slot`` whenever the app event ``event`` (psygnal) fires, for as long as ``widget``
    lives: a deleted widget is disconnected, never called."""
    event.connect(slot)
    widget.destroyed.connect(lambda *_: event.disconnect(slot, missing_ok=True))

