"""Live inspection in the window: the Qt-free :class:`~station.live.pipeline.LivePipeline` (an
acquisition thread and an inspection thread, a bounded hand-off, the results log and the NG archive)
with what the window adds on top. This module uses no Qt either, so it is tested without a window.

- The inspection thread owns the recipe's detector (and with it the torch device): the inspector is
  built there by the factory given to the pipeline, never on the GUI thread.
- The window polls :meth:`LiveSession.latest` on a timer: no frame queue into the paint path.
- Every result carries the session's *generation*, bumped when the threshold changes (the teach-in
  preview); the window drops results of an older generation, so nothing computed with the old
  threshold is shown after the change.
- Errors (a frame that failed, a source or recipe that cannot be opened) are queued for the window;
  a failed frame is counted and the run goes on. Nothing is ever raised into the window.
- The shift's counters, the recent NG parts (with thumbnails drawn here, on the inspection thread)
  and the results log row are all fed from the pipeline's ``on_result`` callback.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from station.acquisition.base import Frame, open_source
from station.app.shift import ShiftCounters
from station.core.images import convert_color
from station.core.inspection import InspectionResult, Inspector
from station.core.overlay import GREEN, draw_contours
from station.core.recipe import Recipe, load_recipe
from station.detectors.runtime import detector_from_recipe, plan_for_recipe
from station.live.archive import ImageArchive
from station.live.pipeline import LivePipeline
from station.live.pipeline import LiveResult as PipelineResult
from station.live.results_db import ResultsLog

log = logging.getLogger(__name__)

POLL_S = 0.2  # how long a grabber waits for a frame before checking whether it should stop


@dataclass
class LiveResult:
    """One inspected frame, as the window shows it."""

    seq: int  # increases by one per inspected frame of the session
    generation: int
    frame: Frame
    result: InspectionResult
    latency_ms: float  # acquisition to verdict
    done_at: float  # time.monotonic()


@dataclass
class NgRecord:
    """A recent NG part for the strip: the thumbnail is drawn on the inspection thread."""

    seq: int
    frame_id: int
    time: float  # time.time()
    image: np.ndarray = field(repr=False)
    result: InspectionResult = field(repr=False)
    thumb: np.ndarray = field(repr=False)
    label: str | None = None  # ground truth where the source knows it (synthetic, replay)


@dataclass
class LiveError:
    where: str  # "camera", "recipe", "inspection"
    message: str
    details: str = ""


class _TunableInspector(Inspector):
    """An inspector that takes a new threshold between frames, on its own thread, and remembers the
    generation it inspected with."""

    def __init__(self, session: LiveSession, recipe: Recipe, **kwargs: Any) -> None:
        super().__init__(recipe, **kwargs)
        self._session = session
        self.generation = 0

    def inspect_batch(self, images):  # type: ignore[override]
        pending = self._session._take_pending()
        if pending is not None:
            generation, threshold, area = pending
            self.set_threshold(threshold, area)
            self.generation = generation
        return super().inspect_batch(images)


class LiveSession:
    """One run of live inspection: ``start()``, poll ``latest()``, ``stop()``.

    Parameters
    ----------
    source_uri
        The frame source (see :func:`~station.acquisition.base.open_source`).
    recipe
        A recipe (or its folder) to inspect with; loaded on the inspection thread.
    counters
        The shift's counters, shared across sessions.
    detector
        An already fitted detector for ``recipe`` (the teach-in preview); ownership passes to this
        session's inspection thread.
    device
        ``auto``, ``cpu`` or ``cuda[:n]`` for detectors that run on a torch device.
    results, archive
        The results log and the NG image archive (optional; owned by the caller, not closed here).
    """

    def __init__(self, source_uri: str, recipe: Recipe | str | Path, counters: ShiftCounters | None = None,
                 detector: Any = None, device: str = "auto", ng_keep: int = 12,
                 results: ResultsLog | None = None, archive: ImageArchive | None = None) -> None:
        self.source_uri = source_uri
        self._recipe_arg = recipe
        self.counters = counters if counters is not None else ShiftCounters()
        self._detector = detector
        self._device_pref = device
        self._results = results
        self._archive = archive
        self._lock = threading.Lock()
        self._latest: LiveResult | None = None
        self._ng: deque[NgRecord] = deque(maxlen=ng_keep)
        self._errors: deque[LiveError] = deque(maxlen=100)
        self._generation = 0
        self._pending: tuple[int, float, float | None] | None = None
        self._inspector: _TunableInspector | None = None
        self._pipeline: LivePipeline | None = None
        self._dropped_seen = 0
        self._error_reported = False
        self.first_result = threading.Event()
        self.device_name = ""
        self.recipe_label = recipe.label if isinstance(recipe, Recipe) else ""
        self.pixel_size_mm: float | None = None
        self.started_at = 0.0

    # --- control (GUI thread) ---------------------------------------------------------------------
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
                                      archive=self._archive, queue_size=2, on_result=self._on_result)
        self._pipeline.start(wait_ready=False)

    def stop(self, timeout: float = 1.5) -> bool:
        """Stop acquiring, drop what is queued, wait up to ``timeout`` s; True if both threads ended."""
        if self._pipeline is None:
            return True
        self._pipeline.stop(timeout=timeout, drain=False)
        self._sync_dropped()
        return not self._pipeline.running

    @property
    def running(self) -> bool:
        return self._pipeline is not None and self._pipeline.running

    @property
    def pipeline(self) -> LivePipeline | None:
        return self._pipeline

    @property
    def generation(self) -> int:
        return self._generation

    def set_threshold(self, threshold: float, min_defect_area_px: float | None = None) -> int:
        """Inspect with a new threshold from the next frame on; returns the new generation, so the
        window can drop results computed with the old one."""
        with self._lock:
            self._generation += 1
            self._pending = (self._generation, float(threshold), min_defect_area_px)
            return self._generation

    def _take_pending(self) -> tuple[int, float, float | None] | None:
        with self._lock:
            pending, self._pending = self._pending, None
            return pending

    # --- what the window polls --------------------------------------------------------------------
    def latest(self) -> LiveResult | None:
        with self._lock:
            return self._latest

    def latest_frame(self) -> Frame | None:
        """The newest acquired frame, inspected or not (the live camera pane)."""
        return self._pipeline.latest_frame() if self._pipeline is not None else None

    def ng_records(self) -> list[NgRecord]:
        """Recent NG parts, newest first."""
        with self._lock:
            return list(reversed(self._ng))

    def drain_errors(self) -> list[LiveError]:
        """New problems since the last call (the run's fatal error once, when it has one)."""
        p = self._pipeline
        if p is not None and p.error is not None and not self._error_reported:
            self._error_reported = True
            exc = p.error
            where = "recipe" if self._inspector is None else "camera"
            self._error(where, exc, "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        self._sync_dropped()
        with self._lock:
            out = list(self._errors)
            self._errors.clear()
            return out

    @property
    def source_state(self) -> str:
        p = self._pipeline
        if p is None:
            return "closed"
        state = getattr(p.source, "state", None)
        return getattr(state, "value", str(state))

    @property
    def dropped(self) -> int:
        return self._pipeline.stats().dropped if self._pipeline is not None else 0

    @property
    def error(self) -> BaseException | None:
        return self._pipeline.error if self._pipeline is not None else None

    def _sync_dropped(self) -> None:
        if self._pipeline is None:
            return
        dropped = self._pipeline.handoff.dropped
        if dropped > self._dropped_seen:
            self.counters.add_dropped(dropped - self._dropped_seen)
            self._dropped_seen = dropped

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
            inspector = _TunableInspector(self, recipe, detector=self._detector)
        else:
            plan = plan_for_recipe(recipe, device=self._device_pref)
            self.device_name = plan.device_name
            inspector = _TunableInspector(self, recipe, detector=detector_from_recipe(recipe, **plan.options))
            if getattr(inspector.detector, "onnx_model", None) == "int8":  # int8 versions run on the CPU
                self.device_name = "CPU (int8)"
        self._inspector = inspector
        return inspector

    def _on_result(self, live: PipelineResult) -> None:
        if live.result is None:
            self.counters.add_failed()
            self._error("inspection", f"a frame was not inspected: {live.error}")
            return
        result = live.result
        self.counters.add(result.is_ng, live.latency_ms)
        generation = self._inspector.generation if self._inspector is not None else 0
        out = LiveResult(live.sequence, generation, live.frame, result, live.latency_ms, time.monotonic())
        with self._lock:
            self._latest = out
        self.first_result.set()
        if result.is_ng:
            self._keep_ng(out)

    def _keep_ng(self, live: LiveResult) -> None:
        image = convert_color(live.frame.image, "rgb")
        h, w = image.shape[:2]
        f = min(1.0, 160 / max(h, w))
        small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        contours = [np.rint(r.contour * f).astype(np.int32) for r in live.result.regions]
        draw_contours(small, contours, GREEN, 1)
        label = live.frame.meta.get("label")
        record = NgRecord(live.seq, live.frame.frame_id, time.time(), live.frame.image, live.result, small,
                          label if isinstance(label, str) else None)
        with self._lock:
            self._ng.append(record)


class FrameGrabber:
    """Acquisition only (the teach-in's live capture): frames from a source, at most ``max_rate`` a
    second, collected for the window to take with :meth:`take`. Errors are queued like a session's."""

    def __init__(self, source_uri: str, max_rate: float = 5.0, keep: int = 64) -> None:
        self.source_uri = source_uri
        self.min_interval = 1.0 / max_rate if max_rate > 0 else 0.0
        self._frames: deque[Frame] = deque(maxlen=keep)
        self._errors: deque[LiveError] = deque(maxlen=100)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.source_state = "closed"
        self.finished = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.5) -> bool:
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def take(self) -> list[Frame]:
        with self._lock:
            out = list(self._frames)
            self._frames.clear()
            return out

    def drain_errors(self) -> list[LiveError]:
        with self._lock:
            out = list(self._errors)
            self._errors.clear()
            return out

    def _run(self) -> None:
        source = None
        last = 0.0
        try:
            source = open_source(self.source_uri)
            source.open()
            source.start()
            self.source_state = source.state.value
            while not self._stop.is_set():
                try:
                    frame = source.next_frame(timeout=POLL_S)
                except StopIteration:
                    break
                self.source_state = source.state.value
                now = time.monotonic()
                if frame is None or now - last < self.min_interval:
                    continue
                last = now
                with self._lock:
                    self._frames.append(frame)
        except Exception as exc:  # noqa: BLE001 - shown in the window
            log.exception("capture from %s failed", self.source_uri)
            with self._lock:
                self._errors.append(LiveError("camera", str(exc) or type(exc).__name__, traceback.format_exc()))
        finally:
            self.finished = True
            if source is not None:
                for step in (source.stop, source.close):
                    try:
                        step()
                    except Exception:  # noqa: BLE001
                        log.exception("closing %s", self.source_uri)
                self.source_state = source.state.value
