"""Worker threads for the window: long jobs with progress and cancel, and a latest-request-wins
worker for interactive recomputation.

Workers are plain Python threads; they talk to the window only through Qt signals of a QObject that
lives in the GUI thread (queued across threads by Qt), so no widget is ever touched off the GUI
thread. An exception in a job is delivered as ``failed`` with its traceback -- shown in the window,
never swallowed, never fatal.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from station.core.progress import Cancelled, CancelToken, Progress

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.05  # at most 20 progress signals a second reach the GUI


class Job(QObject):
    """Runs ``fn(progress, cancel)`` once on its own thread.

    Signals: ``progress(Progress)``, ``item(object)`` (whatever ``fn`` passes to :meth:`emit_item`),
    ``finished(result)``, ``failed(message, traceback)``, ``cancelled()``; exactly one of the last
    three ends every job.
    """

    progress = Signal(object)
    item = Signal(object)
    finished = Signal(object)
    failed = Signal(str, str)
    cancelled = Signal()

    def __init__(self, fn: Callable[[Callable[[Progress], None], CancelToken], Any], name: str = "job",
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._fn = fn
        self.cancel_token = CancelToken()
        self._thread: threading.Thread | None = None
        self._last_progress = 0.0
        self._last_stage = ""
        self.started_at = 0.0
        self.outcome: str | None = None  # "finished", "failed", "cancelled" once done

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Job:
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"job-{self.name}", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self.cancel_token.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Join the thread; True if it ended within ``timeout``."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def emit_item(self, obj: Any) -> None:
        self._emit(self.item, obj)

    def _on_progress(self, p: Progress) -> None:
        now = time.monotonic()
        # a stage's first report always goes through: a long step that reports only when it starts and
        # ends (the metrics after "evaluating 83/83") would otherwise stay invisible behind the last one
        new_stage = p.stage != self._last_stage
        if new_stage or p.done >= p.total or now - self._last_progress >= PROGRESS_INTERVAL_S:
            self._last_progress = now
            self._last_stage = p.stage
            self._emit(self.progress, p)

    @staticmethod
    def _emit(signal: Any, *args: Any) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the window (and this QObject) is gone: the job outlived it at exit
            pass

    def _run(self) -> None:
        fn, self._fn = self._fn, None  # a finished job keeps nothing of its work (a review's results, samples)
        try:
            result = fn(self._on_progress, self.cancel_token)
        except Cancelled:
            self.outcome = "cancelled"
            log.info("%s cancelled", self.name)
            self._emit(self.cancelled)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the window
            self.outcome = "failed"
            log.exception("%s failed", self.name)
            message = str(exc) if str(exc) else type(exc).__name__
            if isinstance(exc, (ImportError, MemoryError, AttributeError, TypeError, KeyError)):
                message = f"{type(exc).__name__}: {message}"
            self._emit(self.failed, message, traceback.format_exc())
        else:
            self.outcome = "finished"
            if self.cancel_token.cancelled:
                self._emit(self.cancelled)
            else:
                self._emit(self.finished, result)


class LatestOnlyWorker(QObject):
    """One long-lived thread computing ``fn(request)`` for the most recent request only.

    A slider can submit a request per pixel of travel; requests that arrive while one is computed
    replace each other, so the answer always catches up with the newest value and nothing queues.
    ``result(request_id, request, value)`` and ``failed(request_id, message)`` carry the id returned
    by :meth:`submit` so the receiver can drop stale answers.
    """

    result = Signal(int, object, object)
    failed = Signal(int, str)

    def __init__(self, fn: Callable[[Any], Any], name: str = "latest-only", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._fn = fn
        self._cond = threading.Condition()
        self._pending: tuple[int, Any] | None = None
        self._next_id = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, request: Any) -> int:
        with self._cond:
            self._next_id += 1
            self._pending = (self._next_id, request)
            self._cond.notify()
            return self._next_id

    @property
    def latest_id(self) -> int:
        return self._next_id

    def stop(self, timeout: float = 1.0) -> bool:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._stopped)
                if self._stopped:
                    return
                request_id, request = self._pending
                self._pending = None
            try:
                value = self._fn(request)
            except Exception as exc:  # noqa: BLE001 - shown by the receiver
                log.exception("request %r failed", request)
                Job._emit(self.failed, request_id, str(exc) or type(exc).__name__)
            else:
                Job._emit(self.result, request_id, request, value)
