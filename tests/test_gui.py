"""The station window, driven with pytest-qt on the offscreen platform: start-up on the demo part,
inspection start/stop, engineer mode, the live session underneath, and closing cleanly."""

from __future__ import annotations

import json
import sqlite3
import time

import numpy as np
import pytest
from helpers_detector import register_test_detector

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

from PySide6.QtCore import Qt  # noqa: E402

from station.app.context import StationContext  # noqa: E402
from station.app.demo import ensure_demo_recipe  # noqa: E402
from station.app.paths import AppPaths  # noqa: E402
from station.gui.main_window import MainWindow  # noqa: E402
from station.live.session import LiveSession, StopRule  # noqa: E402

FAST_SOURCE = "synthetic://demo?fps=30&defect_rate=0.3&size=128"


@pytest.fixture(autouse=True)
def _test_detector():
    register_test_detector()


@pytest.fixture
def window_factory(qtbot):
    made: list[MainWindow] = []

    def make(ctx: StationContext, **kwargs) -> MainWindow:
        w = MainWindow(ctx, **kwargs)
        qtbot.addWidget(w)
        w.show()
        made.append(w)
        return w

    yield make
    for w in made:
        if w.close_seconds is None:
            w.close()


def wait_first_verdict(qtbot, window: MainWindow, timeout: int = 30000) -> None:
    qtbot.waitUntil(lambda: window.first_verdict_s is not None, timeout=timeout)


def test_starts_on_the_demo_part_and_inspects(qtbot, ctx, window_factory):
    w = window_factory(ctx)
    wait_first_verdict(qtbot, w)
    assert w.inspect.running and w.inspect.verdict.verdict in ("OK", "NG")
    assert ctx.settings.recipe_path is None  # the demo stays the default, not a pinned path
    assert w.inspect.recipe_text() == "demo v1"
    qtbot.waitUntil(lambda: ctx.counters.snapshot().total >= 20, timeout=20000)
    w.refresh_status()
    assert w.status_camera.text() == "camera: acquiring"
    assert w.status_device.text() == "device: CPU"
    assert w.status_recipe.text() == "recipe: demo v1"
    assert w.inspect.canvas.image_shape[:2] == (256, 256)
    assert w.inspect.labels["yield"].text().endswith("%")
    # stop and start again: counts go on for the shift
    total = ctx.counters.snapshot().total
    assert w.inspect.stop() and not w.inspect.running
    assert w.inspect.start_button.isEnabled() and not w.inspect.stop_button.isEnabled()
    qtbot.mouseClick(w.inspect.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ctx.counters.snapshot().total > total + 5, timeout=20000)
    assert not w.errors.isVisible(), w.errors.messages


def test_ng_strip_and_full_size_view(qtbot, ctx, window_factory):
    ctx.settings.source_uri = "synthetic://demo?fps=30&defect_rate=1.0"
    ctx.settings.recent_sources = [ctx.settings.source_uri]
    w = window_factory(ctx)
    qtbot.waitUntil(lambda: w.inspect.ng_strip.count() >= 3, timeout=30000)
    item = w.inspect.ng_strip.item(0)
    dialog = w.inspect.open_ng(item.data(0x0100))
    assert dialog is not None
    qtbot.addWidget(dialog)
    assert dialog.canvas.image_shape[:2] == (256, 256)
    assert w.inspect.stop()
    w.inspect.new_shift()
    assert w.inspect.ng_strip.count() == 0 and ctx.counters.snapshot().total == 0
    w.inspect.refresh_stats()  # the parts of the old shift do not come back
    assert w.inspect.ng_strip.count() == 0


def test_operator_cannot_change_source_or_recipe_until_unlocked(qtbot, ctx, window_factory):
    w = window_factory(ctx, auto_start=False)
    qtbot.waitUntil(lambda: w.inspect.recipe_path is not None, timeout=30000)
    assert not w.inspect.source.isEnabled() and not w.inspect.recipe.isEnabled()
    assert w.teach_stack.currentIndex() == 0 and w.review_stack.currentIndex() == 0  # locked pages
    assert w.gate.unlock_with("first-password")  # first use sets it
    assert w.inspect.source.isEnabled() and w.teach_stack.currentIndex() == 1
    w.gate.lock()
    assert not w.gate.unlock_with("wrong-password") and not ctx.engineer.unlocked
    assert w.gate.unlock_with("first-password")
    # an engineer switches the source: audited, remembered
    w.inspect.source.setCurrentText(FAST_SOURCE)
    w.inspect._source_chosen(FAST_SOURCE)
    assert ctx.settings.source_uri == FAST_SOURCE
    actions = [e.action for e in ctx.audit.entries()[0]]
    assert actions[:1] == ["recipe.created"]
    assert ["engineer.password_set", "engineer.unlock", "engineer.lock", "engineer.unlock_failed",
            "engineer.unlock", "source.selected"] == actions[1:]
    saved = json.loads(ctx.paths.settings.read_text())
    assert saved["source_uri"] == FAST_SOURCE
    assert "first-password" not in ctx.paths.credentials.read_text()


def test_engineer_changes_the_password_from_the_window(qtbot, ctx, window_factory):
    from station.app.engineer import CredentialsError

    w = window_factory(ctx, auto_start=False)
    assert not w.password_button.isVisibleTo(w)  # operators do not see it
    assert w.gate.unlock_with("first-password")
    assert w.password_button.isVisibleTo(w)
    with pytest.raises(CredentialsError, match="current password is wrong"):
        w.gate.change_password("not-the-password", "second-password")
    w.gate.change_password("first-password", "second-password")
    w.gate.lock()
    assert not w.password_button.isVisibleTo(w)
    assert not w.gate.unlock_with("first-password") and w.gate.unlock_with("second-password")
    entries = [e for e in ctx.audit.entries()[0] if e.action.startswith("engineer.password_change")]
    assert [e.action for e in entries] == ["engineer.password_change_failed", "engineer.password_changed"]
    assert "password" not in json.dumps([e.note for e in entries]).replace("current password is wrong", "")
    assert "second-password" not in ctx.paths.credentials.read_text() + ctx.paths.audit_log.read_text()


def test_engineer_switches_the_recipe_while_inspecting(qtbot, ctx, window_factory):
    from station.app.recipes import retune_recipe
    from station.core.recipe import load_recipe

    w = window_factory(ctx)
    wait_first_verdict(qtbot, w)
    demo = load_recipe(ctx.models_dir / "demo")
    v2 = retune_recipe(demo, 200.0)
    w.gate.unlock_with("engineer-pw")
    w.inspect.fill_recipes()
    assert w.inspect.recipe.findData(str(v2.path)) >= 0
    w.inspect.choose_recipe(str(v2.path))
    qtbot.waitUntil(lambda: w.inspect.recipe_text() == "demo v2" and w.inspect.running, timeout=20000)
    qtbot.waitUntil(lambda: w.inspect.session.latest() is not None, timeout=20000)
    assert w.inspect.session.latest().result.min_defect_area_px == 200.0
    entry = [e for e in ctx.audit.entries()[0] if e.action == "recipe.selected"][-1]
    assert entry.old.endswith("v0001") and entry.new == str(v2.path) and entry.role == "engineer"
    assert ctx.settings.recipe_path == str(v2.path)


def test_bad_settings_and_missing_recipe_are_shown_not_fatal(qtbot, tmp_path, window_factory):
    home = tmp_path / "home"
    home.mkdir()
    (home / "settings.json").write_text("{ this is not json")
    c = StationContext.load(AppPaths(home))
    c.settings.recipe_path = str(tmp_path / "gone")
    w = window_factory(c)
    qtbot.waitUntil(lambda: len(w.errors.messages) >= 2, timeout=5000)
    text = " ".join(m for _, _, m, _, _ in w.errors.messages)
    assert "corrupt" in text and "not there any more" in text
    assert w.errors.isVisible() and not w.inspect.running


def test_unknown_source_is_reported_and_the_window_lives(qtbot, ctx, window_factory):
    ctx.settings.source_uri = "nosuch://camera"
    w = window_factory(ctx)
    qtbot.waitUntil(lambda: any("unknown source type" in m for _, _, m, _, _ in w.errors.messages), timeout=30000)
    qtbot.waitUntil(lambda: not w.inspect.running, timeout=5000)
    assert w.inspect.start_button.isEnabled()


def test_close_mid_inspection_is_fast_and_leaves_a_sound_database(qtbot, ctx, window_factory):
    w = window_factory(ctx)
    wait_first_verdict(qtbot, w)
    qtbot.waitUntil(lambda: ctx.counters.snapshot().total >= 10, timeout=20000)
    t0 = time.monotonic()
    w.close()
    assert time.monotonic() - t0 < 10.0 and w.close_seconds < 10.0  # a hang, not the speed (0.02 s idle): loaded CI machines
    assert not w.inspect.running
    db = ctx.paths.results_db
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT COUNT(*) FROM inspections").fetchone()[0]
    assert rows >= 10
    entries, bad = ctx.audit.entries()
    assert bad == 0 and entries


# --- the live session underneath, without a window ------------------------------------------------
def test_live_session_generation_drops_stale_results(tmp_path):
    folder = ensure_demo_recipe(tmp_path, "test-zscore")
    s = LiveSession("synthetic://demo?fps=60", folder)
    s.start()
    try:
        assert s.first_result.wait(30)
        first = s.latest()
        assert first.generation == 0 and first.result.threshold > 0
        gen = s.set_threshold(first.result.threshold * 4, 10.0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            latest = s.latest()
            if latest.generation == gen:
                break
            time.sleep(0.01)
        assert latest.generation == gen
        assert latest.result.threshold == pytest.approx(first.result.threshold * 4)
        assert latest.result.min_defect_area_px == 10.0
    finally:
        assert s.stop(2.0)
    assert s.drain_errors() == []


def test_live_session_reports_a_broken_recipe(tmp_path):
    folder = ensure_demo_recipe(tmp_path, "test-zscore")
    (folder / "tensors.safetensors").write_bytes(b"truncated")
    s = LiveSession("synthetic://demo", folder)
    s.start()
    deadline = time.monotonic() + 10
    errors = []
    while not errors and time.monotonic() < deadline:
        errors = s.drain_errors()
        time.sleep(0.05)
    assert s.stop(2.0)
    assert errors and errors[0].where == "recipe" and "checksum" in errors[0].message


def test_live_session_counts_failed_frames_and_goes_on(tmp_path):
    folder = ensure_demo_recipe(tmp_path, "test-zscore")
    # the recipe was taught at 256x256; switched knowingly, with the stop-the-line rule off
    s = LiveSession("synthetic://demo?fps=0&size=128", folder, check_first_frame=False, stop_rule=StopRule(failures=0))
    s.start()
    deadline = time.monotonic() + 10
    while s.counters.snapshot().failed < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert s.running and s.counters.snapshot().failed >= 5
    errors = s.drain_errors()
    assert s.stop(2.0)
    assert errors and errors[0].where == "inspection"


def test_heatmap_lut_is_transparent_below_the_threshold():
    from station.gui.image_view import HEAT_LUT, HEAT_SPAN

    x = np.linspace(0, HEAT_SPAN, len(HEAT_LUT))
    assert (HEAT_LUT[x <= 1.0, 3] == 0).all()  # good parts look calm: nothing at or below the threshold
    assert (HEAT_LUT[x > 1.01, 3] >= 120).all() and HEAT_LUT[-1, 3] >= 200
    assert np.all(np.diff(HEAT_LUT[:, 3].astype(int)) >= 0)


def test_bindings_reference_guard(qapp):
    """With the guard on, thousands of void Qt calls and emissions cannot exhaust None/True."""
    import sys

    from PySide6.QtCore import QObject, QTimer, Signal

    class Emitter(QObject):
        sig = Signal(int)

    e = Emitter()
    e.sig.connect(lambda _v: None)
    t = QTimer()
    for i in range(20000):  # without the guard, shiboken6 6.12 on Python 3.11 aborts the interpreter here
        t.setInterval(5)
        e.sig.emit(i)
    assert sys.getrefcount(None) > 1000 and sys.getrefcount(True) > 1000


def test_default_start_with_the_variation_model(qtbot, tmp_path, window_factory):
    """What `station` does on a fresh machine: teach the demo part with the variation model, inspect."""
    c = StationContext.load(AppPaths(tmp_path / "fresh"))
    assert c.settings.demo_detector == "variation"
    w = window_factory(c)
    wait_first_verdict(qtbot, w, timeout=120000)
    qtbot.waitUntil(lambda: c.counters.snapshot().total >= 30, timeout=60000)
    snap = c.counters.snapshot()
    assert snap.failed == 0 and snap.ng > 0 and snap.ok > 0
    assert w.inspect.recipe_text() == "demo v1" and not w.errors.isVisible(), w.errors.messages
    t0 = time.monotonic()
    w.close()
    assert time.monotonic() - t0 < 10.0  # a hang, not the speed: loaded CI machines
