"""A list of arrays kept in a temporary file instead of memory, read back one at a time.

Why: a review keeps every test image's anomaly map and ground truth so that any row can be shown and
the report written later -- for MVTec bottle 83 maps of 900x900 float32 (270 MB) and their masks
(67 MB), held for as long as the results are on screen. On disk they cost no memory; reading one
back for the detail view takes a millisecond. Values come back bit for bit (no float16 rounding), so
the review's overlays stay identical to ``station eval``'s.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

import numpy as np

log = logging.getLogger(__name__)


class ArraySpool(Sequence):
    """``arrays`` (``None`` entries allowed) written to an unnamed temporary file; ``spool[i]`` reads
    entry ``i`` back as a new array. Thread-safe (the window reads on its thread while a worker
    exports). The file goes with the object (or :meth:`close`)."""

    def __init__(self, arrays: Iterable[np.ndarray | None], directory: str | None = None) -> None:
        self._lock = threading.Lock()
        self._file = tempfile.TemporaryFile(prefix="station-spool-", dir=directory)
        self._index: list[tuple[int, tuple[int, ...], str] | None] = []
        offset = 0
        try:
            for a in arrays:
                if a is None:
                    self._index.append(None)
                    continue
                a = np.ascontiguousarray(a)
                self._file.write(a.data)
                self._index.append((offset, a.shape, a.dtype.str))
                offset += a.nbytes
            self._file.flush()
        except BaseException:
            self._file.close()
            raise
        self.nbytes = offset
        self._closer = weakref.finalize(self, self._file.close)  # closed (and so deleted) with the spool

    def __len__(self) -> int:
        return len(self._index)

    @overload
    def __getitem__(self, i: int) -> np.ndarray | None: ...

    @overload
    def __getitem__(self, i: slice) -> list[np.ndarray | None]: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        entry = self._index[i]
        if entry is None:
            return None
        offset, shape, dtype = entry
        out = np.empty(shape, np.dtype(dtype))
        if not out.nbytes:
            return out
        with self._lock:
            self._file.seek(offset)
            n = self._file.readinto(out.reshape(-1).view(np.uint8))
        if n != out.nbytes:
            raise OSError(f"spooled array {i}: read {n} of {out.nbytes} bytes")
        return out

    def __iter__(self) -> Iterator[np.ndarray | None]:
        return (self[i] for i in range(len(self)))

    def close(self) -> None:
        self._closer()


def spooled(arrays: Sequence[np.ndarray | None]) -> Sequence[np.ndarray | None]:
    """``arrays`` moved to an :class:`ArraySpool`; kept as they are (said why) where the temporary
    folder cannot take them -- a full disk costs memory, never the results."""
    if isinstance(arrays, ArraySpool) or not arrays:
        return arrays
    try:
        return ArraySpool(arrays)
    except OSError as exc:
        log.warning("keeping %d arrays in memory: the temporary folder refused them (%s)", len(arrays), exc)
        return arrays
