"""The Inspect screen's numbers: the shift's counts and yield (since "New shift", kept over a restart),
this run's rates, latency and dropped frames, and how full the NG archive is. Only shows them: the
counts and their definitions live in :mod:`station.live.shift` and :mod:`station.live.stats`."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QGridLayout, QGroupBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from station.live.shift import ShiftSnapshot
from station.live.stats import PipelineStats

BIG = "font-size:12pt; font-weight:bold;"
WARN = "color:#8a4b00; font-weight:bold;"
ERROR = "color:#a50e0e; font-weight:bold;"


BIG_KEYS = ("ok", "ng", "yield")


def reserve_width(label: QLabel, widest: str, big: bool = False) -> None:
    """Keep room for the widest text a number shows (in the large font where it gets one), so a long
    shift's counts are never clipped."""
    font = label.font()
    if big:  # the stylesheet's font only applies once shown
        font.setPointSize(max(font.pointSize(), 13))
        font.setBold(True)
    label.setMinimumWidth(QFontMetrics(font).horizontalAdvance(widest) + 4)


class ShiftNumbers(QWidget):
    """``labels``: one value label per figure, by key (ok, ng, failed, total, yield, since, camera,
    shown, inspected, latency, dropped); ``archive_info``: the archive's line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels: dict[str, QLabel] = {}
        # failed and not judged share a row: the screen must fit 768 px of height (issue 13)
        counts = self._group("Shift", [("ok", "OK"), ("ng", "NG"),
                                       (("failed", "out_of_range"), "error / not judged"),
                                       ("total", "parts"), ("yield", "yield"), ("since", "since")])
        counts.setToolTip("Since \"New shift\" (kept over a restart). Parts = OK + NG + not inspected + not "
                          "judged (the frame was unlike the teach images: too dark, blurred, no part); yield = OK "
                          "of all parts, so a part that could not be inspected or judged is not counted good.")
        for key in BIG_KEYS:
            lab = self.labels[key]
            lab.setStyleSheet(BIG)
            font = lab.font()
            font.setPointSize(12)
            font.setBold(True)
            lab.setMinimumHeight(QFontMetrics(font).height())  # never squeezed to half a digit
        self.rates = self._group("Throughput", [("camera", "camera view"), ("shown", "results shown"),
                                           ("inspected", "inspected"), ("latency", "latency p50"),
                                           ("dropped", "dropped frames")])
        self.labels["latency"].setToolTip(
            "Camera frame to verdict (the wait for the inspector included), median of this run's last "
            "2000 inspected frames; frames that failed are not in it. The results log stores the same "
            "figure per row (latency_ms), empty for failed frames.")
        self.labels["dropped"].setToolTip("Camera frames never inspected because inspection was slower "
                                          "than the camera (this shift); not parts, unless triggered")
        self.archive_info = QLabel()
        self.archive_info.setWordWrap(True)
        self.archive_info.setStyleSheet("color:#555;")
        # a wrapped label is otherwise squeezed below its text's height in the side column
        self.archive_info.setMinimumHeight(2 * self.archive_info.fontMetrics().lineSpacing() + 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for w in (counts, self.archive_info):  # ``rates`` is placed by the screen (the bottom row)
            layout.addWidget(w)

    def _group(self, title: str, rows: list[tuple[str | tuple[str, str], str]]) -> QGroupBox:
        box = QGroupBox(title)
        grid = QGridLayout(box)
        for i, (keys, text) in enumerate(rows):
            name = QLabel(text)
            name.setMinimumHeight(name.fontMetrics().height())  # the image shrinks first, never a row
            grid.addWidget(name, i, 0)
            values = QHBoxLayout()
            values.setContentsMargins(0, 0, 0, 0)
            values.addStretch(1)
            for j, key in enumerate((keys,) if isinstance(keys, str) else keys):
                if j:
                    values.addWidget(QLabel("/"))
                lab = QLabel("–")
                lab.setMinimumHeight(lab.fontMetrics().height())
                lab.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                widest = {"dropped": "99999 (100%)", "since": "23:59:59"}.get(key, "9999999" if j == 0 else "99999")
                reserve_width(lab, widest, key in BIG_KEYS)
                values.addWidget(lab)
                self.labels[key] = lab
            grid.addLayout(values, i, 1)
        return box

    def update_numbers(self, snap: ShiftSnapshot, stats: PipelineStats | None, running: bool, camera_fps: float,
             shown_fps: float, archive: str, dropped_warning_share: float) -> None:
        lab = self.labels
        lab["ok"].setText(str(snap.ok))
        lab["ng"].setText(str(snap.ng))
        lab["failed"].setText(str(snap.failed))
        lab["failed"].setStyleSheet(ERROR if snap.failed else "")
        lab["out_of_range"].setText(str(snap.out_of_range))
        lab["out_of_range"].setStyleSheet(WARN if snap.out_of_range else "")
        lab["total"].setText(str(snap.total))
        lab["yield"].setText("–" if snap.yield_percent is None else f"{snap.yield_percent:.1f} %")
        lab["since"].setText(snap.started.strftime("%H:%M:%S"))
        lab["camera"].setText(f"{camera_fps:.1f} fps" if running else "–")
        lab["shown"].setText(f"{shown_fps:.1f} fps" if running else "–")
        lab["inspected"].setText(f"{stats.recent_fps:.1f} fps" if running and stats is not None else "–")
        p50 = stats.latency_p50_ms if stats is not None else None
        lab["latency"].setText("–" if p50 is None else f"{p50:.0f} ms")
        lab["dropped"].setText(f"{snap.dropped} ({snap.dropped_share:.0%})" if snap.dropped else "0")
        lab["dropped"].setStyleSheet(WARN if snap.dropped_share > dropped_warning_share else "")
        self.archive_info.setText(archive)
