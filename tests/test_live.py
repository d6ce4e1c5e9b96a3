"""The live pipeline: two threads, bounded hand-off, accounting, results log, errors, stop."""

from __future__ import annotations

import sqlite3
import threading
import time

import numpy as np
import pytest
import test_live_support as support

from station.acquisition.base import SourceError, SourceState, open_source
from station.acquisition.folder import FolderSource
from station.acquisition.synthetic import export_mvtec
from station.core.inspection import Inspector
from station.core.recipe import RecipeError, load_recipe
from station.detectors.runtime import detector_from_recipe, load_inspector
from station.live.handoff import Closed, Handoff
from station.live.pipeline import LivePipeline
from station.live.results_db import ResultsLog

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def demo_recipe(tmp_path_factory):
    folder = support.teach_demo_recipe(tmp_path_factory.mktemp("models") / "demo")
    return load_recipe(folder)


class SlowInspector(Inspector):
    """Takes at least ``delay`` seconds per image, like a heavy model on a small machine."""

    delay = 0.03

    def inspect(self, image):
        time.sleep(self.delay)
        return super().inspect(image)


def slow(recipe) -> SlowInspector:
    return SlowInspector(recipe, detector_from_recipe(recipe))


# --- the hand-off ---------------------------------------------------------------------------------------
def test_handoff_drops_the_oldest_when_live():
    h = Handoff(3, drop_oldest=True)
    for i in range(5):
        assert h.put(i)
    assert h.dropped == 2 and [h.get(0), h.get(0), h.get(0)] == [2, 3, 4]
    assert h.get(timeout=0.01) is None
    h.close()
    with pytest.raises(Closed):
        h.get(0)
    assert not h.put(9)


def test_handoff_blocks_a_replay_until_there_is_room():
    h = Handoff(2, drop_oldest=False)
    assert h.put(1) and h.put(2)
    t0 = time.monotonic()
    assert not h.put(3, timeout=0.1)  # full: the producer waits, nothing is dropped
    assert time.monotonic() - t0 >= 0.09 and h.dropped == 0
    threading.Timer(0.1, h.get).start()
    assert h.put(3, timeout=2.0)
    assert [h.get(0), h.get(0)] == [2, 3]


# --- the pipeline ------------------------------------------------------------------------------------------
def test_replay_of_the_demo_part_inspects_every_frame(demo_recipe, tmp_path):
    source = open_source("synthetic://demo?fps=0&count=60&live=0&defect_rate=0.3&seed=5")
    db = ResultsLog(tmp_path / "r.db")
    seen = []
    pipe = LivePipeline(source, demo_recipe, results=db, on_result=seen.append)
    pipe.start()
    assert pipe.wait(60)
    db.close()
    s = pipe.stats()
    assert s.acquired == 60 and s.inspected == 60 and s.dropped == 0 and s.failed == 0 and s.accounted()
    assert s.ok + s.ng == 60 and s.db_rows == 60 and s.latency_p50_ms is not None
    assert [r.sequence for r in seen] == list(range(1, 61))
    assert pipe.latest_result().sequence == 60 and pipe.latest_frame() is not None
    assert source.state is SourceState.CLOSED
    rows = sqlite3.connect(tmp_path / "r.db").execute(
        "SELECT frame_id, verdict, label, recipe, recipe_version, regions FROM inspections ORDER BY id").fetchall()
    assert [r[0] for r in rows] == list(range(60))
    assert {r[3] for r in rows} == {"demo"} and {r[4] for r in rows} == {1}
    # The demo part is inspectable: defective parts are found, most good ones pass.
    defective = [r for r in rows if r[2] != "good"]
    good = [r for r in rows if r[2] == "good"]
    assert defective and good
    assert sum(r[1] == "NG" for r in defective) / len(defective) >= 0.8
    assert sum(r[1] == "OK" for r in good) / len(good) >= 0.5
    assert all(r[5] != "[]" for r in rows if r[1] == "NG")


def test_a_live_source_drops_the_oldest_and_accounts_for_every_frame(demo_recipe):
    source = open_source("synthetic://demo?fps=100&count=40")
    pipe = LivePipeline(source, inspector_factory=lambda: slow(demo_recipe), queue_size=2)
    pipe.start()
    assert pipe.wait(60)
    s = pipe.stats()
    assert s.acquired == 40 and s.dropped > 0
    assert s.inspected + s.failed + s.dropped == s.acquired and s.in_flight == 0
    assert pipe.latest_result().frame.frame_id == 39  # the newest part got a verdict


def test_a_replay_loses_nothing_even_when_inspection_is_slow(demo_recipe, tmp_path):
    folder = export_mvtec(tmp_path / "washer", n_train=0, n_test_good=6, n_per_defect=1)
    source = FolderSource(folder)
    pipe = LivePipeline(source, inspector_factory=lambda: slow(demo_recipe), queue_size=1)
    pipe.start()
    assert pipe.wait(60)
    s = pipe.stats()
    assert s.acquired == 10 and s.inspected == 10 and s.dropped == 0


def test_max_frames_and_stop(demo_recipe):
    pipe = LivePipeline(open_source("synthetic://demo?fps=0"), demo_recipe, max_frames=15)
    pipe.start()
    assert pipe.wait(60)
    assert pipe.stats().acquired == 15
    endless = LivePipeline(open_source("synthetic://demo?fps=50"), demo_recipe)
    endless.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    s = endless.stop(timeout=10)
    assert time.monotonic() - t0 < 5 and not endless.running
    assert s.acquired > 5 and s.accounted()


def test_a_frame_that_cannot_be_inspected_is_logged_and_the_run_goes_on(demo_recipe, tmp_path):
    # Parts of another size: the recipe refuses them; every one is recorded as ERROR.
    source = open_source("synthetic://demo?fps=0&count=5&size=128")
    db = ResultsLog(tmp_path / "r.db")
    pipe = LivePipeline(source, demo_recipe, results=db)
    pipe.start()
    assert pipe.wait(30)
    db.close()
    s = pipe.stats()
    assert s.failed == 5 and s.inspected == 0 and s.accounted() and pipe.error is None
    rows = sqlite3.connect(tmp_path / "r.db").execute("SELECT verdict, error FROM inspections").fetchall()
    assert len(rows) == 5 and all(v == "ERROR" and "differs from the taught size" in e for v, e in rows)
    assert pipe.latest_result().verdict == "ERROR"


def test_failures_to_start_are_raised_in_the_caller(demo_recipe, tmp_path):
    def broken():
        raise RecipeError("models/x/v0001/recipe.json: corrupt or truncated JSON")

    pipe = LivePipeline(open_source("synthetic://demo"), inspector_factory=broken)
    with pytest.raises(RecipeError, match="corrupt"):
        pipe.start()
    assert not pipe.running
    missing = LivePipeline(FolderSource(tmp_path / "nowhere"), demo_recipe)
    with pytest.raises(SourceError, match="not found"):
        missing.start()
    with pytest.raises(ValueError):
        LivePipeline(open_source("synthetic://demo"), demo_recipe, inspector_factory=broken)


def test_the_inspector_lives_on_one_thread(demo_recipe):
    threads = set()

    class Recording(Inspector):
        def __init__(self, recipe):
            threads.add(threading.get_ident())
            super().__init__(recipe, detector_from_recipe(recipe))

        def inspect(self, image):
            threads.add(threading.get_ident())
            return super().inspect(image)

    pipe = LivePipeline(open_source("synthetic://demo?fps=0&count=10"), inspector_factory=lambda: Recording(demo_recipe))
    pipe.start()
    pipe.wait(30)
    assert len(threads) == 1 and threading.get_ident() not in threads


def test_state_changes_reach_the_viewer(demo_recipe):
    class Flaky:
        """A camera that goes away after 5 frames and comes back after 3 silent polls."""

        live = True
        uri = "test://flaky"

        def __init__(self):
            self._state = SourceState.CLOSED
            self.listeners = []
            self.calls = 0
            self.reconnects = 0

        state = property(lambda self: self._state)

        def add_state_listener(self, fn):
            self.listeners.append(fn)

        def _set(self, st, msg=""):
            self._state = st
            for fn in self.listeners:
                fn(st, msg)

        def open(self):
            self._set(SourceState.CONNECTED)

        def start(self):
            self._set(SourceState.ACQUIRING)

        def next_frame(self, timeout=1.0):
            self.calls += 1
            if self.calls == 6:
                self._set(SourceState.LOST, "cable")
            if 6 <= self.calls < 9:
                return None
            if self.calls == 9:
                self.reconnects += 1
                self._set(SourceState.ACQUIRING, "reconnected")
            if self.calls > 14:
                raise StopIteration
            from station.acquisition.base import Frame
            from station.acquisition.synthetic import SyntheticPart
            img = SyntheticPart(0).render(self.calls).image
            return Frame(img, self.calls, time.time(), "RGB8", self.uri)

        def stop(self):
            self._set(SourceState.CONNECTED)

        def close(self):
            self._set(SourceState.CLOSED)

    changes = []
    src = Flaky()
    pipe = LivePipeline(src, demo_recipe, on_state=lambda st, msg: changes.append(st.value))
    pipe.start()
    assert pipe.wait(30)
    assert changes == ["connected", "acquiring", "lost", "acquiring", "connected", "closed"]
    s = pipe.stats()
    assert s.acquired == 11 and s.inspected == 11 and s.reconnects == 1


def test_memory_stays_bounded(demo_recipe):
    """Latency windows and the result slot do not grow with the number of frames."""
    pipe = LivePipeline(open_source("synthetic://demo?fps=0&count=30&jitter=0"),
                        inspector_factory=lambda: load_inspector(demo_recipe))
    pipe.latency = type(pipe.latency)(size=10)
    pipe.start()
    pipe.wait(30)
    assert len(pipe.latency) == 10
    assert np.isfinite(pipe.stats().throughput_fps)


def test_threshold_changes_reach_the_inspection_thread(demo_recipe):
    results = []
    pipe = LivePipeline(open_source("synthetic://demo?fps=40&defect_rate=0"), demo_recipe, on_result=results.append)
    pipe.start()
    try:
        assert _wait(lambda: len(results) >= 3)
        pipe.set_threshold(1e9, 1.0)  # nothing can be above it
        n = len(results)
        assert _wait(lambda: len(results) >= n + 4)
    finally:
        pipe.stop()
    assert results[0].result.threshold == demo_recipe.threshold
    assert results[-1].result.threshold == 1e9 and results[-1].verdict == "OK"


def _wait(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()
