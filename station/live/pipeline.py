"""Live inspection: a source feeding an inspector on two threads, and one dispatch thread after them.

::

    source --(acquisition thread)--> Handoff(capacity) --(inspection thread: Inspector)--> latest_result()
                                                                    |
                                                                    +--> Dispatcher --(dispatch thread)-->
                                                                         archive, results log, listeners

- The acquisition thread owns the source (open, start, next_frame, stop, close).
- The inspection thread owns the :class:`~station.core.inspection.Inspector` (and with it the model
  and its device); it builds it itself, so no other thread ever touches the model. It does nothing
  slow: the results log's fsync, PNG encoding and every listener run on the dispatch thread
  (:mod:`station.live.dispatch`, which also documents the listener API).
- The hand-off between them drops the oldest frame for a live source and blocks the reader of a
  replay, so a camera is never held up and a replay loses nothing.
- Every frame is accounted for: ``acquired == inspected + failed + out_of_range + dropped`` once the
  run has ended.
- With a ``watch`` (:mod:`station.live.watch`) each frame is first checked against the teach images:
  one unlike them is not judged (verdict ``OUT_OF_RANGE``, counted apart); every result carries the
  drift watch's warning. Both cost about a millisecond, on the inspection thread.
- A pipeline without a recipe or inspector only acquires (the teach-in's capture): each frame goes
  to ``on_frame`` on the acquisition thread.

Nothing here imports Qt: the window's :class:`~station.live.session.LiveSession` and ``station
inspect`` drive the same pipeline.

Over ~450 lines: the two threads' loops share the counters and the frame accounting that must stay
exact (``acquired == inspected + failed + out_of_range + dropped``); the dispatch thread, the hand-off,
the statistics and the watch are already elsewhere.
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
from station.core.inspection import InspectionResult, Inspector
from station.core.recipe import Recipe
from station.detectors.runtime import load_inspector
from station.live.archive import ImageArchive
from station.live.dispatch import Dispatcher
from station.live.handoff import Closed, Handoff
from station.live.result import LiveResult, ResultListener
from station.live.results_db import ResultsLog
from station.live.stats import LatencyWindow, PipelineStats, RateMeter
from station.live.watch import LineWatch, WatchFactory

log = logging.getLogger(__name__)

__all__ = ["InspectionStopped", "LivePipeline", "LiveResult", "run_summary"]


class InspectionStopped(Exception):
    """Raised by an inspector to end the run (not just fail one frame): e.g. the source's frames do
    not fit the recipe at all. It becomes the run's :attr:`LivePipeline.error`."""


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
        The recipe to inspect with; the inspection thread builds its inspector (``load_inspector(recipe)``).
        Or give ``inspector_factory`` (called on the inspection thread) instead. Neither: acquisition only.
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
    on_result, listeners
        Called with each :class:`LiveResult` on the dispatch thread (see :mod:`station.live.dispatch`).
    on_state
        Called with ``(state, message)`` when the source's state changes (acquisition thread).
    on_frame
        Called with each acquired frame on the acquisition thread (keep it short); the only output
        of a pipeline without an inspector.
    watch
        Builds the input and drift watch for the inspector's recipe (on the inspection thread; see
        :func:`station.live.watch.line_watch`). ``None``: every frame is judged, nothing is watched.
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
        on_result: ResultListener | None = None,
        on_state: Callable[[SourceState, str], None] | None = None,
        listeners: list[ResultListener] | None = None,
        on_frame: Callable[[Frame], None] | None = None,
        watch: WatchFactory | None = None,
    ) -> None:
        if recipe is not None and inspector_factory is not None:
            raise ValueError("give either a recipe or an inspector_factory, not both")
        self.source = source
        self.recipe = recipe
        self._factory: Callable[[], Inspector] | None = inspector_factory
        if recipe is not None:
            self._factory = lambda: load_inspector(recipe)
        self.inspecting = self._factory is not None
        self.on_frame = on_frame
        self._listeners: list[ResultListener] = [*([on_result] if on_result else []), *(listeners or [])]
        self.dispatcher: Dispatcher | None = None
        self.results = results
        self.archive = archive
        self.max_frames = int(max_frames)
        self.frame_timeout = float(frame_timeout)
        self.on_result = on_result
        self.on_state = on_state
        live = bool(getattr(source, "live", True))
        self.handoff: Handoff[_Item] = Handoff(queue_size, drop_oldest=live if drop_oldest is None else drop_oldest)
        self.latency = LatencyWindow()  # acquisition -> verdict, inspected frames only (not failed ones)
        self.inspect_time = LatencyWindow()
        self._generation = 0
        self._generation_lock = threading.Lock()
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
        self._last_verdict: LiveResult | None = None
        self._latest_frame: Frame | None = None
        self._sequence = 0
        self._first_frame_at: float | None = None
        self._last_done_at: float | None = None
        self._discarded = 0
        self._error_messages: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._commands: queue.SimpleQueue[Callable[[Inspector], None]] = queue.SimpleQueue()
        self._inspected_generation = 0  # the generation the inspector applies now (inspection thread)
        self._watch_factory = watch
        self.watch: LineWatch | None = None  # built with the inspector, used on the inspection thread
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
        if self.inspecting:
            self.dispatcher = Dispatcher(self.results, self.archive, listeners=self._listeners)
        loop = self._inspect_loop if self.inspecting else self._no_inspection
        self._threads = [threading.Thread(target=loop, name="inspection", daemon=True),
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
    def source_state(self) -> str:
        """The source's state now (``acquiring``, ``lost``, ...)."""
        state = getattr(self.source, "state", None)
        return state.value if isinstance(state, SourceState) else str(state)

    @property
    def error(self) -> BaseException | None:
        """What stopped the run, if it failed."""
        return self._error

    def call_in_inspector(self, command: Callable[[Inspector], None]) -> None:
        """Run ``command(inspector)`` on the inspection thread before its next frame (the inspector is
        never touched from another thread)."""
        self._commands.put(command)

    def set_threshold(self, threshold: float, min_defect_area_px: float | None = None) -> int:
        """Change the decision threshold (and minimum defect area) from the next frame on -- the one
        way to do it while running. Returns the new *generation*: results carry the generation they
        were inspected with, so a viewer drops those computed with the old threshold."""
        with self._generation_lock:
            self._generation += 1
            generation = self._generation

        def apply(inspector: Inspector) -> None:
            inspector.set_threshold(threshold, min_defect_area_px)
            self._inspected_generation = generation

        self.call_in_inspector(apply)
        return generation

    @property
    def generation(self) -> int:
        """The newest generation asked for (see :meth:`set_threshold`)."""
        return self._generation

    # --- listeners ---------------------------------------------------------------------------------------
    def add_listener(self, listener: ResultListener) -> None:
        """Call ``listener(live)`` for each result on the dispatch thread (see :mod:`station.live.dispatch`)."""
        if listener not in self._listeners:
            self._listeners.append(listener)
        if self.dispatcher is not None:
            self.dispatcher.add_listener(listener)

    def remove_listener(self, listener: ResultListener) -> None:
        self._listeners = [fn for fn in self._listeners if fn != listener]
        if self.dispatcher is not None:
            self.dispatcher.remove_listener(listener)

    @property
    def db_time(self) -> LatencyWindow:
        """The results log's write times (on the dispatch thread)."""
        return self.dispatcher.db_time if self.dispatcher is not None else LatencyWindow()

    # --- what viewers read ------------------------------------------------------------------------------
    def latest_result(self) -> LiveResult | None:
        """The newest result, failed or not."""
        return self._latest

    def last_verdict(self) -> LiveResult | None:
        """The newest result with a verdict (OK, NG, or OUT_OF_RANGE: not judged, which a view must
        show rather than keep an older OK): what a view shows, marked stale when
        :meth:`latest_result` is a failure after it."""
        return self._last_verdict

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
        s.source_state = self.source_state
        s.reconnects = int(getattr(self.source, "reconnects", 0))
        d = self.dispatcher
        if d is not None:
            s.db_rows, s.db_errors, s.archived = d.rows, d.db_errors, d.archived
            s.undispatched, s.listener_errors, s.dispatch_backlog = d.undispatched, d.listener_errors, d.backlog
            s.db_p95_ms = d.db_time.percentiles(95)[0]
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
                if self.on_frame is not None:
                    try:
                        self.on_frame(frame)
                    except Exception:
                        log.exception("on_frame callback failed")
                if not self.inspecting:
                    continue
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

    def _no_inspection(self) -> None:
        """The inspection thread of an acquisition-only pipeline: nothing to build; it ends with the
        acquisition, so :meth:`wait` and :attr:`running` mean the same as with an inspector."""
        self._ready.set()
        self._acquisition_done.wait()
        self._finished.set()

    def _inspect_loop(self) -> None:
        assert self._factory is not None
        try:
            inspector = self._factory()
            if self._recipe_name is None:
                self._recipe_name = inspector.recipe.name
                self._recipe_version = inspector.recipe.version
            if self._watch_factory is not None:
                self.watch = self._watch_factory(inspector.recipe)
        except BaseException as exc:  # noqa: BLE001
            log.error("cannot build the inspector: %s", exc)
            self._fail(exc)
            self._ready.set()
            self.handoff.close()
            if self.dispatcher is not None:
                self.dispatcher.close()
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
            if self.dispatcher is not None and not self.dispatcher.close(timeout=30.0):
                log.error("the dispatch thread did not finish: %d results not recorded", self.dispatcher.backlog)
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
        """One frame on the inspection thread: inspect, count, hand the result to the dispatcher."""
        self._run_commands(inspector)
        frame = item.frame
        t0 = time.perf_counter()
        result: InspectionResult | None = None
        error: str | None = None
        check = None
        try:
            if self.watch is not None:
                inspector.precheck(frame.image)  # the recipe's own refusals (it does not fit) come first
                check = self.watch.check(frame.image)
            if check is None or not check.problem:  # a frame unlike the teach images is not judged
                result = inspector.inspect(frame.image)
        except InspectionStopped:
            with self._stats_lock:
                self._discarded += 1  # the frame that showed the problem is not inspected: dropped
            raise
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the line
            error = f"{type(exc).__name__}: {exc}"
            if error not in self._error_messages and len(self._error_messages) < 100:
                self._error_messages.add(error)
                log.warning("frame %s of %s not inspected: %s", frame.frame_id, frame.source, error,
                            exc_info=True)
        warning = self.watch.observe(check, result) if self.watch is not None and check is not None else ""
        problem = check.problem if check is not None else ""
        done = time.perf_counter()
        inspect_ms = (done - t0) * 1000.0
        latency_ms = (done - item.acquired_at) * 1000.0
        if result is not None:  # a failed frame has no verdict: its time would flatter or spoil the figures
            self.latency.add(latency_ms)
            self.inspect_time.add(inspect_ms)
        self._rate.tick()
        with self._stats_lock:
            s = self._stats
            if problem:
                s.out_of_range += 1
            elif result is None:
                s.failed += 1
            else:
                s.inspected += 1
                if result.is_ng:
                    s.ng += 1
                else:
                    s.ok += 1
            self._sequence += 1
            live = LiveResult(self._sequence, frame, result, error, latency_ms, inspect_ms,
                              generation=self._inspected_generation, done_at=time.monotonic(),
                              recipe=inspector.recipe.name, recipe_version=inspector.recipe.version,
                              input_problem=problem, warning=warning,
                              measures=check.measures if check is not None else None)
        self._latest = live
        if result is not None or problem:  # not judged is an answer too: the view must never keep an OK
            self._last_verdict = live
        self._last_done_at = time.monotonic()
        if self.dispatcher is not None:
            self.dispatcher.put(live)


def run_summary(stats: PipelineStats) -> dict[str, Any]:
    """The numbers a benchmark or report prints."""
    d = stats.to_dict()
    d["in_flight"] = stats.in_flight
    return d
