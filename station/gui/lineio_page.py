"""The "Line I/O" page (engineer mode): each output on/off, its address and credentials, a status
light with the last error and the backlog; the trigger and backlog options. Assembly only: the
settings are a :class:`~station.lineio.config.LineConfig`, applied by
:class:`~station.app.line_service.LineService` (which saves, audits with passwords redacted, and
restarts the outputs)."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from station.app.line_service import LineService
from station.lineio.config import OUTPUTS, LineConfigError, split_credentials, with_credentials

TITLES = {"mqtt": "MQTT broker", "postgres": "Central PostgreSQL", "opcua": "OPC UA server", "modbus": "Modbus TCP server"}
EXAMPLES = {"mqtt": "mqtt://broker:1883/line1/station2", "postgres": "postgresql://db-host:5432/quality",
            "opcua": "opc.tcp://0.0.0.0:4840", "modbus": "modbus://0.0.0.0:5020"}
COLORS = {"up": "#2e7d32", "listening": "#2e7d32", "down": "#c62828", "stopped": "#c62828", "starting": "#f9a825",
          "off": "#9e9e9e"}


def light_text(state: str, warning: str = "") -> str:
    color = "#f9a825" if warning and state in ("up", "listening") else COLORS.get(state, "#9e9e9e")
    return f'<span style="color:{color}; font-size:18px">●</span> {state}'


class LinkRow:
    """The widgets of one output (not a QWidget: a row of the page's grid)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.enabled = QCheckBox(TITLES[name])
        self.address = QLineEdit()
        self.address.setPlaceholderText(EXAMPLES[name])
        self.user = QLineEdit()
        self.user.setPlaceholderText("user")
        self.password = QLineEdit()
        self.password.setPlaceholderText("password")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.light = QLabel()
        self.detail = QLabel()
        self.detail.setWordWrap(True)


class LineIOPage(QWidget):
    def __init__(self, service: LineService, pipeline=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.service = service
        self.pipeline = pipeline  # () -> the window's running LivePipeline or None: the servers follow it
        self.status_label = QLabel()  # the links, for the window's status bar
        self.rows = {name: LinkRow(name) for name in OUTPUTS}
        outputs = QGroupBox("Outputs")
        grid = QGridLayout(outputs)
        for c, h in enumerate(("", "address", "user", "password", "status")):
            grid.addWidget(QLabel(f"<b>{h}</b>"), 0, c)
        for r, row in enumerate(self.rows.values()):
            for c, w in enumerate((row.enabled, row.address, row.user, row.password, row.light)):
                grid.addWidget(w, 2 * r + 1, c)
            grid.addWidget(row.detail, 2 * r + 2, 1, 1, 4)
        grid.setColumnStretch(1, 1)

        self.station_id = QLineEdit()
        self.trigger_mode = QCheckBox("one frame per trigger (station inspect --trigger)")
        self.trigger_timeout = QDoubleSpinBox()
        self.trigger_timeout.setRange(0.05, 600.0)
        self.trigger_timeout.setSuffix(" s")
        self.timeout_verdict = QComboBox()
        self.timeout_verdict.addItems(["ERROR", "NG"])
        self.max_backlog = QSpinBox()
        self.max_backlog.setRange(1, 10_000_000)
        self.backlog_warning = QSpinBox()
        self.backlog_warning.setRange(1, 10_000_000)
        options = QGroupBox("Station and triggers")
        form = QFormLayout(options)
        form.addRow("station id", self.station_id)
        form.addRow("trigger mode", self.trigger_mode)
        form.addRow("a trigger's frame must come within", self.trigger_timeout)
        form.addRow("answer when it does not", self.timeout_verdict)
        form.addRow("results kept for a dead link (then the oldest are skipped)", self.max_backlog)
        form.addRow("warn from this many waiting results", self.backlog_warning)

        self.apply_button = QPushButton("Apply")
        self.apply_button.clicked.connect(self.apply)
        self.revert_button = QPushButton("Revert")
        self.revert_button.clicked.connect(self.load)
        self.message = QLabel()
        self.message.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.message, 1)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.apply_button)
        layout = QVBoxLayout(self)
        layout.addWidget(outputs)
        layout.addWidget(options)
        layout.addLayout(buttons)
        layout.addStretch(1)
        self.load()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(1000)
        self.refresh()

    def load(self) -> None:
        c = self.service.config
        for name, row in self.rows.items():
            bare, user, password = split_credentials(getattr(c, name))
            row.enabled.setChecked(bool(bare) and c.enabled.get(name, True))
            row.address.setText(bare)
            row.user.setText(user)
            row.password.setText(password)
        self.station_id.setText(c.station_id)
        self.trigger_mode.setChecked(c.trigger_mode)
        self.trigger_timeout.setValue(c.trigger_timeout_s)
        self.timeout_verdict.setCurrentText(c.trigger_timeout_verdict)
        self.max_backlog.setValue(c.max_backlog)
        self.backlog_warning.setValue(c.backlog_warning)
        self.message.setText("; ".join(self.service.problems))

    def edited_config(self):
        c = self.service.config
        urls = {n: with_credentials(r.address.text(), r.user.text().strip(), r.password.text())
                for n, r in self.rows.items()}
        return replace(c, station_id=self.station_id.text().strip(), **urls,
                       enabled={n: r.enabled.isChecked() for n, r in self.rows.items()},
                       trigger_mode=self.trigger_mode.isChecked(), trigger_timeout_s=self.trigger_timeout.value(),
                       trigger_timeout_verdict=self.timeout_verdict.currentText(),
                       max_backlog=self.max_backlog.value(), backlog_warning=self.backlog_warning.value())

    def apply(self) -> bool:
        try:
            self.service.apply(self.edited_config())
        except LineConfigError as exc:
            self.message.setText(f"<span style='color:#c62828'>{exc}</span>")
            return False
        self.message.setText("applied and saved")
        self.refresh()
        return True

    def refresh(self) -> None:
        if self.pipeline is not None:
            self.service.attach(self.pipeline())
        self.status_label.setText(status_bar_text(self.service))
        for st in self.service.status():
            row = self.rows[st.name]
            row.light.setText(light_text(st.state, st.warning))
            parts = []
            if st.backlog or st.name in ("mqtt", "postgres") and st.state != "off":
                parts.append(f"{st.backlog} waiting, {st.delivered} sent")
            if st.last_error:
                parts.append(f"last error: {st.last_error}")
            if st.warning:
                parts.append(st.warning)
            row.detail.setText("; ".join(parts))


def status_bar_text(service: LineService) -> str:
    """The links in the status bar: one short word per configured output."""
    words = [f"{s.name} {'●' if s.state in ('up', 'listening') else '○'}{' ' + str(s.backlog) if s.backlog else ''}"
             for s in service.status() if s.state != "off"]
    return ("line: " + "  ".join(words)) if words else ""
