"""A forwarder: one thread that carries results from the outbox to one receiver, whatever the link does.

The inspection never waits on it: the only thing the live side does is :meth:`Forwarder.wake` (set an
event). The thread reads the rows after its cursor, hands them to :meth:`Forwarder.send` (the
receiver-specific part: MQTT, PostgreSQL) and moves the cursor once ``send`` returns. When the link
fails, it disconnects, waits (back-off 0.5 s doubling to 30 s) and reconnects; the outage is
reported as one line when it starts (and again only if the reason changes) and one when it ends.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from station.lineio.outbox import Outbox

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0


@dataclass
class LinkStatus:
    """What the window's status light, ``station selftest`` and the CLI show for one output."""

    name: str  # "mqtt", "postgres", "opcua", "modbus"
    address: str  # redacted: never a password
    state: str = "starting"  # starting, up, down, stopped (servers: listening)
    last_error: str = ""
    backlog: int = 0  # results not yet accepted by the receiver
    skipped: int = 0  # results passed over because the backlog was over its bound
    delivered: int = 0  # results accepted since start (re-sends included)
    last_delivery: float | None = None
    warning: str = ""  # e.g. a backlog over its warning level

    @property
    def ok(self) -> bool:
        return self.state in ("up", "listening") and not self.warning

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LinkError(Exception):
    """The receiver is not reachable or did not accept a message; the message says which and why."""


class Forwarder:
    """Base class; subclasses implement :meth:`connect`, :meth:`send` and :meth:`disconnect`
    (all called on the forwarder's own thread only)."""

    kind = "forwarder"

    def __init__(self, db_path: str | Path, station_id: str, address: str, *, max_backlog: int = 100_000,
                 backlog_warning: int = 1_000, batch: int = 200, poll_s: float = 0.2,
                 start_at: str = "now") -> None:
        self.db_path = Path(db_path)
        self.station_id = station_id
        self.batch = int(batch)
        self.poll_s = float(poll_s)
        self.max_backlog = int(max_backlog)
        self.backlog_warning = int(backlog_warning)
        self.start_at = start_at
        self._status = LinkStatus(self.kind, address)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._drain_until = 0.0
        self._thread: threading.Thread | None = None
        self._connected = False
        self._reported_error = ""
        self._idle = threading.Event()

    @property
    def cursor_name(self) -> str:
        return f"{self.kind} {self._status.address}"

    # --- for subclasses -------------------------------------------------------------------------------
    def connect(self) -> None:
        raise NotImplementedError

    def send(self, rows: list[dict[str, Any]]) -> None:
        """Deliver ``rows`` (oldest first); return only once the receiver has accepted every one."""
        raise NotImplementedError

    def disconnect(self) -> None:
        pass

    # --- control --------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"forward-{self.kind}", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A new result is in the log (called from the live side: never blocks)."""
        self._wake.set()

    def stop(self, drain_s: float = 5.0) -> None:
        """Deliver what is pending for up to ``drain_s`` seconds (if the link is up), then stop."""
        self._drain_until = time.monotonic() + max(0.0, drain_s)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(drain_s + 2.0)  # a send still waiting for its acknowledgement is left behind (daemon)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is pending (tests, the end of a run)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._idle.is_set():
                return True
            self._wake.set()
            time.sleep(0.05)
        return self._idle.is_set()

    def status(self) -> LinkStatus:
        with self._lock:
            return LinkStatus(**asdict(self._status))

    # --- the thread ---------------------------------------------------------------------------------------
    def _set(self, **changes: Any) -> None:
        with self._lock:
            for k, v in changes.items():
                setattr(self._status, k, v)

    def _back_off(self, exc: BaseException, outbox: Outbox, backoff: float) -> float:
        """The link failed (connecting or sending): mark it down, wait ``backoff`` (or until stopped)
        and return the next, doubled wait."""
        self._down(exc)
        self._refresh(outbox)
        self._stop.wait(backoff)
        return min(backoff * 2.0, BACKOFF_MAX_S)

    def _down(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, LinkError) else f"{type(exc).__name__}: {exc}"
        if self._connected:
            try:
                self.disconnect()
            except Exception:  # noqa: BLE001 - the link is already gone
                pass
        self._connected = False
        self._set(state="down", last_error=message)
        if message != self._reported_error:  # one line per outage (or change of reason), not one per retry
            log.warning("%s %s: link down: %s; results wait in the local log and are sent when it is back",
                        self.kind, self._status.address, message)
            self._reported_error = message

    def _run(self) -> None:
        try:
            outbox = Outbox(self.db_path, self.cursor_name, self.max_backlog, self.start_at)
        except Exception as exc:  # noqa: BLE001 - reported, the station goes on
            self._set(state="stopped", last_error=f"results log: {exc}")
            log.error("%s: cannot read the results log: %s", self.kind, exc)
            return
        backoff = BACKOFF_START_S
        try:
            while True:
                stopping = self._stop.is_set()
                if stopping and (not self._connected or time.monotonic() >= self._drain_until):
                    break
                if not self._connected:
                    try:
                        self.connect()
                        self._connected = True
                        backoff = BACKOFF_START_S
                        if self._reported_error:
                            log.warning("%s %s: link back up; sending the %d waiting results", self.kind,
                                        self._status.address, outbox.backlog().pending)
                        self._reported_error = ""
                        self._set(state="up", last_error="")
                    except Exception as exc:  # noqa: BLE001
                        backoff = self._back_off(exc, outbox, backoff)
                        continue
                rows = outbox.pending(self.batch)
                if not rows:
                    self._refresh(outbox)
                    self._idle.set()
                    if stopping:
                        break
                    self._wake.wait(self.poll_s)
                    self._wake.clear()
                    continue
                self._idle.clear()
                try:
                    self.send(rows)
                except Exception as exc:  # noqa: BLE001
                    backoff = self._back_off(exc, outbox, backoff)
                    continue
                outbox.delivered(rows[-1]["id"])
                with self._lock:
                    self._status.delivered += len(rows)
                    self._status.last_delivery = time.time()
                self._refresh(outbox)
        finally:
            if self._connected:
                try:
                    self.disconnect()
                except Exception:  # noqa: BLE001
                    pass
            self._refresh(outbox)
            outbox.close()
            self._set(state="stopped")

    def _refresh(self, outbox: Outbox) -> None:
        try:
            b = outbox.backlog()
        except Exception:  # noqa: BLE001 - status only
            return
        warning = ""
        if b.pending >= self.backlog_warning:
            warning = (f"{b.pending} results not yet delivered (bound {self.max_backlog}; beyond it the oldest "
                       "are skipped)")
        if b.skipped:
            warning = (warning + "; " if warning else "") + f"{b.skipped} results skipped over the backlog bound"
        self._set(backlog=b.pending, skipped=b.skipped, warning=warning)
