"""The image archive: NG parts (and optionally every n-th OK part) kept as PNG within a disk quota.

Layout: ``<root>/<YYYY-MM-DD>/<HHMMSS_mmm>_<frame id>_<NG|OK>.png`` -- names sort in time order, so
the oldest images are the first to go when the quota is reached (that is the retention: whatever
fits in the quota, newest kept). Images are written with :func:`station.core.images.save_image` by
the pipeline's dispatch thread (:mod:`station.live.dispatch`), never by the inspection thread, so a
slow disk never delays a verdict.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from datetime import datetime
from pathlib import Path

import numpy as np

from station.core.images import save_image

log = logging.getLogger(__name__)

MB = 1024 * 1024  # the quota is in MiB, as the settings and `station inspect --archive-quota-mb` say


class ImageArchive:
    """Archives images under ``root`` and keeps the total below ``quota_mb``.

    Parameters
    ----------
    root
        The archive folder (created if needed).
    quota_mb
        The most the archive may hold (MiB); the oldest images are deleted beyond it.
    ok_every
        Also keep every ``ok_every``-th OK part (0: NG parts only).
    """

    def __init__(self, root: str | Path, quota_mb: float = 1024.0, ok_every: int = 0) -> None:
        if quota_mb <= 0:
            raise ValueError("the archive quota must be > 0 MB")
        self.root = Path(root)
        self.quota_bytes = int(quota_mb * MB)
        self.ok_every = max(0, int(ok_every))
        self.written = 0
        self.skipped = 0  # not written: the write failed
        self.deleted = 0
        self._ok_seen = 0
        self._files: deque[tuple[Path, int]] = deque()
        self._usage = 0
        self._lock = threading.Lock()
        self.root.mkdir(parents=True, exist_ok=True)
        self._scan()

    @property
    def usage_bytes(self) -> int:
        with self._lock:
            return self._usage

    def describe(self) -> str:
        """One line for the window: how full the archive is and what happens beyond the quota."""
        return (f"NG archive {self.usage_bytes / MB:.0f} of {self.quota_bytes / MB:.0f} MB"
                f" ({len(self._files)} images; the oldest are deleted beyond the quota"
                f"{f', {self.deleted} so far' if self.deleted else ''})")

    def _scan(self) -> None:
        """Take stock of what earlier runs left, oldest first."""
        found = []
        for p in self.root.glob("*/*.png"):
            try:
                found.append((p, p.stat().st_size))
            except OSError:
                continue
        found.sort(key=lambda item: (item[0].parent.name, item[0].name))
        self._files = deque(found)
        self._usage = sum(size for _, size in found)
        self._enforce_quota()

    def wants(self, verdict: str) -> bool:
        """Whether a part with this verdict is archived (counts OK parts for the sampling)."""
        if verdict == "OK":
            if not self.ok_every:
                return False
            self._ok_seen += 1
            return self._ok_seen % self.ok_every == 0
        return True  # NG and ERROR: keep the evidence

    def path_for(self, frame_id: int, verdict: str, when: float | None = None) -> Path:
        when = time.time() if when is None else when
        dt = datetime.fromtimestamp(when)
        return self.root / dt.strftime("%Y-%m-%d") / f"{dt.strftime('%H%M%S')}_{dt.microsecond // 1000:03d}_{frame_id}_{verdict}.png"

    def store(self, image: np.ndarray, frame_id: int, verdict: str, when: float | None = None) -> Path | None:
        """Write one image now (the caller's thread: the dispatch thread); returns its path, or
        ``None`` if the write failed (counted in ``skipped``; a full disk must not stop the line)."""
        path = self.path_for(frame_id, verdict, when)
        try:
            save_image(path, image)
            size = path.stat().st_size
        except Exception as exc:  # noqa: BLE001
            self.skipped += 1
            log.error("could not archive %s: %s", path, exc)
            return None
        with self._lock:
            self._files.append((path, size))
            self._usage += size
            self.written += 1
            self._enforce_quota()
        return path

    def _enforce_quota(self) -> None:
        while self._usage > self.quota_bytes and self._files:
            old, size = self._files.popleft()
            try:
                old.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not delete %s: %s", old, exc)
            self._usage -= size
            self.deleted += 1
            try:
                old.parent.rmdir()  # only succeeds once the day's folder is empty
            except OSError:
                pass

    def close(self, timeout: float = 10.0) -> None:
        """Nothing to finish: every image is written when stored (kept for the callers' symmetry
        with the results log)."""
