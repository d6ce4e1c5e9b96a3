"""Running numbers of a live run: counts, throughput and latency percentiles, in bounded memory --
the one set of definitions the pipeline, the window's shift counters and ``station inspect`` share.

- *inspected*: frames with a verdict (OK or NG); *failed*: frames whose inspection raised (ERROR);
  *dropped*: frames the source delivered that were never inspected (pushed out of the hand-off
  because inspection fell behind, or still queued at a hard stop).
- *out of range*: frames the input watch did not judge because they are unlike the teach images
  (too dark, blurred, no part: :mod:`station.live.input_watch`) -- neither OK nor NG.
- *yield*: OK parts of all parts judged, failed or out of range, ``ok / (ok + ng + failed +
  out_of_range)`` -- a part that could not be inspected, or not judged, is not a good part, and is
  not silently left out either (:func:`yield_percent`). It must be looked at again, like an NG part,
  but it is counted apart so that a dark lamp is not read as bad parts.
- *latency*: acquisition to verdict of inspected frames (the wait in the hand-off included, failed
  frames excluded); *inspection*: the inspector alone.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass

import numpy as np


class LatencyWindow:
    """The last ``size`` values (milliseconds); percentiles over them. Memory stays bounded however
    long the line runs."""

    def __init__(self, size: int = 2000) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, value_ms: float) -> None:
        with self._lock:
            self._values.append(float(value_ms))

    def percentiles(self, *qs: float) -> list[float | None]:
        with self._lock:
            if not self._values:
                return [None for _ in qs]
            data = np.fromiter(self._values, dtype=np.float64, count=len(self._values))
        return [float(v) for v in np.percentile(data, qs)]

    def __len__(self) -> int:
        return len(self._values)


def yield_percent(ok: int, ng: int, failed: int = 0, out_of_range: int = 0) -> float | None:
    """OK parts as a share of all parts judged, failed or out of range (``None`` before the first)."""
    total = ok + ng + failed + out_of_range
    return 100.0 * ok / total if total else None


class Counts:
    """The derived figures of anything with ``ok``, ``ng``, ``failed``, ``dropped`` and ``acquired``
    counts (a run's :class:`PipelineStats`, a shift's snapshot): one formula each."""

    ok: int
    ng: int
    failed: int
    dropped: int
    acquired: int
    out_of_range: int

    @property
    def yield_percent(self) -> float | None:
        return yield_percent(self.ok, self.ng, self.failed, self.out_of_range)

    @property
    def dropped_share(self) -> float:
        """Dropped frames as a share of those acquired (0 before the first)."""
        return self.dropped / self.acquired if self.acquired else 0.0


class RateMeter:
    """Events per second over the last ``window`` seconds."""

    def __init__(self, window: float = 5.0, clock=time.monotonic) -> None:
        self.window = float(window)
        self._clock = clock
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._times.clear()

    def tick(self, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        with self._lock:
            self._times.append(now)
            while self._times and now - self._times[0] > self.window:
                self._times.popleft()

    def rate(self, now: float | None = None) -> float:
        now = self._clock() if now is None else now
        with self._lock:
            while self._times and now - self._times[0] > self.window:
                self._times.popleft()
            if len(self._times) < 2:
                return 0.0
            span = max(now - self._times[0], 1e-6)
            return (len(self._times) - 1) / span if span > 0 else 0.0


@dataclass
class PipelineStats(Counts):
    """A snapshot of a live run (all counts since start)."""

    acquired: int = 0  # frames the source delivered
    inspected: int = 0  # frames with a verdict
    failed: int = 0  # frames whose inspection raised (logged as ERROR)
    out_of_range: int = 0  # frames not judged: unlike the teach images (logged as OUT_OF_RANGE)
    dropped: int = 0  # frames pushed out of the hand-off because inspection fell behind
    queued: int = 0  # frames waiting in the hand-off now
    ok: int = 0
    ng: int = 0
    db_rows: int = 0
    db_errors: int = 0
    archived: int = 0
    undispatched: int = 0  # results the dispatch thread was too far behind to record (stalled disk)
    listener_errors: int = 0
    dispatch_backlog: int = 0  # results waiting for the dispatch thread now
    db_p95_ms: float | None = None  # the results log's write (on the dispatch thread)
    elapsed_s: float = 0.0  # since the first frame
    throughput_fps: float = 0.0  # inspected / elapsed
    recent_fps: float = 0.0  # over the last few seconds
    latency_p50_ms: float | None = None  # acquisition -> verdict
    latency_p95_ms: float | None = None
    inspect_p50_ms: float | None = None  # the inspector alone
    inspect_p95_ms: float | None = None
    source_state: str = "closed"
    reconnects: int = 0
    error: str = ""  # why the run stopped, if it failed

    @property
    def in_flight(self) -> int:
        """Frames acquired but neither finished nor dropped nor queued (0 or 1 between frames)."""
        return self.acquired - self.inspected - self.failed - self.out_of_range - self.dropped - self.queued

    def accounted(self) -> bool:
        return self.in_flight == 0

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f}"

        y = self.yield_percent
        return (f"{self.inspected} inspected ({self.ok} OK, {self.ng} NG), {self.failed} failed; "
                f"{self.out_of_range} not judged (input out of range); "
                f"yield {'-' if y is None else f'{y:.1f} %'} (OK of inspected + failed + out of range); "
                f"{self.dropped} dropped of {self.acquired} acquired in {self.elapsed_s:.1f} s: "
                f"{self.throughput_fps:.1f} fps; latency p50 {ms(self.latency_p50_ms)} ms, "
                f"p95 {ms(self.latency_p95_ms)} ms (inspection p50 {ms(self.inspect_p50_ms)} ms, "
                f"p95 {ms(self.inspect_p95_ms)} ms)")
