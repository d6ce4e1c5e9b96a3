"""Widgets are assembly: every recipe list follows the app's recipes_changed event, with no fan-out
in the main window, and a deleted widget is never called."""

from __future__ import annotations

import pytest
from helpers_detector import register_test_detector

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

from station.app.demo import ensure_demo_recipe  # noqa: E402
from station.gui.main_window import MainWindow  # noqa: E402
from station.gui.teach_mode import TeachPanel  # noqa: E402


def _paths(combo):
    return {combo.itemData(i) for i in range(combo.count())}


def test_a_saved_recipe_appears_in_every_list(qtbot, ctx):
    register_test_detector()
    w = MainWindow(ctx, auto_start=False, recipe="none-yet")  # no demo teaching at start
    qtbot.addWidget(w)
    folder = str(ensure_demo_recipe(ctx.models_dir, "test-zscore"))  # saved behind the window's back
    assert folder not in _paths(w.inspect.recipe)
    ctx.recipe_saved(folder)
    assert folder in _paths(w.inspect.recipe)
    assert folder in _paths(w.teach.retune_pick)
    assert folder in _paths(w.review.recipe)
    w.quit_station()


def test_a_deleted_panel_is_disconnected(qtbot, ctx):
    n = len(ctx.events.recipes_changed)
    panel = TeachPanel(ctx, lambda *a: None)
    assert len(ctx.events.recipes_changed) == n + 1
    panel.deleteLater()
    qtbot.waitUntil(lambda: len(ctx.events.recipes_changed) == n, timeout=3000)
    ctx.recipe_saved("anything")  # nothing left to call on the deleted panel
