"""What the PLC sees and commands: the station's state, last result, counters, and part triggers.

:class:`StationControl` is the one model behind the OPC UA and Modbus servers (each only translates
it into its own address space). It learns results from the live pipeline (:meth:`on_result`), and
in trigger mode it hands out exactly one frame per trigger through :class:`LineSource`, a wrapper
around the real frame source that the pipeline's acquisition thread reads from.

Trigger life cycle: :meth:`StationControl.trigger` queues a trigger and returns a
:class:`TriggerTicket`. The acquisition thread takes it, fires the camera's software trigger where
the camera is triggered (``genicam://...?trigger=software``), and passes on the first frame that
comes, tagged with the trigger id; its result resolves the ticket. If no frame comes within
``trigger_timeout_s``, the trigger is answered with the configured verdict (ERROR or NG) and a clear
error, recorded in the results log like any result -- a PLC never waits forever.

States follow OPC 40100-1's vision-system state machine where it fits: ``Halted`` (stopped),
``Ready`` (waiting for triggers), ``SingleExecution`` (a trigger in progress), ``ContinuousExecution``
(free-running), ``Error`` (the pipeline stopped on an error).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from station.acquisition.base import Frame, SourceError, SourceState
from station.live.results_db import ResultRow

log = logging.getLogger(__name__)

HALTED, READY, SINGLE, CONTINUOUS, ERROR = "Halted", "Ready", "SingleExecution", "ContinuousExecution", "Error"
STATE_CODES = {HALTED: 0, READY: 1, SINGLE: 2, CONTINUOUS: 3, ERROR: 4}  # Modbus register values
VERDICT_CODES = {"": 0, "OK": 1, "NG": 2, "ERROR": 3, "OUT_OF_RANGE": 4}  # 4: not judged (input watch)
MAX_QUEUED_TRIGGERS = 16
RESULT_GRACE_S = 30.0  # a frame was taken but its result never came (the pipeline died): give up after this


class TriggerError(Exception):
    """A trigger cannot be accepted (trigger mode off, station stopped, queue full, no camera trigger)."""


@dataclass
class Outcome:
    """The answer to a trigger (and the "last result" a PLC reads)."""

    sequence: int = 0  # the result's row in the local log (0: none)
    verdict: str = ""
    score: float = 0.0
    n_regions: int = 0
    largest_area: float = 0.0
    time: float = 0.0
    trigger_id: str = ""
    error: str = ""
    warning: str = ""  # the drift watch's warning while this part was judged (station.live.drift)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Counters:
    total: int = 0
    ok: int = 0
    ng: int = 0
    error: int = 0
    since: float = field(default_factory=time.time)

    def count(self, verdict: str) -> None:
        self.total += 1
        if verdict == "OK":
            self.ok += 1
        elif verdict == "NG":
            self.ng += 1
        else:
            self.error += 1


class TriggerTicket:
    def __init__(self, trigger_id: str, deadline: float) -> None:
        self.trigger_id = trigger_id
        self.deadline = deadline  # monotonic: the frame must have come by then
        self.taken = False
        self._done = threading.Event()
        self.outcome: Outcome | None = None

    def resolve(self, outcome: Outcome) -> None:
        if not self._done.is_set():
            self.outcome = outcome
            self._done.set()

    def wait(self, timeout: float | None = None) -> Outcome:
        """The outcome; never waits past the trigger's own deadline plus the result grace time."""
        limit = max(0.0, self.deadline - time.monotonic()) + RESULT_GRACE_S
        if not self._done.wait(limit if timeout is None else min(timeout, limit)):
            return Outcome(verdict="ERROR", trigger_id=self.trigger_id, time=time.time(),
                           error=f"trigger {self.trigger_id}: no result (the inspection did not answer)")
        assert self.outcome is not None
        return self.outcome


class StationControl:
    """Thread-safe; listeners (``subscribe``) are called on whatever thread changed something and must
    only hand the snapshot over to their own loop."""

    def __init__(self, *, trigger_mode: bool = False, trigger_timeout_s: float = 2.0,
                 timeout_verdict: str = "ERROR", recipe: tuple[str, int] | None = None,
                 record: Callable[[ResultRow], int] | None = None,
                 select_recipe: Callable[[str], str] | None = None) -> None:
        self.trigger_mode = trigger_mode
        self.trigger_timeout_s = float(trigger_timeout_s)
        self.timeout_verdict = timeout_verdict
        self.recipe_name, self.recipe_version = recipe or ("", 0)
        self._record = record  # writes a timed-out trigger's row into the results log
        self.recipe_selector = select_recipe  # name -> label; set by the host that can load recipes
        self._lock = threading.Lock()
        self._running = True
        self._failed = ""
        self._queue: queue.Queue[TriggerTicket] = queue.Queue(MAX_QUEUED_TRIGGERS)
        self._tickets: dict[str, TriggerTicket] = {}
        self._auto_ids = itertools.count(1)
        self.last = Outcome()
        self.counters = Counters()
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self.source_uri = ""

    # --- what the servers read ---------------------------------------------------------------------------
    @property
    def state(self) -> str:
        if self._failed:
            return ERROR
        if not self._running:
            return HALTED
        if not self.trigger_mode:
            return CONTINUOUS
        return SINGLE if self._tickets else READY

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"state": self.state, "recipe": self.recipe_name, "recipe_version": self.recipe_version,
                    "last": self.last.to_dict(), "counters": asdict(self.counters), "error": self._failed,
                    "trigger_mode": self.trigger_mode}

    def subscribe(self, listener: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        snap = self.snapshot()
        for listener in list(self._listeners):
            try:
                listener(snap)
            except Exception:  # noqa: BLE001 - a server's bug must not stop the results
                log.exception("line I/O listener failed")

    # --- commands (OPC UA methods, Modbus coils) -----------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            self._running = True
        self._changed()

    def stop(self) -> None:
        with self._lock:
            self._running = False
        self._changed()

    def reset_counters(self) -> None:
        with self._lock:
            self.counters = Counters()
        self._changed()

    def select_recipe(self, name: str) -> str:
        """Switch the recipe (by name); returns its label. Raises :class:`TriggerError` when the host
        cannot (no selector given) or the selector's own error."""
        if self.recipe_selector is None:
            raise TriggerError("recipe selection is not available in this station mode")
        label = self.recipe_selector(name)
        self._changed()
        return label

    def set_recipe(self, name: str, version: int) -> None:
        with self._lock:
            self.recipe_name, self.recipe_version = name, int(version)
        self._changed()

    def fail(self, message: str) -> None:
        with self._lock:
            self._failed = message
        self._changed()

    def trigger(self, trigger_id: str | None = None) -> TriggerTicket:
        """Queue one trigger; the frame must arrive within the trigger timeout from now."""
        if not self.trigger_mode:
            raise TriggerError("trigger mode is off: the station inspects every frame (start it with --trigger)")
        if not self._running:
            raise TriggerError("the station is stopped (call Start first)")
        if self._failed:
            raise TriggerError(f"the station is in error: {self._failed}")
        tid = str(trigger_id) if trigger_id not in (None, "") else f"auto-{next(self._auto_ids)}"
        ticket = TriggerTicket(tid, time.monotonic() + self.trigger_timeout_s)
        with self._lock:
            if tid in self._tickets:
                raise TriggerError(f"trigger {tid} is already in progress")
            try:
                self._queue.put_nowait(ticket)
            except queue.Full:
                raise TriggerError(f"{MAX_QUEUED_TRIGGERS} triggers are waiting already; trigger slower") from None
            self._tickets[tid] = ticket
        self._changed()
        return ticket

    # --- the live side ----------------------------------------------------------------------------------------
    def next_trigger(self, timeout: float) -> TriggerTicket | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def timed_out(self, ticket: TriggerTicket, reason: str) -> None:
        """No frame for ``ticket``: answer with the configured verdict and record the row."""
        error = f"trigger {ticket.trigger_id}: {reason}"
        log.warning("%s; answered %s", error, self.timeout_verdict)
        outcome = Outcome(verdict=self.timeout_verdict, time=time.time(), trigger_id=ticket.trigger_id, error=error)
        if self._record is not None:
            try:
                outcome.sequence = self._record(ResultRow(
                    time=outcome.time, source=self.source_uri, frame_id=-1, verdict=self.timeout_verdict,
                    recipe=self.recipe_name or None, recipe_version=self.recipe_version or None,
                    error=error, trigger_id=ticket.trigger_id))
            except Exception as exc:  # noqa: BLE001 - the PLC still gets its answer
                log.error("results log: %s", exc)
        self._finish(ticket.trigger_id, outcome)

    def on_result(self, live: Any) -> None:
        """A pipeline result (``LiveResult``): the last result, the counters, and its trigger's answer."""
        r = live.result
        regions = r.regions if r is not None else []
        tid = live.frame.meta.get("trigger_id") or ""
        outcome = Outcome(sequence=int(live.row_id or 0), verdict=live.verdict,
                          score=float(r.score) if r is not None else 0.0, n_regions=len(regions),
                          largest_area=float(max((g.area_px for g in regions), default=0.0)),
                          time=float(live.frame.timestamp), trigger_id=str(tid),
                          error=getattr(live, "input_problem", "") or live.error or "",
                          warning=getattr(live, "warning", "") or "")
        self._finish(tid, outcome)

    def _finish(self, trigger_id: str, outcome: Outcome) -> None:
        with self._lock:
            self.last = outcome
            self.counters.count(outcome.verdict)
            ticket = self._tickets.pop(trigger_id, None) if trigger_id else None
        if ticket is not None:
            ticket.resolve(outcome)
        self._changed()


class LineSource:
    """A frame source wrapper: passes every frame (free-running), none (halted), or exactly one per
    trigger (trigger mode). Everything else is the wrapped source's."""

    def __init__(self, inner: Any, control: StationControl, camera_trigger: bool = False) -> None:
        self.inner = inner
        self.control = control
        self.camera_trigger = camera_trigger
        self.uri = inner.uri
        self.live = bool(getattr(inner, "live", True))
        control.source_uri = inner.uri

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def state(self) -> SourceState:
        return self.inner.state

    def open(self) -> None:
        self.inner.open()
        if self.camera_trigger:
            try:
                check_camera_trigger(self.inner)
            except TriggerError as exc:  # a source that cannot work as configured: one line, as any source error
                self.inner.close()
                raise SourceError(str(exc)) from None

    def start(self) -> None:
        self.inner.start()

    def stop(self) -> None:
        self.inner.stop()

    def close(self) -> None:
        self.inner.close()

    def _drain(self, timeout: float) -> None:
        """Keep a free-running camera's buffers fresh while no frame is wanted (a replay waits)."""
        if self.live and not self.camera_trigger:
            self.inner.next_frame(timeout=min(timeout, 0.05))
        else:
            time.sleep(min(timeout, 0.05))

    def next_frame(self, timeout: float = 1.0) -> Frame | None:
        c = self.control
        if c.state in (HALTED, ERROR):
            self._drain(timeout)
            return None
        if not c.trigger_mode:
            return self.inner.next_frame(timeout=timeout)
        ticket = c.next_trigger(timeout=min(timeout, 0.05))
        if ticket is None:
            self._drain(timeout)
            return None
        if time.monotonic() >= ticket.deadline:
            c.timed_out(ticket, f"waited in the queue past its {c.trigger_timeout_s:g} s timeout")
            return None
        if self.camera_trigger:
            try:
                self.inner.software_trigger()
            except Exception as exc:  # noqa: BLE001 - answered as a missing frame
                c.timed_out(ticket, f"the camera refused the software trigger ({exc})")
                return None
        while True:
            left = ticket.deadline - time.monotonic()
            if left <= 0:
                c.timed_out(ticket, f"no frame within {c.trigger_timeout_s:g} s")
                return None
            frame = self.inner.next_frame(timeout=min(left, 0.25))  # StopIteration ends a finite replay
            if frame is not None:
                frame.meta["trigger_id"] = ticket.trigger_id
                return frame


def check_camera_trigger(source: Any) -> None:
    """Raise :class:`TriggerError` unless ``source`` is a camera set to software trigger that has it."""
    if not hasattr(source, "software_trigger"):
        raise TriggerError(f"{source.uri}: camera trigger not available (not a GenICam camera)")
    results = [r for r in getattr(source, "setting_results", []) if getattr(r, "name", "") == "trigger"]
    if getattr(source, "trigger", "off") != "software":
        raise TriggerError(f"{source.uri}: camera trigger needs the camera in software trigger mode "
                           "(add ?trigger=software to the camera address)")
    if results and not results[-1].ok:
        raise TriggerError(f"{source.uri}: camera trigger not available: {results[-1].message or 'refused'}")
    try:
        names = set(source.feature_names())
    except Exception:  # noqa: BLE001
        names = set()
    missing = [f for f in ("TriggerMode", "TriggerSource", "TriggerSoftware") if f not in names]
    if missing:
        raise TriggerError(f"{source.uri}: camera trigger not available: the camera has no {', '.join(missing)}")
