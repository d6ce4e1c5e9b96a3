"""The window's golden-part hook (issue 16 item 3, pytest-qt): a recipe whose threshold was edited far
too high fails its golden parts when it is switched on; inspection stops with the reason in the
banner and the run is in the audit log. New shift judges the golden parts again."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

import test_live_support as support  # noqa: E402
from helpers_detector import register_test_detector  # noqa: E402

from station.acquisition.synthetic import SyntheticPart  # noqa: E402
from station.core.golden import add_golden_part  # noqa: E402
from station.core.recipe import load_recipe, save_recipe  # noqa: E402
from station.gui.main_window import MainWindow  # noqa: E402

PART = SyntheticPart(seed=0)


@pytest.fixture(autouse=True)
def _test_detector():
    register_test_detector()
    support.register()


def _golden_recipe(folder, threshold_factor):
    support.teach_demo_recipe(folder)
    recipe = load_recipe(folder)
    add_golden_part(recipe, "ok_500", PART.render(500).image, "OK")
    add_golden_part(recipe, "ng_spot", PART.render(500, "spot").image, "NG")
    recipe.threshold *= threshold_factor
    return str(save_recipe(recipe, folder))


def _actions(ctx):
    return [e.action for e in ctx.audit.entries()[0] if e.action.startswith("golden.")]


def test_a_recipe_failing_its_golden_parts_is_blocked_in_the_window(qtbot, ctx, tmp_path):
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.first_verdict_s is not None, timeout=30000)
    panel = window.inspect
    try:
        good = _golden_recipe(tmp_path / "models" / "good", 1.0)
        assert panel.choose_recipe(good)
        panel.start()
        qtbot.waitUntil(lambda: panel.shown is not None, timeout=20000)
        panel.refresh_stats()
        assert _actions(ctx) == ["golden.passed"]
        panel.new_shift()  # the shift starts with the golden parts judged again
        qtbot.waitUntil(lambda: (panel.refresh_stats(), _actions(ctx))[1] == ["golden.passed"] * 2, timeout=20000)

        edited = _golden_recipe(tmp_path / "models" / "edited", 50.0)
        assert panel.choose_recipe(edited)
        panel.start()
        qtbot.waitUntil(lambda: not panel.running, timeout=20000)
        qtbot.waitUntil(lambda: window.errors.isVisible(), timeout=10000)
        assert "golden-part self-test FAILED" in window.errors.last_message
        assert "ng_spot expected NG, got OK" in window.errors.last_message
        assert "Inspection is blocked" in window.errors.last_message
        assert _actions(ctx)[-1] == "golden.blocked"
    finally:
        window.close()
