"""The station's line I/O, assembled from a :class:`~station.lineio.config.LineConfig`.

:class:`LineIO` owns the forwarders (MQTT, PostgreSQL), the servers (OPC UA, Modbus) and the
:class:`~station.lineio.control.StationControl` they share. The live side gives it each result
through :meth:`LineIO.on_result` (a listener: it only sets events and updates small counters, never
touches a disk or a socket), and in trigger mode reads frames through :meth:`LineIO.wrap_source`.

An output that cannot start (a port taken, a bad address) is reported in its status and in one log
line; the station inspects on without it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from station.lineio.central import PostgresForwarder
from station.lineio.config import LineConfig, redact
from station.lineio.control import LineSource, StationControl
from station.lineio.forwarder import Forwarder, LinkStatus
from station.lineio.mqtt import MqttForwarder
from station.live.results_db import ResultRow

log = logging.getLogger(__name__)


class LineIO:
    """Start with :meth:`start`, stop with :meth:`stop`; :meth:`status` for the window and selftest."""

    def __init__(self, config: LineConfig, db_path: str | Path, *, cert_dir: str | Path,
                 record: Callable[[ResultRow], int] | None = None, recipe: tuple[str, int] | None = None,
                 on_auth_failure: Callable[[str], None] | None = None,
                 select_recipe: Callable[[str], str] | None = None, start_at: str = "now") -> None:
        config.validate()
        self.config = config
        self.db_path = Path(db_path)
        self.control = StationControl(trigger_mode=config.trigger_mode, trigger_timeout_s=config.trigger_timeout_s,
                                      timeout_verdict=config.trigger_timeout_verdict, recipe=recipe,
                                      record=record, select_recipe=select_recipe)
        self.forwarders: list[Forwarder] = []
        self.servers: list[Any] = []
        self._failed: list[LinkStatus] = []
        active = config.active()
        common = {"max_backlog": config.max_backlog, "backlog_warning": config.backlog_warning, "start_at": start_at}
        if "mqtt" in active:
            self.forwarders.append(MqttForwarder(active["mqtt"], self.db_path, config.station_id, **common))
        if "postgres" in active:
            self.forwarders.append(PostgresForwarder(active["postgres"], self.db_path, config.station_id, **common))
        if "opcua" in active:
            from station.lineio.opcua_server import OpcUaServer

            self.servers.append(OpcUaServer(active["opcua"], self.control, config.station_id, cert_dir,
                                            on_auth_failure=on_auth_failure))
        if "modbus" in active:
            from station.lineio.modbus_server import ModbusServer

            self.servers.append(ModbusServer(active["modbus"], self.control))

    @property
    def configured(self) -> bool:
        return bool(self.forwarders or self.servers)

    def wrap_source(self, source: Any, camera_trigger: bool | None = None) -> Any:
        """The source the pipeline should read: ``source`` gated by Start/Stop and, in trigger mode,
        one frame per trigger (the camera's software trigger for ``genicam://...?trigger=software``)."""
        if camera_trigger is None:
            camera_trigger = self.config.trigger_mode and getattr(source, "trigger", "off") == "software"
        return LineSource(source, self.control, camera_trigger=camera_trigger)

    def start(self) -> None:
        for f in self.forwarders:
            f.start()
        for s in self.servers:
            try:
                s.start()
            except Exception as exc:  # noqa: BLE001 - the line goes on without this output
                log.error("%s", exc)
                st = s.status()
                st.state, st.last_error = "stopped", str(exc)
                self._failed.append(st)

    def on_result(self, live: Any) -> None:
        """A result was recorded (called by the live side; cheap and non-blocking)."""
        self.control.on_result(live)
        for f in self.forwarders:
            f.wake()

    def status(self) -> list[LinkStatus]:
        failed = {s.name for s in self._failed}
        return [f.status() for f in self.forwarders] + self._failed + [
            s.status() for s in self.servers if s.kind not in failed]

    def wait_delivered(self, timeout: float) -> bool:
        return all(f.wait_idle(timeout) for f in self.forwarders)

    def stop(self, drain_s: float = 5.0) -> None:
        for s in self.servers:
            try:
                s.stop()
            except Exception as exc:  # noqa: BLE001
                log.warning("stopping %s: %s", s.kind, exc)
        for f in self.forwarders:
            f.stop(drain_s)

    def summary_lines(self) -> list[str]:
        """One line per output, for the CLI (no passwords)."""
        out = []
        for s in self.status():
            extra = f", {s.backlog} waiting" if s.backlog else ""
            extra += f", last error: {s.last_error}" if s.last_error else ""
            extra += f"; {s.warning}" if s.warning else ""
            out.append(f"{s.name} {s.address}: {s.state}{extra}")
        return out


def describe_outputs(config: LineConfig) -> str:
    return ", ".join(f"{k} {redact(v)}" for k, v in config.active().items()) or "none"
