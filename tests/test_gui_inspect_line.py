"""The Inspect screen on a line (issue 13 items 1-3, pytest-qt): a recipe is checked against the camera
before switching, a failing line is explained, marked stale and stopped, counts are honest and
survive a restart, and the verdict tile, image and overlay always show the same frame."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")

import test_live_support as support  # noqa: E402
from helpers_detector import register_test_detector  # noqa: E402

from station.acquisition.synthetic import SyntheticPart  # noqa: E402
from station.app.context import StationContext  # noqa: E402
from station.gui.main_window import MainWindow  # noqa: E402


@pytest.fixture(autouse=True)
def _test_detector():
    register_test_detector()
    support.register()


@pytest.fixture
def small_recipe(tmp_path):
    """A recipe taught on 128x128 parts: it does not fit the demo camera's 256x256 frames."""
    images = SyntheticPart(seed=0, size=128).good_images(16, start=100_000)
    return support.teach_recipe(images[:12], images[12:], tmp_path / "models" / "small", name="small")


@pytest.fixture
def window(qtbot, ctx):
    w = MainWindow(ctx)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.first_verdict_s is not None, timeout=30000)
    yield w
    if w.close_seconds is None:
        w.close()


def test_a_recipe_is_checked_against_the_camera_and_a_failing_line_is_explained(qtbot, ctx, window, small_recipe):
    panel = window.inspect
    demo = panel.recipe_path
    asked: list[list[str]] = []
    panel.ask_mismatch = lambda path, problems: (asked.append(problems), "keep")[1]
    assert panel.choose_recipe(str(small_recipe)) is False  # kept the old recipe
    assert panel.recipe_path == demo and panel.running
    assert "the image is 256x256, which differs from the taught size (128x128)" in asked[0][0]

    ctx.settings.stop_line_after_failures = 8
    panel.ask_mismatch = lambda path, problems: "switch"  # an engineer switches anyway
    assert panel.choose_recipe(str(small_recipe))
    qtbot.waitUntil(lambda: "LINE STOPPED" in panel.line_status.text(), timeout=20000)
    qtbot.waitUntil(lambda: not panel.running, timeout=10000)
    status = panel.line_status.text()
    assert "not the size small v1 was taught on" in status and "Choose the recipe" in status
    assert not panel.running and panel.shown is None  # nothing of the old recipe is left on screen
    assert window.errors.isVisible() and "not the size" in window.errors.last_message
    assert ctx.counters.snapshot().failed >= 8

    # fixed: the demo recipe again; the banner and the line status go once verdicts come
    assert panel.choose_recipe(demo)
    panel.start()
    qtbot.waitUntil(lambda: panel.shown is not None, timeout=20000)
    panel.refresh_stats()
    assert not window.errors.isVisible() and not panel.line_status.isVisible()


def test_failing_frames_mark_the_shown_result_stale(qtbot, ctx, window, small_recipe):
    panel = window.inspect
    qtbot.waitUntil(lambda: panel.shown is not None, timeout=20000)
    ctx.settings.stop_line_after_failures = 0  # never stop: the operator sees the stale mark
    panel.ask_mismatch = lambda path, problems: "switch"
    assert panel.choose_recipe(str(small_recipe))
    qtbot.waitUntil(lambda: panel.verdict.verdict == "STALE", timeout=20000)
    assert "Frames are failing" in panel.line_status.text() and "Fix:" in panel.line_status.text()
    assert panel.running


def test_counts_are_honest_and_survive_a_restart(qtbot, ctx, window, monkeypatch):
    panel = window.inspect
    ctx.settings.dropped_warning_percent = 0.0  # any dropped frame warns
    panel.stop()
    # inspection is made certainly slower than a fps=0 source, whatever the machine's load: frames drop
    from station.live import session as live_session

    inspect_batch = live_session._CheckedInspector.inspect_batch

    def slow_inspect_batch(self, images):
        time.sleep(0.04)
        return inspect_batch(self, images)

    monkeypatch.setattr(live_session._CheckedInspector, "inspect_batch", slow_inspect_batch)
    panel.source.setCurrentText("synthetic://demo?fps=0")  # faster than inspection: frames drop
    panel.start()
    qtbot.waitUntil(lambda: ctx.counters.snapshot().total >= 30 and ctx.counters.snapshot().dropped > 0,
                    timeout=60000)
    qtbot.waitUntil(lambda: "not inspected" in panel.line_status.text(), timeout=10000)  # dropped-frame warning
    panel.stop()
    qtbot.waitUntil(lambda: not panel.running, timeout=10000)  # the last results are logged and counted
    panel.refresh_stats()
    snap = ctx.counters.snapshot()
    labels = panel.labels
    assert labels["total"].text() == str(snap.ok + snap.ng + snap.failed)  # parts: OK + NG + not inspected
    assert labels["failed"].text() == str(snap.failed) and labels["yield"].text() == f"{snap.yield_percent:.1f} %"
    assert "OK of all parts" in labels["ok"].parent().toolTip()
    assert labels["dropped"].text() == f"{snap.dropped} ({snap.dropped_share:.0%})"
    again = StationContext.load(ctx.paths)  # the program restarted
    assert again.counters.snapshot() == snap and snap.total >= 30
    panel.new_shift()
    assert StationContext.load(ctx.paths).counters.snapshot().total == 0


def test_tile_image_and_overlay_are_one_frame_and_stop_clears_the_view(qtbot, window):
    panel = window.inspect
    checked = 0
    for _ in range(40):
        qtbot.wait(25)
        shown = panel.shown
        if shown is None:
            continue
        assert np.array_equal(panel.canvas.image_item.image, shown.frame.image)
        assert np.array_equal(panel.canvas.heat_item.image, shown.result.anomaly_map)
        assert panel.verdict.verdict == shown.verdict
        assert panel.frame_info.text().startswith(f"frame {shown.frame.frame_id}\n")
        checked += 1
    assert checked >= 10
    last = panel.shown
    assert panel.stop()
    assert panel.canvas.image_item.image is None and panel.verdict.verdict is None
    assert "stopped at" in panel.frame_info.text() and f"frame {last.frame.frame_id}" in panel.frame_info.text()
