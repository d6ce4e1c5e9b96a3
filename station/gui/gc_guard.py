"""Python's cyclic garbage collector runs on the GUI thread between events, never inside a Qt call.

Why: the collector can start inside any allocation -- also one made while Qt holds its signal-slot
mutex (``QObject::disconnect``, e.g. from pyqtgraph's ``ViewBox.addItem``). If that collection then
destroys an unreferenced widget, ``~QObject`` takes the same mutex and the GUI thread deadlocks for good
(seen in the test suite with PySide6 6.11: a stack of ``disconnect -> gc_collect_main -> ~QWidget ->
QBasicMutex::lockInternal``). So automatic collection is switched off and a timer on the GUI thread
collects, generation by generation, when the counts pass the usual thresholds -- the pattern PyQt's
documentation recommends for this problem. Reference counting still frees everything without cycles
at once.

:func:`release_memory_soon` is for the moments a window part lets go of a lot at once (the teach-in
wizard closed, a review replaced): a full collection, then the C heap's free pages handed back to the
system (glibc's ``malloc_trim``). Without the trim the process kept its peak: numpy's freed buffers of
a few MB stay in malloc's arenas -- the review's metrics pass and the wizard's samples left the window
at 1.5 GB and more after they were gone (docs/benchmarks.md has the figures).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import sys
import time

from PySide6.QtCore import QObject, QTimer

log = logging.getLogger(__name__)
_libc: ctypes.CDLL | None = None


class GarbageCollector(QObject):
    """Owns the collector while it lives; ``stop()`` hands it back to Python."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = 500) -> None:
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.collect_if_due)
        self._timer.start(interval_ms)

    def collect_if_due(self) -> None:
        count0, count1, count2 = gc.get_count()
        if count0 > self.threshold[0]:
            generation = 0
            if count1 > self.threshold[1]:
                generation = 1
                if count2 > self.threshold[2]:
                    generation = 2
            gc.collect(generation)

    def stop(self) -> None:
        self._timer.stop()
        if self._was_enabled:
            gc.enable()


def trim_heap() -> bool:
    """Return the C heap's free pages to the system (Linux with glibc); False where it cannot."""
    global _libc
    if not sys.platform.startswith("linux"):
        return False
    try:
        if _libc is None:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(_libc.malloc_trim(0))
    except (OSError, AttributeError):  # musl and others have no malloc_trim
        return False


def release_memory() -> None:
    """A full collection and a heap trim, now (on the GUI thread: from a timer, never inside a Qt call)."""
    t0 = time.perf_counter()
    found = gc.collect()
    trimmed = trim_heap()
    torch = sys.modules.get("torch")  # only where a deep detector loaded it: the GPU's cached blocks too
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    log.debug("memory released: %d objects collected, heap trimmed: %s, %.0f ms", found, trimmed,
              1000 * (time.perf_counter() - t0))


def release_memory_soon(delay_ms: int = 200) -> None:
    """:func:`release_memory` from the event loop once what the caller is doing has unwound and the
    widgets it dropped with ``deleteLater`` are gone."""
    QTimer.singleShot(delay_ms, release_memory)
