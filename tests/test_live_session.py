"""The window's live session without a window (issue 13 items 1-3, issue 14 item 2): the recipe is
checked against the source, failing lines are explained and stopped, counts are honest and survive a
restart, the threshold changes one way, and the teach-in capture is a pipeline without an inspector.

Qt-free: tests/test_live_noqt.py runs this module again with PySide6 made unimportable."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import test_live_support as support

from station.core.recipe import load_recipe
from station.live.capture import FrameGrabber
from station.live.checks import RecipeNeeds, check_frame, explain_failure, recipe_needs
from station.live.session import LiveSession, StopRule
from station.live.shift import ShiftCounters
from station.live.stats import PipelineStats, yield_percent

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return support.teach_demo_recipe(tmp_path_factory.mktemp("models") / "demo")  # taught at 256x256


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


# --- the recipe against the source ------------------------------------------------------------------
def test_the_check_names_size_region_and_colour_in_plain_words(demo):
    needs = recipe_needs(demo)
    assert needs.image_shape == (256, 256) and needs.roi is None and needs.label == "demo v1"
    assert check_frame(needs, np.zeros((256, 256, 3), np.uint8)) == []
    [size] = check_frame(needs, np.zeros((900, 900, 3), np.uint8))
    assert "the image is 900x900, which differs from the taught size (256x256)" in size
    roi = RecipeNeeds("bottle v2", "rgb", (100, 100, 400, 400), (400, 400), "/data/bottle")
    assert "lies outside the 256x256 images" in check_frame(roi, np.zeros((256, 256, 3), np.uint8))[0]
    assert check_frame(roi, np.zeros((600, 600, 3), np.uint8)) == []
    assert "taught on colour images" in check_frame(roi, np.zeros((600, 600), np.uint8))[0]
    cause, fix = explain_failure("ValueError: images are 256x256 with 3 channel(s) but the model was taught on "
                                 "900x900", "synthetic://demo", "bottle v2")
    assert "not the size bottle v2 was taught on" in cause and "Choose the recipe" in fix


def test_a_recipe_that_does_not_fit_the_source_stops_before_failing_every_frame(demo):
    counters = ShiftCounters()
    s = LiveSession("synthetic://demo?fps=0&size=128", demo, counters=counters)
    s.start()
    assert _wait(lambda: not s.running)
    errors = s.drain_errors()
    assert [e.where for e in errors] == ["recipe"]
    assert "the image is 128x128, which differs from the taught size (256x256)" in errors[0].message
    snap = counters.snapshot()
    assert snap.failed == 0 and snap.ok + snap.ng == 0  # no error storm counted into the shift


def test_a_failing_line_is_explained_marked_stale_and_stopped_by_the_rule(demo):
    s = LiveSession("synthetic://demo?fps=0&size=128", demo, stop_rule=StopRule(failures=5),
                    check_first_frame=False)  # an engineer switched anyway
    s.start()
    assert _wait(lambda: not s.running)
    h = s.health()
    assert h.stale and h.failing >= 5 and "stopped after 5 frames in a row" in h.line_stopped
    assert "not the size demo v1 was taught on" in h.cause and "Choose the recipe" in h.fix
    messages = [e.message for e in s.drain_errors() if e.where == "inspection"]
    assert len(messages) == 1 and "not the size" in messages[0]  # one explanation, not one per frame
    stats = s.stats()
    assert stats.failed >= 5 and stats.latency_p50_ms is None and stats.yield_percent == 0.0


# --- honest counts ----------------------------------------------------------------------------------
def test_yield_counts_failed_parts_and_says_so():
    assert yield_percent(8, 1, 1) == pytest.approx(80.0) and yield_percent(0, 0, 0) is None
    assert PipelineStats(ok=8, ng=1, failed=1).yield_percent == pytest.approx(80.0)
    assert "(OK of inspected + failed + out of range)" in PipelineStats(ok=1).summary()
    # a part the input watch did not judge is not a good part either, and is counted apart
    assert PipelineStats(ok=8, ng=1, out_of_range=1).yield_percent == pytest.approx(80.0)


def test_shift_counters_follow_runs_and_survive_a_restart(tmp_path):
    path = tmp_path / "shift.json"
    c = ShiftCounters(path)
    run_a, run_b = object(), object()
    c.follow(run_a, PipelineStats(acquired=12, ok=8, ng=2, failed=1, dropped=1))
    c.follow(run_a, PipelineStats(acquired=14, ok=9, ng=3, failed=1, dropped=1))  # grows: only the change counts
    c.follow(run_b, PipelineStats(acquired=3, ok=3))
    c.forget(run_a)
    snap = c.snapshot()
    assert (snap.ok, snap.ng, snap.failed, snap.dropped, snap.total) == (12, 3, 1, 1, 16)
    assert snap.yield_percent == pytest.approx(75.0)
    again = ShiftCounters(path)  # the program restarted
    assert again.snapshot() == snap
    again.new_shift()
    assert ShiftCounters(path).snapshot().total == 0
    path.write_text("{broken")
    assert ShiftCounters(path).snapshot().total == 0  # a bad file starts a new shift, never a crash


def test_counters_of_a_session_come_from_its_pipeline(demo):
    counters = ShiftCounters()
    s = LiveSession("synthetic://demo?fps=0&count=25&live=0&defect_rate=0.4", demo, counters=counters)
    s.start()
    assert _wait(lambda: not s.running)
    s.stop()
    snap, stats = counters.snapshot(), s.stats()
    assert (snap.ok, snap.ng, snap.failed, snap.dropped) == (stats.ok, stats.ng, stats.failed, stats.dropped)
    assert snap.total == 25 and len(s.ng_records()) == min(12, stats.ng) and stats.ng > 0
    record = s.ng_records()[0]
    assert record.thumb.shape[:2] == (160, 160) and record.result.is_ng and record.label


# --- one way to change the threshold; the capture --------------------------------------------------------
def test_threshold_changes_carry_a_generation(demo):
    s = LiveSession("synthetic://demo?fps=40&defect_rate=0", demo)
    s.start()
    try:
        assert _wait(lambda: s.latest() is not None)
        generation = s.set_threshold(1e9, 1.0)
        assert generation == 1
        assert _wait(lambda: s.latest().generation == generation)
        assert s.latest().result.threshold == 1e9 and s.latest().verdict == "OK"
    finally:
        s.stop()
    assert load_recipe(demo).threshold != 1e9  # the recipe itself is not changed


def test_the_capture_is_a_pipeline_without_an_inspector():
    g = FrameGrabber("synthetic://demo?fps=0&count=40", max_rate=0)
    g.start()
    assert _wait(lambda: not g.running)
    frames = g.take()
    assert len(frames) == 40 and g.finished and g.drain_errors() == []
    bad = FrameGrabber("nosuch://camera")
    bad.start()
    assert [e.where for e in bad.drain_errors()] == ["camera"] and not bad.running
    assert threading.active_count() < 50
