"""The one way results leave the inspection thread: a relay (dispatch) thread, as pymmcore-plus relays
its acquisition events, so that nothing slow -- the results log's fsync, PNG encoding, a listener's
network send -- ever delays the next verdict.

::

    inspection thread --put()--> bounded FIFO --(dispatch thread)--> 1. archive the image (NG parts)
                                                                    2. write the results-log row
                                                                    3. call each listener in turn

Listener API (the line outputs, the window's counters and NG strip, ``station inspect``'s printing)
------------------------------------------------------------------------------------------------
- A listener is any callable ``listener(live: LiveResult) -> None``; add it with
  :meth:`LivePipeline.add_listener` (or ``LivePipeline(listeners=[...])``) before or during a run,
  remove it with :meth:`LivePipeline.remove_listener`.
- It is called on the dispatch thread, once per frame, in frame (``sequence``) order, for every
  verdict including ``ERROR`` (a frame that failed: ``live.result is None``, ``live.error`` says why)
  and ``OUT_OF_RANGE`` (not judged: ``live.result is None``, ``live.input_problem`` says why),
  *after* the image was archived (``live.image_path``) and the row committed (``live.row_id``; ``None``
  when the run has no results log or the write failed).
- Keep it short: every listener runs on the same thread, so a slow one delays the others and the
  results log (never the inspection). Anything that may block (a socket, a remote database) belongs
  on the listener's own thread or outbox -- take the result, queue it, return.
- An exception in a listener is logged (once per listener and message) and counted in
  ``PipelineStats.listener_errors``; the other listeners and the run go on.
- ``live.frame.image`` is shared, read-only: copy it before changing it.
- When the run ends, every result queued has been dispatched before :meth:`LivePipeline.wait`
  returns.

Bounded: at most ``capacity`` results and ``max_bytes`` of their images wait. If the dispatch thread
falls that far behind (a stalled disk), further results are not dispatched -- never silently: they
are counted in ``undispatched`` and logged, and the window shows it as a results-log error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from station.live.archive import ImageArchive
from station.live.result import LiveResult, ResultListener
from station.live.results_db import ResultRow, ResultsLog
from station.live.stats import LatencyWindow

log = logging.getLogger(__name__)


class Dispatcher:
    """The dispatch thread of one run: archive, results log, listeners (see the module docstring)."""

    def __init__(self, results: ResultsLog | None = None, archive: ImageArchive | None = None,
                 capacity: int = 256, listeners: list[ResultListener] | None = None,
                 max_bytes: int = 64 * 1024 * 1024) -> None:
        self.results = results
        self.archive = archive
        self.capacity = int(capacity)
        self.max_bytes = int(max_bytes)  # a few seconds of a large camera, not a flood of frames in memory
        self._pending_bytes = 0
        self.db_time = LatencyWindow()  # the results log's write (with its fsync), on this thread
        self.rows = 0
        self.db_errors = 0
        self.archived = 0
        self.undispatched = 0
        self.listener_errors = 0
        self.dispatched = 0
        self._listeners: list[ResultListener] = list(listeners or [])
        self._pending: deque[LiveResult] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._reported: set[tuple[int, str]] = set()
        self._thread = threading.Thread(target=self._run, name="dispatch", daemon=True)
        self._thread.start()

    # --- listeners ------------------------------------------------------------------------------------
    def add_listener(self, listener: ResultListener) -> None:
        with self._cond:
            if listener not in self._listeners:
                self._listeners = [*self._listeners, listener]  # copy-on-write: the thread reads a snapshot

    def remove_listener(self, listener: ResultListener) -> None:
        with self._cond:
            self._listeners = [fn for fn in self._listeners if fn != listener]

    # --- the inspection thread's side -------------------------------------------------------------------
    def put(self, live: LiveResult) -> bool:
        """Queue ``live`` for dispatch; never waits. ``False`` (counted) when the queue is full."""
        nbytes = int(live.frame.image.nbytes)
        with self._cond:
            full = len(self._pending) >= self.capacity or (
                self._pending and self._pending_bytes + nbytes > self.max_bytes)
            if self._closed or full:
                self.undispatched += 1
                if self.undispatched == 1 or self.undispatched % 100 == 0:
                    log.error("results are not dispatched: the results log / archive is %d results behind "
                              "(%d not recorded so far)", len(self._pending), self.undispatched)
                return False
            self._pending.append(live)
            self._pending_bytes += nbytes
            self._cond.notify()
            return True

    @property
    def backlog(self) -> int:
        with self._cond:
            return len(self._pending)

    def close(self, timeout: float | None = 30.0) -> bool:
        """Dispatch what is queued, then end the thread; ``False`` if it did not end in ``timeout``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # --- the dispatch thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return
                live = self._pending.popleft()
                self._pending_bytes -= int(live.frame.image.nbytes)
                listeners = self._listeners
            self._dispatch(live, listeners)

    def _dispatch(self, live: LiveResult, listeners: list[ResultListener]) -> None:
        frame = live.frame
        if self.archive is not None and self.archive.wants(live.verdict):
            path = self.archive.store(frame.image, frame.frame_id, live.verdict, frame.timestamp)
            if path is not None:
                live.image_path = str(path)
                self.archived += 1
        if self.results is not None:
            t0 = time.perf_counter()
            try:
                live.row_id = self.results.record(row_for(live))
                self.rows += 1
            except Exception as exc:  # noqa: BLE001 - a full disk must not stop the verdicts
                self.db_errors += 1
                log.error("results log: %s", exc)
            self.db_time.add((time.perf_counter() - t0) * 1000.0)
        for listener in listeners:
            try:
                listener(live)
            except Exception as exc:  # noqa: BLE001 - one bad listener must not stop the others
                self.listener_errors += 1
                key = (id(listener), f"{type(exc).__name__}: {exc}")
                if key not in self._reported and len(self._reported) < 100:
                    self._reported.add(key)
                    log.exception("result listener %r failed", listener)
        self.dispatched += 1


def row_for(live: LiveResult) -> ResultRow:
    """The results log's row for one live result."""
    frame, result = live.frame, live.result
    return ResultRow(
        time=frame.timestamp, source=frame.source, frame_id=frame.frame_id, verdict=live.verdict,
        recipe=live.recipe, recipe_version=live.recipe_version,
        score=result.score if result is not None else None,
        threshold=result.threshold if result is not None else None,
        regions=[r.to_dict() for r in result.regions] if result is not None else [],
        # a failed frame has no verdict, so no acquisition-to-verdict latency: kept out of the figures
        latency_ms=round(live.latency_ms, 3) if result is not None else None,
        inspect_ms=round(live.inspect_ms, 3), image_path=live.image_path, label=live.label,
        error=live.input_problem or live.error,  # OUT_OF_RANGE: why the frame was not judged
        trigger_id=frame.meta.get("trigger_id"), warning=live.warning or None)  # the line trigger that asked for this frame, if any
