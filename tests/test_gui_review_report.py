"""Review's traps (issue 13, item 8): it defaults to the recipe the station inspects with, reports the
metrics phase, keeps the previous results when a run fails, exports into a folder that exists and
says where, and writes a readable HTML report of reasonable size (raw maps only on request)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers_data import make_mvtec_category
from helpers_detector import register_test_detector

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

from station.app.review import teach_from_category  # noqa: E402
from station.core.datasets import MVTecCategory  # noqa: E402
from station.gui.review_mode import TEACH_FIRST, ReviewPanel  # noqa: E402


@pytest.fixture(autouse=True)
def _test_detector():
    register_test_detector()


@pytest.fixture
def scored(qtbot, ctx, tmp_path):
    """A panel that has scored a small category with a recipe taught from it."""
    data = make_mvtec_category(tmp_path / "part", n_train=10, n_good_test=3, n_defect=3)
    recipe = teach_from_category(MVTecCategory(data), "test-zscore", ctx.models_dir)
    ctx.settings.recipe_path = str(recipe.parent)  # the part the station inspects with
    panel = ReviewPanel(ctx, lambda *a: None)
    qtbot.addWidget(panel)
    panel.resize(1200, 800)
    panel.show()
    panel.set_request(data, recipe=str(recipe))
    with qtbot.waitSignal(panel.scored, timeout=30000):
        panel.score()
    return panel, data, recipe


def test_review_defaults_to_the_recipe_in_use(qtbot, ctx, tmp_path):
    data = make_mvtec_category(tmp_path / "part", n_train=8, n_good_test=1, n_defect=1)
    teach_from_category(MVTecCategory(data), "test-zscore", ctx.models_dir)
    second = teach_from_category(MVTecCategory(data), "test-zscore", ctx.models_dir / "zz")  # not in use
    assert second.exists()
    ctx.settings.recipe_path = str(ctx.models_dir / "part")
    panel = ReviewPanel(ctx, lambda *a: None)
    qtbot.addWidget(panel)
    assert panel.recipe.currentData() == str(ctx.models_dir / "part" / "v0001")
    assert panel.recipe.currentData() != TEACH_FIRST
    assert panel.detector.currentData() == "variation"  # if taught first: seconds, not minutes


def test_a_recipe_taught_after_the_panel_opened_becomes_the_default(qtbot, ctx, tmp_path):
    """At the first start the panel opens before the demo part is taught: only "teach first" exists."""
    panel = ReviewPanel(ctx, lambda *a: None)
    qtbot.addWidget(panel)
    assert panel.recipe.currentData() == TEACH_FIRST
    data = make_mvtec_category(tmp_path / "demo", n_train=8, n_good_test=1, n_defect=1)
    recipe = teach_from_category(MVTecCategory(data), "test-zscore", ctx.models_dir)  # the demo part
    panel.fill_recipes()  # what the window does once the demo part is taught
    assert panel.recipe.currentData() == str(recipe)
    panel.recipe.setCurrentIndex(panel.recipe.findData(TEACH_FIRST))
    panel.recipe.activated.emit(panel.recipe.currentIndex())  # the engineer's own choice stays
    panel.fill_recipes()
    assert panel.recipe.currentData() == TEACH_FIRST


def test_the_metrics_phase_is_reported(qtbot, scored):
    panel, data, recipe = scored
    stages = []
    panel.progress.update_progress = lambda p: stages.append((p.stage, p.done, p.total, p.message))
    with qtbot.waitSignal(panel.scored, timeout=30000):
        panel.score()
    assert ("metrics", 0, 1, "computing the metrics (ROC, PRO)") in stages  # shown while they compute
    assert stages.index(("metrics", 0, 1, "computing the metrics (ROC, PRO)")) > max(
        i for i, s in enumerate(stages) if s[0] == "evaluating")


def test_a_failed_review_keeps_the_previous_results(qtbot, scored, tmp_path):
    panel, data, recipe = scored
    before = panel.outcome
    rows = panel.model.rowCount()
    assert before is not None and rows == len(before.result.records) > 0
    empty = tmp_path / "empty"
    empty.mkdir()
    panel.data.setText(str(empty))
    job = panel.score()
    qtbot.waitUntil(lambda: job.outcome == "failed", timeout=20000)
    qtbot.waitUntil(lambda: "Scoring failed" in panel.summary.text(), timeout=5000)
    assert panel.outcome is before and panel.model.rowCount() == rows
    assert panel.export_button.isEnabled() and panel.metrics.rowCount() > 0
    assert "previous results" in panel.summary.text()


def test_export_prefills_a_folder_that_exists_and_says_where(qtbot, scored, ctx, monkeypatch):
    panel, data, recipe = scored
    asked = []

    def choose(parent, caption, folder):
        from pathlib import Path

        asked.append(folder)
        assert Path(folder).is_dir()  # else the dialog greys out Choose
        return folder

    monkeypatch.setattr("station.gui.review_mode.QFileDialog.getExistingDirectory", choose)
    with qtbot.waitSignal(panel.exported, timeout=30000) as done:
        panel._choose_export()
    assert asked == [str(ctx.paths.runs)]
    html_path = done.args[0]
    assert html_path.endswith("report.html") and html_path in panel.summary.text()


def test_the_html_report_is_readable_and_small(qtbot, scored, tmp_path):
    panel, data, recipe = scored
    out = tmp_path / "report"
    with qtbot.waitSignal(panel.exported, timeout=30000) as done:
        panel.export(out)
    text = (out / "report.html").read_text()
    assert done.args[0] == str(out / "report.html")
    for heading in ("Metrics", "Curves", "Worst misses", "Defective parts passed as OK", "Good parts rejected as NG"):
        assert heading in text
    assert "<th title=" in text and "region overlap" in text  # the headings are explained
    res = panel.outcome.result
    assert f"{res.overall['image_roc_auc']:.3f}" in text
    for src in re.findall(r"<img src='([^']+)'", text):
        assert (out / src).is_file(), src  # every picture it shows is there
    assert not (out / "maps").exists() and not (out / "maps.npz").exists()  # raw maps only on request
    assert sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) < 3_000_000
    panel.raw_maps.setChecked(True)
    with qtbot.waitSignal(panel.exported, timeout=30000):
        panel.export(tmp_path / "with-maps")
    with np.load(tmp_path / "with-maps" / "maps.npz") as maps:
        assert len(maps.files) == len(res.records)
        first = res.records[0]
        key = f"{first.label}_{first.path.rsplit('/', 1)[-1].rsplit('.', 1)[0]}"
        assert np.array_equal(maps[key], res.maps[0])


def test_review_headings_have_tooltips(qtbot, scored):
    panel, *_ = scored
    headers = {panel.metrics.horizontalHeaderItem(c).text(): panel.metrics.horizontalHeaderItem(c).toolTip()
               for c in range(panel.metrics.columnCount())}
    for name in ("region overlap", "acc. good", "subset"):
        assert headers[name], name
    assert "overall" in panel.metrics.item(0, 0).toolTip()
