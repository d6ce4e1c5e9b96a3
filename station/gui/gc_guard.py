"""Python's cyclic garbage collector runs on the GUI thread between events, never inside a Qt call.

Why: the collector can start inside any allocation -- also one made while Qt holds its signal-slot
mutex (``QObject::disconnect``, e.g. from pyqtgraph's ``ViewBox.addItem``). If that collection then
destroys an unreferenced widget, ``~QObject`` takes the same mutex and the GUI thread deadlocks for good
(seen in the test suite with PySide6 6.11: a stack of ``disconnect -> gc_collect_main -> ~QWidget ->
QBasicMutex::lockInternal``). So automatic collection is switched off and a timer on the GUI thread
collects, generation by generation, when the counts pass the usual thresholds -- the pattern PyQt's
documentation recommends for this problem. Reference counting still frees everything without cycles
at once.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer


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
