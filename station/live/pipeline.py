"""Live inspection: a source feeding an inspector on two threads, with a results log and an archive.

::

    source --(acquisition thread)--> Handoff(capacity) --(inspection thread: Inspector)--> log, archive,
                                                                                          latest_result()

- The acquisition thread owns the source (open, start, next_frame, stop, close).
- The inspection thread owns the :class:`~station.core.inspection.Inspector` (and with it the model
  and its device); it builds it itself, so no other thread ever touches the model.
- The hand-off between them drops the oldest frame for a live source and blocks the reader of a
  replay, so a camera is never held up and a replay loses nothing.
- Every frame is accounted for: ``acquired == inspected + failed + dropped`` once the run has ended.

Nothing here imports Qt: the GUI runs a :class:`LivePipeline` as it is and polls
:meth:`LivePipeline.latest_result` / :meth:`LivePipeline.latest_frame` / :meth:`LivePipeline.stats`
on a timer (or takes the ``on_result`` callback, which runs on the inspection thread).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from station.acquisition.base import Frame, FrameSource, SourceState
from station.core.inspection import InspectionResult, Inspector, recipe_runtime
from station.core.recipe import Recipe
from station.live.archive import ImageArchive
from station.live.handoff import Closed, Handoff
from station.live.results_db import ResultRow, ResultsLog
from station.live.stats import LatencyWindow, PipelineStats, RateMeter

log = logging.getLogger(__name__)


@dataclass
class LiveResult:
    """One frame's outcome. ``result`` is ``None`` when the inspection failed (see ``error``)."""

    sequence: int  # increases by one per result: a viewer skips what it has already shown
    frame: Frame
    result: InspectionResult | None
    error: str | None
    latency_ms: float  # acquisition -> verdict
    inspect_ms: float
    row_id: int | None = None
    image_path: str | None = None

    @property
    def verdict(self) -> str:
        return self.result.verdict.value if self.result is not None else "ERROR"


@dataclass
class _Item:
    frame: Frame
    acquired_at: float  # perf_counter when the source returned it


class LivePipeline:
    """Acquire, inspect, record; start/stop from any thread.

    Parameters
    ----------
    source
        Any :class:`~station.acquisition.base.FrameSource` (opened here if it is not open yet).
    recipe
        The recipe to inspect with; the inspection thread builds ``Inspector(recipe)``. Or give
        ``inspector_factory`` (called on the inspection thread) instead.
    results
        Where every verdict is recorded (optional).
    archive
        Where NG images (and sampled OK images) are kept (optional).
    queue_size
        Capacity of the hand-off.
    drop_oldest
        Hand-off policy; default: drop for live sources, wait for replays.
    max_frames
        Stop after this many acquired frames (0: run until stopped or the source ends).
    on_result
        Called with each :class:`LiveResult` on the inspection thread; keep it short.
    on_state
        Called with ``(state, message)`` when the source's state changes (acquisition thread).
    """

    def __init__(
        self,
        source: FrameSource,
        recipe: Recipe | None = None,
        *,
        inspector_factory: Callable[[], Inspector] | None = None,
        results: ResultsLog | None = None,
        archive: ImageArchive | None = None,
        queue_size: int = 4,
        drop_oldest: bool | None = None,
        max_frames: int = 0,
        frame_timeout: float = 0.25,
        on_result: Callable[[LiveResult], None] | None = None,
        on_state: Callable[[SourceState, str], None] | None = None,
    ) -> None:
        if (recipe is None) == (inspector_factory is None):
            raise ValueError("give either a recipe or an inspector_factory")
        self.source = source
        self.recipe = recipe
        self._factory = inspector_factory or (lambda: Inspector(recipe, **recipe_runtime(recipe)))  # type: ignore[arg-type]
        self.results = results
        self.archive = archive
        self.max_frames = int(max_frames)
        self.frame_timeout = float(frame_timeout)
        self.on_result = on_result
        self.on_state = on_state
        live = bool(getattr(source, "live", True))
        self.handoff: Handoff[_Item] = Handoff(queue_size, drop_oldest=live if drop_oldest is None else drop_oldest)
        self.latency = LatencyWindow()
        self.inspect_time = LatencyWindow()
        self.db_time = LatencyWindow()
        self._rate = RateMeter()
        self._stats = PipelineStats()
        self._stats_lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()  # the inspector is built (or failed)
        self._finished = threading.Event()
        self._acquiring = threading.Event()  # the source is started (or failed to start)
        self._acquisition_done = threading.Event()
        self._error: BaseException | None = None
        self._latest: LiveResult | None = None
        self._latest_frame: Frame | None = None
        self._sequence = 0
        self._first_frame_at: float | None = None
        self._last_done_at: float | None = None
        self._discarded = 0
        self._error_messages: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._commands: queue.SimpleQueue[Callable[[Inspector], None]] = queue.SimpleQueue()
        self._recipe_name = recipe.name if recipe is not None else None
        self._recipe_version = recipe.version if recipe is not None else None

    # --- control ------------------------------------------------------------------------------------------
    def start(self, wait_ready: bool = True, timeout: float = 120.0) -> None:
        """Start both threads. With ``wait_ready``, return once the inspector is built and the source
        started, re-raising here whatever made either fail (a broken recipe, an unknown camera)."""
        if self._threads:
            raise RuntimeError("a pipeline runs once; create a new one")
        if hasattr(self.source, "add_state_listener"):
            self.source.add_state_listener(self._source_state_changed)
        self._threads = [threading.Thread(target=self._inspect_loop, name="inspection", daemon=True),
                         threading.Thread(target=self._acquire_loop, name="acquisition", daemon=True)]
        for t in self._threads:
            t.start()
        if wait_ready:
            deadline = time.monotonic() + timeout
            while not (self._acquiring.is_set() or self._finished.is_set()) and time.monotonic() < deadline:
                time.sleep(0.01)
            if self._error is not None:
                self.wait(5.0)
                raise self._error

    def stop(self, timeout: float = 10.0, drain: bool = True) -> PipelineStats:
        """Stop acquiring, finish (``drain``) or drop the queued frames, and wait for both threads."""
        self._stop.set()
        if not drain:
            self.handoff.discard()
        self.wait(timeout)
        return self.stats()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the run to end (source exhausted, ``max_frames`` reached, stopped, failed).

        Waits on events, not ``Thread.join``: a join interrupted by Ctrl-C marks a thread that is still
        running as stopped (CPython before 3.12), and the summary would be taken too early."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for done in (self._acquisition_done, self._finished):
            if not done.wait(None if deadline is None else max(0.0, deadline - time.monotonic())):
                return False
        return True

    @property
    def running(self) -> bool:
        return bool(self._threads) and not (self._acquisition_done.is_set() and self._finished.is_set())

    @property
    def error(self) -> BaseException | None:
        """What stopped the run, if it failed."""
        return self._error

    def call_in_inspector(self, command: Callable[[Inspector], None]) -> None:
        """Run ``command(inspector)`` on the inspection thread before its next frame (the inspector is
        never touched from another thread)."""
        self._commands.put(command)

    def set_threshold(self, threshold: float, min_defect_area_px: float | None = None) -> None:
        """Change the decision threshold (and minimum defect area) from the next frame on."""
        self.call_in_inspector(lambda inspector: inspector.set_threshold(threshold, min_defect_area_px))

    # --- what viewers read ------------------------------------------------------------------------------
    def latest_result(self) -> LiveResult | None:
        return self._latest

    def latest_frame(self) -> Frame | None:
        """The newest acquired frame, inspected or not (for a live view at the camera's rate)."""
        return self._latest_frame

    def stats(self) -> PipelineStats:
        with self._stats_lock:
            s = PipelineStats(**self._stats.to_dict())
        s.dropped = self.handoff.dropped + self._discarded
        s.queued = len(self.handoff)
        now = time.monotonic()
        if self._first_frame_at is not None:
            end = now if self.running else (self._last_done_at or now)
            s.elapsed_s = max(0.0, end - self._first_frame_at)
            s.throughput_fps = (s.inspected + s.failed) / s.elapsed_s if s.elapsed_s > 0 else 0.0
        s.recent_fps = self._rate.rate(now)
        s.latency_p50_ms, s.latency_p95_ms = self.latency.percentiles(50, 95)
        s.inspect_p50_ms, s.inspect_p95_ms = self.inspect_time.percentiles(50, 95)
        state = getattr(self.source, "state", None)
        s.source_state = state.value if isinstance(state, SourceState) else str(state)
        s.reconnects = int(getattr(self.source, "reconnects", 0))
        if self.archive is not None:
            s.archived = self.archive.written
        if self._error is not None:
            s.error = f"{type(self._error).__name__}: {self._error}"
        return s

    # --- the threads ------------------------------------------------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._stop.set()

    def _source_state_changed(self, state: SourceState, message: str) -> None:
        if self.on_state is not None:
            try:
                self.on_state(state, message)
            except Exception:
                log.exception("on_state callback failed")

    def _acquire_loop(self) -> None:
        source = self.source
        try:
            self._ready.wait()
            if self._stop.is_set():
                return
            if source.state is SourceState.CLOSED:
                source.open()
            source.start()
            self._acquiring.set()
            acquired = 0
            while not self._stop.is_set():
                if self.max_frames and acquired >= self.max_frames:
                    break
                try:
                    frame = source.next_frame(timeout=self.frame_timeout)
                except StopIteration:
                    break
                if frame is None:
                    continue
                now = time.perf_counter()
                acquired += 1
                with self._stats_lock:
                    self._stats.acquired += 1
                if self._first_frame_at is None:
                    self._first_frame_at = time.monotonic()
                self._latest_frame = frame
                item = _Item(frame, now)
                while not self.handoff.put(item, timeout=0.2):  # only a replay waits here
                    if self._stop.is_set() or self.handoff.closed:
                        self._discarded += 1  # stopped while waiting for room: counted, not lost silently
                        break
        except BaseException as exc:  # noqa: BLE001 - reported through error/stats, never lost
            log.error("acquisition stopped: %s", exc)
            self._fail(exc)
        finally:
            self._acquiring.set()
            self.handoff.close()
            for step in (source.stop, source.close):
                try:
                    step()
                except Exception as exc:  # noqa: BLE001
                    log.warning("closing the source: %s", exc)
            self._acquisition_done.set()

    def _inspect_loop(self) -> None:
        try:
            inspector = self._factory()
            if self._recipe_name is None:
                self._recipe_name = inspector.recipe.name
                self._recipe_version = inspector.recipe.version
        except BaseException as exc:  # noqa: BLE001
            log.error("cannot build the inspector: %s", exc)
            self._fail(exc)
            self._ready.set()
            self.handoff.close()
            self._finished.set()
            return
        self._ready.set()
        try:
            while True:
                self._run_commands(inspector)
                try:
                    item = self.handoff.get(timeout=0.2)
                except Closed:
                    break
                if item is None:
                    continue
                self._process(inspector, item)
        except BaseException as exc:  # noqa: BLE001
            log.error("inspection stopped: %s", exc)
            self._fail(exc)
            self.handoff.close()
            self.handoff.discard()  # counted as dropped
        finally:
            self._last_done_at = time.monotonic()
            if self.archive is not None:
                self.archive.flush(timeout=10.0)
            self._finished.set()

    def _run_commands(self, inspector: Inspector) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                command(inspector)
            except Exception:
                log.exception("command for the inspector failed")

    def _process(self, inspector: Inspector, item: _Item) -> None:
        self._run_commands(inspector)
        frame = item.frame
        t0 = time.perf_counter()
        result: InspectionResult | None = None
        error: str | None = None
        try:
            result = inspector.inspect(frame.image)
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the line
            error = f"{type(exc).__name__}: {exc}"
            if error not in self._error_messages and len(self._error_messages) < 100:
                self._error_messages.add(error)
                log.warning("frame %s of %s not inspected: %s", frame.frame_id, frame.source, error,
                            exc_info=True)
        done = time.perf_counter()
        inspect_ms = (done - t0) * 1000.0
        latency_ms = (done - item.acquired_at) * 1000.0
        verdict = result.verdict.value if result is not None else "ERROR"
        image_path = None
        if self.archive is not None and self.archive.wants(verdict):
            path = self.archive.submit(frame.image, frame.frame_id, verdict, frame.timestamp)
            image_path = str(path) if path is not None else None
        row_id = None
        db_error = False
        if self.results is not None:
            label = frame.meta.get("label")
            row = ResultRow(
                time=frame.timestamp, source=frame.source, frame_id=frame.frame_id, verdict=verdict,
                recipe=self._recipe_name, recipe_version=self._recipe_version,
                score=result.score if result is not None else None,
                threshold=result.threshold if result is not None else None,
                regions=[r.to_dict() for r in result.regions] if result is not None else [],
                latency_ms=round(latency_ms, 3), inspect_ms=round(inspect_ms, 3), image_path=image_path,
                label=label if isinstance(label, str) else None, error=error)
            t_db = time.perf_counter()
            try:
                row_id = self.results.record(row)
            except Exception as exc:  # noqa: BLE001 - a full disk must not stop the verdicts
                db_error = True
                log.error("results log: %s", exc)
            self.db_time.add((time.perf_counter() - t_db) * 1000.0)
        self.latency.add(latency_ms)
        self.inspect_time.add(inspect_ms)
        self._rate.tick()
        with self._stats_lock:
            s = self._stats
            if result is None:
                s.failed += 1
            else:
                s.inspected += 1
                if result.is_ng:
                    s.ng += 1
                else:
                    s.ok += 1
            if row_id is not None:
                s.db_rows += 1
            if db_error:
                s.db_errors += 1
            self._sequence += 1
            live = LiveResult(self._sequence, frame, result, error, latency_ms, inspect_ms, row_id, image_path)
        self._latest = live
        self._last_done_at = time.monotonic()
        if self.on_result is not None:
            try:
                self.on_result(live)
            except Exception:
                log.exception("on_result callback failed")


def run_summary(stats: PipelineStats) -> dict[str, Any]:
    """The numbers a benchmark or report prints."""
    d = stats.to_dict()
    d["in_flight"] = stats.in_flight
    return d
