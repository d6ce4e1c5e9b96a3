"""The window's garbage collector: automatic collection off, cycles collected from the GUI thread."""

from __future__ import annotations

import gc
import weakref

import pytest

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

from station.gui.gc_guard import GarbageCollector  # noqa: E402


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_cycles_are_collected_by_the_timer_not_by_allocations(qtbot):
    gc.enable()
    collector = GarbageCollector(interval_ms=10)
    try:
        assert not gc.isenabled()
        node = _Node()
        gone = weakref.ref(node)
        del node
        keep = [[] for _ in range(gc.get_threshold()[0] + 10)]  # enough to have triggered generation 0
        assert gone() is not None  # nothing collected inside the allocations
        qtbot.waitUntil(lambda: gone() is None, timeout=5000)
        del keep
    finally:
        collector.stop()
    assert gc.isenabled()
    gc.disable()  # as the suite's per-test fixture left it
