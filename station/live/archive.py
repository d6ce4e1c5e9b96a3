"""The image archive: NG parts (and optionally every n-th OK part) kept as PNG within a disk quota.

Layout: ``<root>/<YYYY-MM-DD>/<HHMMSS_mmm>_<frame id>_<NG|OK>.png`` -- names sort in time order, so
the oldest images are the first to go when the quota is reached. PNG encoding runs on the
archive's own writer thread, so a slow disk never delays a verdict; if the writer falls more than
``queue_size`` images behind, new images are skipped (and counted) rather than piling up in memory.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

_STOP = object()


class ImageArchive:
    """Archives images under ``root`` and keeps the total below ``quota_mb``.

    Parameters
    ----------
    root
        The archive folder (created if needed).
    quota_mb
        The most the archive may hold; the oldest images are deleted beyond it.
    ok_every
        Also keep every ``ok_every``-th OK part (0: NG parts only).
    queue_size
        Images waiting to be written at most.
    """

    def __init__(self, root: str | Path, quota_mb: float = 1024.0, ok_every: int = 0, queue_size: int = 16) -> None:
        if quota_mb <= 0:
            raise ValueError("the archive quota must be > 0 MB")
        self.root = Path(root)
        self.quota_bytes = int(quota_mb * 1024 * 1024)
        self.ok_every = max(0, int(ok_every))
        self.written = 0
        self.skipped = 0  # not written: the writer was behind, or the write failed
        self.deleted = 0
        self._ok_seen = 0
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._files: deque[tuple[Path, int]] = deque()
        self._usage = 0
        self._lock = threading.Lock()
        self.root.mkdir(parents=True, exist_ok=True)
        self._scan()
        self._thread = threading.Thread(target=self._run, name="image-archive", daemon=True)
        self._thread.start()

    @property
    def usage_bytes(self) -> int:
        with self._lock:
            return self._usage

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

    def submit(self, image: np.ndarray, frame_id: int, verdict: str, when: float | None = None) -> Path | None:
        """Queue an image for writing; returns the path it will have, or ``None`` if skipped."""
        when = time.time() if when is None else when
        dt = datetime.fromtimestamp(when)
        path = self.root / dt.strftime("%Y-%m-%d") / f"{dt.strftime('%H%M%S')}_{dt.microsecond // 1000:03d}_{frame_id}_{verdict}.png"
        try:
            self._queue.put_nowait((path, image))
        except queue.Full:
            self.skipped += 1
            return None
        return path

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                path, image = item
                try:
                    self._write(path, image)
                except Exception as exc:  # a full disk must not stop the line
                    self.skipped += 1
                    log.error("could not archive %s: %s", path, exc)
            finally:
                self._queue.task_done()

    def _write(self, path: Path, image: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise OSError("PNG encoding failed")
        tmp = path.with_name(path.name + ".tmp")
        buf.tofile(tmp)
        os.replace(tmp, path)
        with self._lock:
            self._files.append((path, int(buf.size)))
            self._usage += int(buf.size)
            self.written += 1
            self._enforce_quota()

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

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until queued images are written; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (up to ``timeout``), then stop the writer."""
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            log.warning("image archive: writer stuck; %d images not written", self._queue.qsize())
        self._thread.join(timeout)
