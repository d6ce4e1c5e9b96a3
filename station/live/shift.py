"""What the operator sees counted for the shift: parts OK / NG / failed, dropped frames and the yield,
since "New shift" -- kept on disk, so a restart of the program (or of the PC) does not reset them.

The counts come from the live runs' :class:`~station.live.stats.PipelineStats` (one definition of
inspected, failed and dropped, one yield formula: :func:`~station.live.stats.yield_percent`): each
run's session calls :meth:`ShiftCounters.follow` with its latest stats and the counters add what
changed since. Rates and latency are the running session's, not the shift's (see the pipeline).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from station.live.stats import Counts, PipelineStats

log = logging.getLogger(__name__)

SAVE_EVERY_S = 2.0  # a crash loses at most this much counting; the file is written atomically
FIELDS = ("ok", "ng", "failed", "dropped", "out_of_range")
_ADDED = ("out_of_range",)  # counted since a later station: absent (0) in an older shift file


@dataclass(frozen=True)
class ShiftSnapshot(Counts):
    started: datetime
    ok: int
    ng: int
    failed: int  # parts whose inspection raised: neither OK nor NG, and not good
    dropped: int  # frames never inspected because inspection fell behind the camera
    acquired: int = 0
    out_of_range: int = 0  # parts not judged: the frame was unlike the teach images (dark, blurred, empty)

    @property
    def total(self) -> int:
        """Parts judged, failed or not judged: what the yield is a share of."""
        return self.ok + self.ng + self.failed + self.out_of_range


class ShiftCounters:
    """Counts since the start of the shift (thread-safe); ``path``: where they survive a restart."""

    def __init__(self, path: str | Path | None = None, clock=time.monotonic) -> None:
        self.path = Path(path) if path is not None else None
        self._clock = clock
        self._lock = threading.Lock()
        self._file_lock = threading.Lock()  # one save at a time: two at once shared the .tmp and one failed
        self._seen: dict[object, dict[str, int]] = {}  # per run: the stats already counted
        self._saved_at = 0.0
        self._dirty = False
        self.started = datetime.now().astimezone()
        self.ok = self.ng = self.failed = self.dropped = self.acquired = self.out_of_range = 0
        if self.path is not None:
            self._load()

    def _load(self) -> None:
        assert self.path is not None
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            started = datetime.fromisoformat(doc["started"])
            counts = {k: int(doc[k] if k not in _ADDED else doc.get(k, 0)) for k in (*FIELDS, "acquired")}
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:  # a bad file: a fresh shift, said in the log
            log.warning("shift counters in %s not read (%s); a new shift starts", self.path, exc)
            return
        self.started = started
        for k, v in counts.items():
            setattr(self, k, max(0, v))

    def new_shift(self) -> None:
        with self._lock:
            self.started = datetime.now().astimezone()
            self.ok = self.ng = self.failed = self.dropped = self.acquired = self.out_of_range = 0
            # runs keep their baseline: what they counted before stays in the old shift
            self._dirty = True
        self.save()

    def follow(self, run: object, stats: PipelineStats) -> None:
        """Add what run ``run`` counted since its last call (its stats only ever grow)."""
        now = {k: getattr(stats, k) for k in (*FIELDS, "acquired")}
        with self._lock:
            seen = self._seen.setdefault(run, dict.fromkeys(now, 0))
            for k, v in now.items():
                delta = v - seen[k]
                if delta > 0:
                    setattr(self, k, getattr(self, k) + delta)
                    seen[k] = v
                    self._dirty = True
            due = self._dirty and self._clock() - self._saved_at >= SAVE_EVERY_S
        if due:
            self.save()

    def forget(self, run: object) -> None:
        """A run has ended: its last stats were followed; keep no reference to it."""
        with self._lock:
            self._seen.pop(run, None)
        self.save()

    def flush(self) -> None:
        """Save if anything was counted since the last save (the window calls it on its timer)."""
        if self._dirty:
            self.save()

    def save(self) -> None:
        """Write the counts now (atomically); a failure is logged, counting goes on."""
        if self.path is None:
            return
        with self._file_lock:  # the counts taken and written in turn: the newest are the last written
            with self._lock:
                doc = {"started": self.started.isoformat(), **{k: getattr(self, k) for k in (*FIELDS, "acquired")}}
                self._saved_at = self._clock()
                self._dirty = False
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_name(self.path.name + ".tmp")
                tmp.write_text(json.dumps(doc) + "\n", encoding="utf-8")
                os.replace(tmp, self.path)
            except OSError as exc:
                log.warning("shift counters not saved to %s: %s", self.path, exc)

    def snapshot(self) -> ShiftSnapshot:
        with self._lock:
            return ShiftSnapshot(self.started, self.ok, self.ng, self.failed, self.dropped, self.acquired,
                                 self.out_of_range)
