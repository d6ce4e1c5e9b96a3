"""The wizard's threshold page shows what the recipe will catch (issue 16, item 1): measured on a
worker, beside the histogram, re-scored when the minimum area changes, saved with the recipe."""

from __future__ import annotations

import pytest
from helpers_detector import register_test_detector
from helpers_wizard import wizard_at_detector

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

from station.core.detectability import load_detectability  # noqa: E402


def test_threshold_page_measures_and_follows_the_area(qtbot, ctx):
    register_test_detector()
    w = wizard_at_detector(qtbot, ctx, "test-zscore", 10)
    w.next()
    qtbot.waitUntil(w.train_page.isComplete, timeout=20000)
    w.next()
    thr = w.threshold_page
    qtbot.waitUntil(lambda: thr.panel.estimate is not None, timeout=10000)
    view = thr.detectability
    assert view.table is None and "Not measured" in view.status.text()
    assert thr.measure_detectability() is not None  # the page's button does this
    qtbot.waitUntil(lambda: view.table is not None, timeout=30000)
    table = view.table
    assert view.grid.columnCount() == 4 and view.grid.rowCount() == len(table.areas_px) + 1
    assert view.grid.item(len(table.areas_px), 0).toolTip().startswith("this recipe finds")
    assert table.min_defect_area_px == pytest.approx(thr.panel.estimate.min_defect_area_px)
    assert thr.preview_button.isEnabled()  # the preview shares the detector: back once measured

    bigger = table.areas_px[-2]
    thr.panel.set_area_px(bigger)
    qtbot.waitUntil(lambda: view.table is not table and view.table.min_defect_area_px == bigger, timeout=10000)
    assert view.grid.verticalHeaderItem(0).text().startswith("<")  # below the new area
    w.next()
    with qtbot.waitSignal(w.saved, timeout=5000) as saved:
        w.accept()
    stored = load_detectability(saved.args[0])
    assert stored is not None and stored.min_defect_area_px == bigger


def test_review_shows_the_stored_table_and_the_report_has_it(qtbot, ctx, tmp_path):
    from helpers_data import make_mvtec_category

    from station.app.detectability import DetectabilitySettings, held_out_images, measure, score_for, store
    from station.app.review import teach_from_category
    from station.core.datasets import MVTecCategory
    from station.core.recipe import load_recipe
    from station.detectors.runtime import load_inspector
    from station.gui.review_mode import ReviewPanel

    register_test_detector()
    data = make_mvtec_category(tmp_path / "part", n_train=10, n_good_test=1, n_defect=1)
    folder = teach_from_category(MVTecCategory(data), "test-zscore", ctx.models_dir)
    recipe = load_recipe(folder)
    settings = DetectabilitySettings(area_factors=(0.5, 4.0), contrasts=(20.0, 80.0), per_cell=1)
    maps = measure(recipe, load_inspector(recipe, device="cpu").detector, held_out_images(recipe), settings)
    store(recipe, score_for(maps, recipe))

    panel = ReviewPanel(ctx, lambda *a: None)
    qtbot.addWidget(panel)
    panel.show()
    panel.set_request(data, recipe=str(folder))
    with qtbot.waitSignal(panel.scored, timeout=30000):
        panel.score()
    view = panel.bottom_tabs.detectability
    assert view.table is not None and view.grid.rowCount() == 3  # two areas and the >= 95 % row
    assert "This recipe finds" in view.sentences.text()
    job = panel.export(tmp_path / "report")
    qtbot.waitUntil(lambda: not job.running, timeout=30000)
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "What it will catch: synthetic defects" in html and "this recipe finds" in html.lower()
