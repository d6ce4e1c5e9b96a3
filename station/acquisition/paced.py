"""What the software sources (folder replay, synthetic part) share: the open/start/stop/close state
machine and pacing frames at a set rate like a free-running camera."""

from __future__ import annotations

import threading
import time

from station.acquisition.base import SourceError, SourceState


class PacedSource:
    """Base of a source that makes its frames itself at ``fps`` frames per second (0: as fast as asked)."""

    uri: str
    fps: float

    def __init__(self) -> None:
        self._state = SourceState.CLOSED
        self._next_due = 0.0
        self._lock = threading.Lock()  # next_frame may be called from more than one thread

    @property
    def state(self) -> SourceState:
        return self._state

    def open(self) -> None:
        self._state = SourceState.CONNECTED

    def start(self) -> None:
        if self._state is SourceState.CLOSED:
            self.open()
        self._next_due = time.monotonic()
        self._state = SourceState.ACQUIRING

    def stop(self) -> None:
        if self._state is SourceState.ACQUIRING:
            self._state = SourceState.CONNECTED

    def close(self) -> None:
        self._state = SourceState.CLOSED

    def _require_acquiring(self) -> None:
        if self._state is not SourceState.ACQUIRING:
            raise SourceError(f"{self.uri}: not acquiring (state {self._state.value}); call start() first")

    def _wait_turn(self, timeout: float) -> bool:
        """Sleep until the next frame is due; ``False`` (after ``timeout`` s) if it is not due by then.
        Call with ``self._lock`` held."""
        if self.fps <= 0:
            return True
        wait = self._next_due - time.monotonic()
        if wait > timeout:
            time.sleep(max(0.0, timeout))
            return False
        if wait > 0:
            time.sleep(wait)
        # A camera does not burst to catch up after a stall: the next frame is one period on.
        self._next_due = max(self._next_due + 1.0 / self.fps, time.monotonic())
        return True
