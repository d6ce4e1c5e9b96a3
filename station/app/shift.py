"""What the operator sees counted: parts OK/NG and yield since the start of the shift, frame rates,
latency and dropped frames -- thread-safe, bounded in memory however long the shift runs."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime

import numpy as np


class RateMeter:
    """Events per second over the last ``window`` seconds."""

    def __init__(self, window: float = 2.0, clock=time.monotonic) -> None:
        self.window = float(window)
        self._clock = clock
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self) -> None:
        now = self._clock()
        with self._lock:
            self._times.append(now)
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()

    def rate(self) -> float:
        now = self._clock()
        with self._lock:
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            return (len(self._times) - 1) / max(self._times[-1] - self._times[0], 1e-6)

    def reset(self) -> None:
        with self._lock:
            self._times.clear()


@dataclass(frozen=True)
class ShiftSnapshot:
    started: datetime
    ok: int
    ng: int
    failed: int
    dropped: int
    inspected_fps: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None

    @property
    def total(self) -> int:
        return self.ok + self.ng

    @property
    def yield_percent(self) -> float | None:
        return 100.0 * self.ok / self.total if self.total else None


class ShiftCounters:
    """Counts since the start of the shift; the inference worker adds, the window reads snapshots."""

    def __init__(self, latency_window: int = 500) -> None:
        self._lock = threading.Lock()
        self._latencies: deque[float] = deque(maxlen=latency_window)
        self.rate = RateMeter()
        self.new_shift()

    def new_shift(self) -> None:
        with self._lock:
            self.started = datetime.now().astimezone()
            self.ok = self.ng = self.failed = self.dropped = 0
            self._latencies.clear()
        self.rate.reset()

    def add(self, is_ng: bool, latency_ms: float) -> None:
        with self._lock:
            if is_ng:
                self.ng += 1
            else:
                self.ok += 1
            self._latencies.append(float(latency_ms))
        self.rate.tick()

    def add_failed(self) -> None:
        with self._lock:
            self.failed += 1

    def add_dropped(self, n: int = 1) -> None:
        with self._lock:
            self.dropped += n

    def snapshot(self) -> ShiftSnapshot:
        with self._lock:
            lat = np.fromiter(self._latencies, dtype=np.float64, count=len(self._latencies))
            ok, ng, failed, dropped, started = self.ok, self.ng, self.failed, self.dropped, self.started
        p50, p95 = (np.percentile(lat, [50, 95]).tolist() if lat.size else (None, None))
        return ShiftSnapshot(started, ok, ng, failed, dropped, self.rate.rate(), p50, p95)
