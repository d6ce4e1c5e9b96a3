"""Acquisition only, for the teach-in's live capture: a :class:`~station.live.pipeline.LivePipeline`
without an inspector (the same acquisition loop as inspection, its source handling, states and
errors), keeping at most ``max_rate`` frames a second for the window to :meth:`FrameGrabber.take`."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque

from station.acquisition.base import Frame, open_source
from station.live.pipeline import LivePipeline
from station.live.result import LiveError

log = logging.getLogger(__name__)


class FrameGrabber:
    """Frames from ``source_uri``, at most ``max_rate`` a second, the newest ``keep`` of them."""

    def __init__(self, source_uri: str, max_rate: float = 5.0, keep: int = 64) -> None:
        self.source_uri = source_uri
        self.min_interval = 1.0 / max_rate if max_rate > 0 else 0.0
        self._frames: deque[Frame] = deque(maxlen=keep)
        self._errors: deque[LiveError] = deque(maxlen=100)
        self._lock = threading.Lock()
        self._last = 0.0
        self._pipeline: LivePipeline | None = None
        self._error_reported = False

    def start(self) -> None:
        try:
            source = open_source(self.source_uri)
        except Exception as exc:  # noqa: BLE001 - shown in the window
            self._add_error(exc)
            return
        self._pipeline = LivePipeline(source, on_frame=self._keep)
        self._pipeline.start(wait_ready=False)

    def stop(self, timeout: float = 1.5) -> bool:
        if self._pipeline is None:
            return True
        self._pipeline.stop(timeout=timeout, drain=False)
        return not self._pipeline.running

    @property
    def running(self) -> bool:
        return self._pipeline is not None and self._pipeline.running

    @property
    def finished(self) -> bool:
        return not self.running

    @property
    def source_state(self) -> str:
        return self._pipeline.source_state if self._pipeline is not None else "closed"

    def take(self) -> list[Frame]:
        with self._lock:
            out = list(self._frames)
            self._frames.clear()
            return out

    def drain_errors(self) -> list[LiveError]:
        p = self._pipeline
        if p is not None and p.error is not None and not self._error_reported:
            self._error_reported = True
            self._add_error(p.error)
        with self._lock:
            out = list(self._errors)
            self._errors.clear()
            return out

    def _add_error(self, exc: BaseException) -> None:
        log.error("capture from %s failed: %s", self.source_uri, exc)
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        with self._lock:
            self._errors.append(LiveError("camera", str(exc) or type(exc).__name__, details))

    def _keep(self, frame: Frame) -> None:  # the acquisition thread
        now = time.monotonic()
        if now - self._last < self.min_interval:
            return
        self._last = now
        with self._lock:
            self._frames.append(frame)
