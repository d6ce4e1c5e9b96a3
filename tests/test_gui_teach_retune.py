"""The Teach tab's re-tune panel (issue 13, item 7): it loads the recipe it shows, and opening the
wizard (or picking another recipe) never silently discards an unsaved re-tune."""

from __future__ import annotations

import pytest
from helpers_detector import register_test_detector

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

from station.acquisition.synthetic import SyntheticPart  # noqa: E402
from station.app.teach_session import TeachSession  # noqa: E402
from station.core.recipe import load_recipe, versions  # noqa: E402
from station.gui.teach_mode import TeachPanel  # noqa: E402


@pytest.fixture(autouse=True)
def _detector():
    register_test_detector()


def _taught(ctx, name: str) -> str:
    s = TeachSession(models_dir=ctx.models_dir, part_name=name, detector_kind="test-zscore")
    part = SyntheticPart(seed=4, size=96)
    for i in range(8):
        s.add_image(part.render(i).image, f"part {i}")
    s.train()
    return str(s.save())


def _panel(qtbot, ctx) -> TeachPanel:
    panel = TeachPanel(ctx, report=lambda *a: None)
    qtbot.addWidget(panel)
    panel.show()
    return panel


def test_the_retune_panel_loads_the_recipe_it_shows(qtbot, ctx):
    first = _taught(ctx, "alpha")
    _taught(ctx, "beta")
    panel = _panel(qtbot, ctx)
    shown = panel.retune_pick.currentData()
    assert shown is not None
    assert panel.retune_recipe is None and "loading" in panel.retune_info.text()  # on a worker
    # loaded without picking it
    qtbot.waitUntil(lambda: panel.retune_recipe is not None and panel.retune_panel.estimate is not None, timeout=5000)
    assert str(panel.retune_recipe.path) == shown
    recipe = load_recipe(shown)
    assert panel.retune_panel.estimate.min_defect_area_px == recipe.min_defect_area_px
    assert f"{recipe.threshold:.5g}" in panel.retune_info.text()
    # another recipe picked: loaded too
    panel.retune_pick.setCurrentIndex(panel.retune_pick.findData(first))
    panel.retune_pick.activated.emit(panel.retune_pick.currentIndex())
    qtbot.waitUntil(lambda: panel.retune_recipe is not None and str(panel.retune_recipe.path) == first, timeout=5000)


def _unsaved(qtbot, ctx) -> TeachPanel:
    _taught(ctx, "gamma")
    panel = _panel(qtbot, ctx)
    qtbot.waitUntil(lambda: panel.retune_panel.estimate is not None, timeout=5000)
    with qtbot.waitSignal(panel.retune_panel.estimate_changed, timeout=5000):
        panel.retune_panel.set_area_px(33.0)
    assert panel.retune_unsaved
    return panel


def test_opening_the_wizard_asks_about_an_unsaved_retune(qtbot, ctx):
    panel = _unsaved(qtbot, ctx)
    asked = []
    panel.ask_unsaved = lambda doing: asked.append(doing) or "cancel"
    assert panel.open_wizard() is None  # stay: the change is kept
    assert asked and panel.retune_unsaved and panel.retune_panel.estimate.min_defect_area_px == 33.0
    assert panel.wizard is None
    panel.ask_unsaved = lambda doing: "save"
    with qtbot.waitSignal(panel.recipe_saved, timeout=10000):
        assert panel.open_wizard() is None  # saved on a worker first, then the wizard opens
    wizard = panel.wizard
    assert wizard is not None
    assert [v for v, _ in versions(ctx.models_dir / "gamma")] == [1, 2]
    assert load_recipe(ctx.models_dir / "gamma").min_defect_area_px == 33.0
    wizard.reject()


def test_discarding_the_retune_reloads_the_recipe(qtbot, ctx):
    panel = _unsaved(qtbot, ctx)
    panel.ask_unsaved = lambda doing: "discard"
    wizard = panel.open_wizard()
    assert wizard is not None and not panel.retune_unsaved
    assert [v for v, _ in versions(ctx.models_dir / "gamma")] == [1]
    qtbot.waitUntil(lambda: panel.retune_panel.estimate is not None
                    and panel.retune_panel.estimate.min_defect_area_px != 33.0, timeout=5000)
    wizard.reject()


def test_picking_another_recipe_after_saving_the_retune_shows_it(qtbot, ctx):
    other = _taught(ctx, "zeta")  # listed after gamma, which the panel shows
    panel = _unsaved(qtbot, ctx)
    panel.ask_unsaved = lambda doing: "save"
    panel.retune_pick.setCurrentIndex(panel.retune_pick.findData(other))
    with qtbot.waitSignal(panel.recipe_saved, timeout=10000):
        panel.retune_pick.activated.emit(panel.retune_pick.currentIndex())
    assert [v for v, _ in versions(ctx.models_dir / "gamma")] == [1, 2]
    qtbot.waitUntil(lambda: panel.retune_recipe is not None and str(panel.retune_recipe.path) == other, timeout=5000)
    assert panel.retune_pick.currentData() == other and not panel.retune_unsaved


def test_a_failed_save_keeps_the_change(qtbot, ctx, monkeypatch):
    import station.gui.teach_mode as teach_mode

    def full_disk(*_a, **_k):
        raise OSError("No space left on device")

    reported = []
    panel = _unsaved(qtbot, ctx)
    panel.report = lambda *a: reported.append(a)
    monkeypatch.setattr(teach_mode, "retune_recipe", full_disk)
    job = panel.save_retune()
    assert job is not None and not panel.retune_save.isEnabled()  # no second save while one runs
    qtbot.waitUntil(lambda: bool(reported), timeout=5000)
    assert "No space left" in reported[0][1] and panel.retune_unsaved
    assert panel.retune_panel.estimate.min_defect_area_px == 33.0
    assert [v for v, _ in versions(ctx.models_dir / "gamma")] == [1]
