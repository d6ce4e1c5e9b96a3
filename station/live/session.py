"""One run of live inspection as the window drives it: a :class:`~station.live.pipeline.LivePipeline`
plus what an operator's screen needs -- the shift's counters, the recent NG parts with thumbnails, the
problems to show in plain words, whether the result on screen is stale, and the stop-the-line rule.

Qt-free (tested without PySide6):

- The inspection thread owns the recipe's detector: the inspector is built there, never on the
  window's thread. The window polls :meth:`LiveSession.latest` on a timer -- no frame queue into
  the paint path.
- A threshold change goes through :meth:`LivePipeline.set_threshold`, the one way to change it while
  running; results carry the generation they were inspected with, so the window drops older ones.
- The counters, the NG strip (thumbnails drawn here) and the stop-the-line rule are listeners on the
  pipeline's dispatch thread: nothing of this runs on the inspection thread.
- Before the first frame is inspected it is checked against the recipe (:mod:`station.live.checks`):
  a recipe that does not fit the source stops the run with the cause and the fix, instead of
  failing every frame.
- Every frame is watched (:mod:`station.live.watch`): one unlike the teach images is not judged
  (``OUT_OF_RANGE``), and a drift of the OK parts' scores or of the light, contrast or focus raises a
  warning in :meth:`LiveSession.health`, the log and every result (the line outputs).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from station.acquisition.base import Frame, open_source
from station.core.golden import GoldenReport, has_golden, run_golden
from station.core.images import convert_color
from station.core.inspection import InspectionResult, Inspector
from station.core.overlay import GREEN, draw_contours
from station.core.recipe import Recipe, load_recipe
from station.detectors.runtime import detector_from_recipe, plan_for_recipe
from station.live.archive import ImageArchive
from station.live.checks import RecipeNeeds, check_frame, explain_drops, explain_failure
from station.live.input_watch import PREFIX as INPUT_PREFIX
from station.live.pipeline import InspectionStopped, LivePipeline
from station.live.result import LiveError, LiveResult, ResultListener
from station.live.results_db import ResultsLog
from station.live.shift import ShiftCounters
from station.live.stats import PipelineStats
from station.live.watch import DEFAULT_ALARM_LEVEL, line_watch

log = logging.getLogger(__name__)


@dataclass
class NgRecord:
    """A recent NG part for the strip: the thumbnail is drawn on the dispatch thread."""

    seq: int
    frame_id: int
    time: float  # time.time()
    image: np.ndarray = field(repr=False)
    result: InspectionResult = field(repr=False)
    thumb: np.ndarray = field(repr=False)
    label: str | None = None  # ground truth where the source knows it (synthetic, replay)
    source: str = ""


@dataclass(frozen=True)
class StopRule:
    """When to stop the line rather than run on: after ``failures`` frames in a row could not be
    inspected (0: never). Dropped frames above ``dropped_share`` only warn."""

    failures: int = 10
    dropped_share: float = 0.05


INPUT_PROBLEM_AFTER = 3  # frames in a row not judged before the line status says so (the tile shows each)


@dataclass
class Health:
    """What the window shows beside the verdict: problems now, in plain words."""

    stale: bool = False  # the result on screen is not of the newest frame (frames failing since)
    failing: int = 0  # frames failed in a row
    cause: str = ""
    fix: str = ""
    dropped_warning: str = ""
    line_stopped: str = ""  # why the run was stopped by the stop-the-line rule
    golden_warning: str = ""  # the golden parts failed and the recipe is set to warn only
    input_problem: str = ""  # frames in a row are not judged: unlike the teach images (input watch)
    drift_warning: str = ""  # the drift watch's warning now (scores or light drifting: false rejects ahead)


class RecipeMismatch(InspectionStopped):
    """The source's frames do not fit the recipe (raised on the inspection thread before inspecting)."""


class GoldenFailed(InspectionStopped):
    """The recipe's golden parts got a wrong verdict and the recipe blocks inspection then."""


class LiveSession:
    """One run of live inspection: ``start()``, poll ``latest()``, ``stop()``.

    Parameters
    ----------
    source_uri
        The frame source (see :func:`~station.acquisition.base.open_source`).
    recipe
        A recipe (or its folder) to inspect with; loaded on the inspection thread.
    counters
        The shift's counters, shared across sessions (fed from this run's pipeline stats).
    detector
        An already fitted detector for ``recipe`` (the teach-in preview); ownership passes to this
        session's inspection thread.
    device
        ``auto``, ``cpu`` or ``cuda[:n]`` for detectors that run on a torch device.
    results, archive
        The results log and the NG image archive (optional; owned by the caller, not closed here).
    listeners
        More result listeners (line outputs), called on the dispatch thread.
    stop_rule
        When a failing line stops (default: :class:`StopRule`).
    golden
        Run the recipe's golden parts (:mod:`station.core.golden`) before the first frame and after
        each threshold change; a wrong verdict stops the run or warns, as the recipe says.
    on_golden
        Called with each :class:`~station.core.golden.GoldenReport` (on the inspection thread: keep it
        short -- the app appends it to the audit log).
    watch, drift_alarm_level
        Check every frame against the teach images before judging it, and watch for drift with this
        CUSUM alarm level (:mod:`station.live.drift`; 0: no drift warning).
    """

    def __init__(self, source_uri: str, recipe: Recipe | str | Path, counters: ShiftCounters | None = None,
                 detector: Any = None, device: str = "auto", ng_keep: int = 12,
                 results: ResultsLog | None = None, archive: ImageArchive | None = None,
                 listeners: list[ResultListener] | None = None, stop_rule: StopRule | None = None,
                 check_first_frame: bool = True, golden: bool = True,
                 on_golden: Callable[[GoldenReport], None] | None = None, watch: bool = True,
                 drift_alarm_level: float = DEFAULT_ALARM_LEVEL) -> None:
        self.source_uri = source_uri
        self._recipe_arg = recipe
        self.counters = counters if counters is not None else ShiftCounters()
        self._detector = detector
        self._device_pref = device
        self._results = results
        self._archive = archive
        self._listeners = list(listeners or [])
        self.stop_rule = stop_rule or StopRule()
        self.check_first_frame = check_first_frame  # False: an engineer chose to switch despite a mismatch
        self.golden = golden
        self._on_golden = on_golden
        self.golden_report: GoldenReport | None = None  # the newest run of the golden parts
        self.watch = watch
        self.drift_alarm_level = float(drift_alarm_level)
        self._out_of_range_since: int | None = None  # the frame an unbroken run of refused frames began
        self._out_of_range_run = 0  # frames in a row not judged (one empty fixture is no line problem)
        self._lock = threading.Lock()
        self._ng: deque[NgRecord] = deque(maxlen=ng_keep)
        self._errors: deque[LiveError] = deque(maxlen=100)
        self._pending_threshold: tuple[float, float | None] | None = None
        self._inspector: Inspector | None = None
        self._pipeline: LivePipeline | None = None
        self._error_reported = False
        self._run = object()  # this run's key in the shift counters (holds nothing)
        self._failing = 0
        self._failure_shown = ""
        self._line_stopped = ""
        self.first_result = threading.Event()
        self.device_name = ""
        self.recipe_label = recipe.label if isinstance(recipe, Recipe) else ""
        self.pixel_size_mm: float | None = None
        self.started_at = 0.0
        self.stopped_at: float | None = None

    # --- control (the window's thread) ------------------------------------------------------------
    def start(self) -> None:
        """Start the threads and return at once (the recipe loads on the inspection thread; a
        failure shows up in :meth:`drain_errors`)."""
        if self._pipeline is not None:
            raise RuntimeError("a live session starts once; make a new one")
        self.started_at = time.monotonic()
        try:
            source = open_source(self.source_uri)
        except Exception as exc:  # noqa: BLE001 - an unknown scheme or a bad option: shown, not raised
            self._error("camera", exc)
            return
        self._pipeline = LivePipeline(source, inspector_factory=self._build_inspector, results=self._results,
                                      archive=self._archive, queue_size=2,
                                      listeners=[self._on_result, *self._listeners],
                                      watch=line_watch(self.drift_alarm_level) if self.watch else None)
        if self._pending_threshold is not None:
            self._pipeline.set_threshold(*self._pending_threshold)
        if self.golden:  # after the threshold it will inspect with, before the first frame
            self._pipeline.call_in_inspector(self._run_golden)
        self._pipeline.start(wait_ready=False)

    def stop(self, timeout: float = 1.5) -> bool:
        """Stop acquiring, drop what is queued, wait up to ``timeout`` s; True if the threads ended."""
        if self._pipeline is None:
            return True
        self._pipeline.stop(timeout=timeout, drain=False)
        self.stopped_at = time.monotonic()
        self._follow_counters()
        if not self._pipeline.running:
            self.counters.forget(self._run)  # saves
        else:  # the dispatch thread still logs the last results; what it counts is saved on the next flush
            self.counters.save()
        return not self._pipeline.running

    @property
    def running(self) -> bool:
        return self._pipeline is not None and self._pipeline.running

    @property
    def pipeline(self) -> LivePipeline | None:
        return self._pipeline

    @property
    def generation(self) -> int:
        return self._pipeline.generation if self._pipeline is not None else 0

    def set_threshold(self, threshold: float, min_defect_area_px: float | None = None) -> int:
        """Inspect with a new threshold from the next frame on; returns the new generation (see
        :meth:`LivePipeline.set_threshold`)."""
        if self._pipeline is None:
            self._pending_threshold = (float(threshold), min_defect_area_px)
            return 0
        generation = self._pipeline.set_threshold(threshold, min_defect_area_px)
        if self.golden:  # a threshold far too high (or low) must not inspect unnoticed
            self._pipeline.call_in_inspector(self._run_golden)
        return generation

    def run_golden(self) -> bool:
        """Run the golden parts again before the next frame (shift start, on demand); False when the
        session is not running."""
        if self._pipeline is None or not self.running:
            return False
        self._pipeline.call_in_inspector(self._run_golden)
        return True

    # --- what the window polls --------------------------------------------------------------------
    def latest(self) -> LiveResult | None:
        """The newest frame *with a verdict*, OUT_OF_RANGE included (a failed frame leaves the last
        verdict, which :meth:`health` then marks as stale)."""
        p = self._pipeline
        return p.last_verdict() if p is not None else None

    def latest_frame(self) -> Frame | None:
        """The newest acquired frame, inspected or not (the live camera pane)."""
        return self._pipeline.latest_frame() if self._pipeline is not None else None

    def stats(self) -> PipelineStats | None:
        return self._pipeline.stats() if self._pipeline is not None else None

    def ng_records(self) -> list[NgRecord]:
        """Recent NG parts, newest first."""
        with self._lock:
            return list(reversed(self._ng))

    def health(self) -> Health:
        h = Health(failing=self._failing, line_stopped=self._line_stopped)
        g = self.golden_report
        if g is not None and not g.passed and not g.blocks:
            h.golden_warning = g.message()
        p = self._pipeline
        if p is None:
            return h
        newest = p.latest_result()
        if newest is not None and newest.input_problem and self._out_of_range_run >= INPUT_PROBLEM_AFTER:
            h.input_problem = (f"{self._out_of_range_run} frames in a row not judged: "
                               f"{newest.input_problem.removeprefix(INPUT_PREFIX)}")
        h.drift_warning = p.watch.warning if p.watch is not None else ""
        h.stale = newest is not None and newest.result is None and not newest.input_problem
        if h.stale and newest is not None:
            h.cause, h.fix = explain_failure(newest.error or "", self.source_uri, self.recipe_label or "the recipe")
        s = p.stats()
        if s.acquired >= 20 and s.dropped_share > self.stop_rule.dropped_share:
            cause, fix = explain_drops(s.dropped_share, s.recent_fps, None)
            h.dropped_warning = f"{cause} {fix}"
        return h

    def drain_errors(self) -> list[LiveError]:
        """New problems since the last call (the run's fatal error once, when it has one)."""
        p = self._pipeline
        if p is not None and p.error is not None and not self._error_reported:
            self._error_reported = True
            exc = p.error
            where = ("recipe" if self._inspector is None or isinstance(exc, (RecipeMismatch, GoldenFailed))
                     else "camera")
            self._error(where, exc, "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        self._follow_counters()
        with self._lock:
            out = list(self._errors)
            self._errors.clear()
            return out

    @property
    def source_state(self) -> str:
        return self._pipeline.source_state if self._pipeline is not None else "closed"

    @property
    def dropped(self) -> int:
        return self._pipeline.stats().dropped if self._pipeline is not None else 0

    @property
    def error(self) -> BaseException | None:
        return self._pipeline.error if self._pipeline is not None else None

    def _follow_counters(self) -> None:
        if self._pipeline is not None:
            self.counters.follow(self._run, self._pipeline.stats())

    # --- on the inspection thread -----------------------------------------------------------------
    def _error(self, where: str, exc: BaseException | str, details: str = "") -> None:
        message = exc if isinstance(exc, str) else (str(exc) or type(exc).__name__)
        if not isinstance(exc, str) and isinstance(exc, (KeyError, AttributeError, TypeError, ImportError)):
            message = f"{type(exc).__name__}: {message}"
        with self._lock:
            self._errors.append(LiveError(where, message, details))

    def _build_inspector(self) -> Inspector:
        recipe = self._recipe_arg
        if not isinstance(recipe, Recipe):
            recipe = load_recipe(recipe)
        self.recipe_label = recipe.label
        self.pixel_size_mm = recipe.pixel_size_mm
        if self._detector is not None:
            self.device_name = "CPU"
            inspector = _CheckedInspector(recipe, self.check_first_frame, detector=self._detector)
        else:
            plan = plan_for_recipe(recipe, device=self._device_pref)
            self.device_name = plan.device_name
            inspector = _CheckedInspector(recipe, self.check_first_frame,
                                          detector=detector_from_recipe(recipe, **plan.options))
            if getattr(inspector.detector, "onnx_model", None) == "int8":  # int8 versions run on the CPU
                self.device_name = "CPU (int8)"
        self._inspector = inspector
        return inspector

    def _run_golden(self, inspector: Inspector) -> None:
        """A command on the inspection thread: the golden parts with the inspector as it now stands."""
        recipe = inspector.recipe
        if not has_golden(recipe):
            return
        plain = Inspector(recipe, inspector.detector)  # the same detector, without the first-frame check
        plain.set_threshold(inspector.threshold, inspector.min_defect_area_px)
        report = run_golden(recipe, plain)
        self.golden_report = report
        (log.info if report.passed else log.error)("%s", report.message())
        if isinstance(inspector, _CheckedInspector):
            inspector.blocked = report.message() if report.blocks else ""
        if self._on_golden is not None:
            try:
                self._on_golden(report)
            except Exception:  # noqa: BLE001 - a failing audit write must not stop the check
                log.exception("recording the golden-part self-test failed")

    # --- on the dispatch thread -------------------------------------------------------------------
    def _on_result(self, live: LiveResult) -> None:
        p = self._pipeline
        self._out_of_range_run = self._out_of_range_run + 1 if live.input_problem else 0
        if not live.input_problem and self._out_of_range_since is not None:
            log.info("input back in range at frame %s (not judged since frame %s)", live.frame.frame_id,
                     self._out_of_range_since)
            self._out_of_range_since = None
        if live.input_problem:  # not judged: said once per unbroken run of such frames, not 30 times a second
            if self._out_of_range_since is None:
                self._out_of_range_since = live.frame.frame_id
                log.warning("frame %s not judged, %s", live.frame.frame_id, live.input_problem)
        elif live.result is None:
            self._failing += 1
            if live.error != self._failure_shown:  # each new cause once, not 30 banners a second
                self._failure_shown = live.error or ""
                cause, fix = explain_failure(live.error or "", self.source_uri, self.recipe_label or "the recipe")
                self._error("inspection", f"{cause} {fix}", live.error or "")
            if self.stop_rule.failures and self._failing >= self.stop_rule.failures and not self._line_stopped:
                self._line_stopped = (f"stopped after {self._failing} frames in a row could not be inspected: "
                                      f"{explain_failure(live.error or '', self.source_uri, self.recipe_label)[0]}")
                log.error("line %s", self._line_stopped)
                if p is not None:
                    threading.Thread(target=p.stop, kwargs={"drain": False}, name="stop-line", daemon=True).start()
        else:
            self._failing = 0
            self._failure_shown = ""
            self.first_result.set()
            if live.result.is_ng:
                self._keep_ng(live)
        if p is not None:
            self.counters.follow(self._run, p.stats())

    def _keep_ng(self, live: LiveResult) -> None:
        assert live.result is not None
        image = convert_color(live.frame.image, "rgb")
        h, w = image.shape[:2]
        f = min(1.0, 160 / max(h, w))
        small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        contours = [np.rint(r.contour * f).astype(np.int32) for r in live.result.regions]
        draw_contours(small, contours, GREEN, 1)
        record = NgRecord(live.sequence, live.frame.frame_id, time.time(), live.frame.image, live.result, small,
                          live.label, live.frame.source)
        with self._lock:
            self._ng.append(record)


class _CheckedInspector(Inspector):
    """Checks the first frame against the recipe before inspecting anything: a recipe that does not
    fit the source stops the run with the reason, instead of failing every frame."""

    def __init__(self, recipe: Recipe, check: bool = True, **kwargs: Any) -> None:
        super().__init__(recipe, **kwargs)
        self._needs: RecipeNeeds | None = RecipeNeeds.of(recipe) if check else None
        self.blocked = ""  # why the golden parts block inspection (empty: they do not)

    def precheck(self, image):  # type: ignore[override]
        if self.blocked:
            raise GoldenFailed(self.blocked)
        if self._needs is not None:
            problems = check_frame(self._needs, image)
            self._needs = None
            if problems:
                raise RecipeMismatch("; ".join(problems))
        super().precheck(image)

    def inspect_batch(self, images):  # type: ignore[override]
        if images:
            self.precheck(images[0])
        return super().inspect_batch(images)
