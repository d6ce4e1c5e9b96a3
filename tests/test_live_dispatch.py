"""Results leave the inspection thread through one dispatch thread: the results log (with its fsync),
the NG archive and the listeners run there, in frame order, and never delay a verdict.

Qt-free: tests/test_live_noqt.py runs this module again with PySide6 made unimportable."""

from __future__ import annotations

import threading
import time

import pytest
import test_live_support as support

from station.acquisition.base import open_source
from station.core.recipe import load_recipe
from station.live.archive import ImageArchive
from station.live.dispatch import Dispatcher
from station.live.pipeline import LivePipeline
from station.live.result import LiveResult
from station.live.results_db import ResultsLog

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def demo_recipe(tmp_path_factory):
    return load_recipe(support.teach_demo_recipe(tmp_path_factory.mktemp("models") / "demo"))


class SlowLog(ResultsLog):
    """A results log on a slow disk: each row takes ``delay`` s (an fsync on a busy SD card)."""

    delay = 0.02

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.threads: set[str] = set()

    def record(self, row):
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        return super().record(row)


def test_the_results_log_is_written_on_the_dispatch_thread_not_the_inspection_thread(demo_recipe, tmp_path):
    db = SlowLog(tmp_path / "r.db")
    archive = ImageArchive(tmp_path / "img")
    pipe = LivePipeline(open_source("synthetic://demo?fps=0&count=20&live=0&defect_rate=0.5&seed=3"),
                        demo_recipe, results=db, archive=archive)
    pipe.start()
    assert pipe.wait(60)  # returns once every queued result is dispatched
    s = pipe.stats()
    assert db.threads == {"dispatch"}  # the fsync of each row is off the inspection thread
    assert s.inspected == 20 and s.db_rows == 20 and db.count() == 20 and s.undispatched == 0
    assert s.archived == s.ng > 0 and len(list((tmp_path / "img").glob("*/*.png"))) == s.ng
    db.close()


def test_listeners_get_every_result_in_order_after_it_is_logged(demo_recipe, tmp_path):
    db = ResultsLog(tmp_path / "r.db")
    seen: list[tuple[int, str, int | None, str | None, str]] = []
    calls: list[str] = []

    def listener(live: LiveResult) -> None:
        seen.append((live.sequence, live.verdict, live.row_id, live.image_path, threading.current_thread().name))

    def broken(live: LiveResult) -> None:
        calls.append("broken")
        raise RuntimeError("the PLC is unplugged")

    pipe = LivePipeline(open_source("synthetic://demo?fps=0&count=12&live=0&defect_rate=0.5&seed=2"),
                        demo_recipe, results=db, archive=ImageArchive(tmp_path / "img"), listeners=[broken])
    pipe.add_listener(listener)
    pipe.start()
    assert pipe.wait(60)
    assert [s[0] for s in seen] == list(range(1, 13)) and {s[4] for s in seen} == {"dispatch"}
    assert all(row is not None for _, _, row, _, _ in seen)  # the row was committed before the call
    assert all((path is not None) == (verdict == "NG") for _, verdict, _, path, _ in seen)
    assert len(calls) == 12 and pipe.stats().listener_errors == 12  # a failing listener stops nothing
    db.close()


def test_failed_frames_are_dispatched_as_errors_without_a_latency(demo_recipe, tmp_path):
    db = ResultsLog(tmp_path / "r.db")
    got: list[LiveResult] = []
    pipe = LivePipeline(open_source("synthetic://demo?fps=0&count=4&size=128"), demo_recipe, results=db,
                        on_result=got.append)
    pipe.start()
    assert pipe.wait(30)
    s = pipe.stats()
    assert [r.verdict for r in got] == ["ERROR"] * 4 and all(r.error for r in got)
    assert s.failed == 4 and s.latency_p50_ms is None  # error frames stay out of the latency figures
    assert s.yield_percent == 0.0  # parts that could not be inspected are not good parts
    rows = db._conn.execute("SELECT verdict, latency_ms, inspect_ms FROM inspections").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("ERROR", None)] * 4 and all(r[2] is not None for r in rows)
    db.close()


def test_a_stalled_dispatcher_counts_what_it_cannot_take(demo_recipe):
    gate = threading.Event()
    d = Dispatcher(capacity=3, listeners=[lambda live: gate.wait(10)])
    frame = open_source("synthetic://demo?fps=0")
    frame.open()
    frame.start()
    f = frame.next_frame(1.0)
    taken = [d.put(LiveResult(i, f, None, "x", 0.0, 0.0)) for i in range(1, 7)]
    # one is with the listener, three wait, two are refused and counted -- never silently lost
    assert taken.count(False) >= 2 and d.undispatched == taken.count(False)
    gate.set()
    assert d.close(10) and d.dispatched == taken.count(True)
    # the images waiting are bounded in bytes too: one 256x256 RGB frame is ~196 KB
    gate.clear()
    small = Dispatcher(capacity=100, max_bytes=3 * f.image.nbytes, listeners=[lambda live: gate.wait(10)])
    taken = [small.put(LiveResult(i, f, None, "x", 0.0, 0.0)) for i in range(1, 8)]
    assert taken.count(True) <= 4 and small.undispatched == taken.count(False)
    gate.set()
    assert small.close(10)
    frame.stop()
    frame.close()


def test_a_pipeline_without_an_inspector_only_acquires():
    frames = []
    pipe = LivePipeline(open_source("synthetic://demo?fps=0&count=7"), on_frame=frames.append)
    pipe.start()
    assert pipe.wait(20)
    s = pipe.stats()
    assert len(frames) == 7 and s.acquired == 7 and s.inspected == 0 and pipe.dispatcher is None
    assert pipe.latest_result() is None and pipe.latest_frame() is frames[-1]
