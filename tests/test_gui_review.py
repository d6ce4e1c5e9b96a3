"""Review mode driven with pytest-qt: teach from train/good first and score a small category, browse
the table and the Figure-3 view, export the report; then the real MVTec bottle (a few images)."""

from __future__ import annotations

import pytest
from helpers_data import make_mvtec_category
from helpers_detector import register_test_detector

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

from PySide6.QtCore import Qt  # noqa: E402

from station.app.context import StationContext  # noqa: E402
from station.app.paths import AppPaths  # noqa: E402
from station.core.datasets import MVTecCategory, iter_images, split_validation  # noqa: E402
from station.core.recipe import save_recipe  # noqa: E402
from station.detectors.runtime import teach_detector  # noqa: E402
from station.gui.review_mode import TEACH_FIRST, ReviewPanel  # noqa: E402


@pytest.fixture(autouse=True)
def _test_detector():
    register_test_detector()


@pytest.fixture
def ctx(tmp_path) -> StationContext:
    return StationContext.load(AppPaths(tmp_path / "home"))


def make_panel(qtbot, ctx) -> tuple[ReviewPanel, list]:
    problems: list = []
    panel = ReviewPanel(ctx, lambda where, msg, details: problems.append((where, msg)))
    qtbot.addWidget(panel)
    panel.resize(1200, 800)
    panel.show()
    return panel, problems


def test_teach_first_score_browse_and_export(qtbot, ctx, tmp_path):
    data = make_mvtec_category(tmp_path / "part", n_train=10, n_good_test=3, n_defect=3)
    panel, problems = make_panel(qtbot, ctx)
    panel.set_request(data, recipe=None, detector="test-zscore")
    assert panel.recipe.currentData() == TEACH_FIRST and panel.detector.isVisible()
    with qtbot.waitSignal(panel.scored, timeout=30000) as done:
        panel.score()
    outcome = done.args[0]
    assert problems == []
    assert panel.model.rowCount() == 9 and outcome.labelled
    assert (ctx.models_dir / "part" / "v0001" / "recipe.json").is_file()  # taught first, saved, audited
    assert [e.action for e in ctx.audit.entries()[0]] == ["recipe.created"]
    # the metrics table: overall and per defect type
    names = [panel.metrics.item(r, 0).text() for r in range(panel.metrics.rowCount())]
    assert names == ["overall", "scratch", "spot"]
    assert panel.metrics.item(0, 1).text() != "–"  # image AUC
    assert len(panel.roc_plot.getPlotItem().listDataItems()) == 3  # image, pixel, diagonal
    # sort by score, highest first; the selected row shows ground truth red and detections green
    panel.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    panel.table.selectRow(0)
    top_index = panel.proxy.index(0, 0).data(Qt.ItemDataRole.UserRole)
    top = outcome.result.records[top_index]
    assert top.score == max(r.score for r in outcome.result.records)
    assert top.label != "good"
    assert panel.image_view.gt_item.xData is not None and len(panel.image_view.gt_item.xData) > 0
    assert panel.heat_view.heat_item.image is not None
    assert top.name in panel.detail_info.text()
    agrees = {panel.model.item(r, 4).text() for r in range(panel.model.rowCount())}
    assert agrees <= {"yes", "no"}
    # export: CSV, JSON, curves, overlays
    job = panel.export(tmp_path / "report")
    qtbot.waitUntil(lambda: job.outcome is not None, timeout=30000)
    assert job.outcome == "finished"
    qtbot.waitUntil(lambda: "Report written" in panel.summary.text(), timeout=5000)
    out = tmp_path / "report"
    assert (out / "metrics.json").is_file() and (out / "images.csv").is_file() and (out / "roc.png").is_file()
    assert len(list((out / "overlays").rglob("*.jpg"))) == 9


def test_missing_folder_is_reported(qtbot, ctx, tmp_path):
    panel, problems = make_panel(qtbot, ctx)
    panel.set_request(tmp_path / "nowhere", recipe=None, detector="test-zscore")
    panel.score()
    qtbot.waitUntil(lambda: bool(problems), timeout=10000)
    assert "not found" in problems[0][1] and panel.score_button.isEnabled()


@pytest.mark.slow
@pytest.mark.mvtec
def test_review_the_bottle(qtbot, ctx, tmp_path, mvtec_bottle):
    """The real bottle category, two test images per type, with a small recipe taught here."""
    category = MVTecCategory(mvtec_bottle)
    train_s, val_s = split_validation(category.train_good()[:8], 0.25)
    train = [im for _, im in iter_images(train_s)]
    val = [im for _, im in iter_images(val_s)]
    result = teach_detector("bottle", train, val, "test-zscore")
    folder = save_recipe(result.recipe, ctx.models_dir / "bottle")
    panel, problems = make_panel(qtbot, ctx)
    panel.fill_recipes()
    panel.set_request(mvtec_bottle, recipe=str(folder), per_type=2)
    with qtbot.waitSignal(panel.scored, timeout=120000) as done:
        panel.score()
    outcome = done.args[0]
    labels = sorted({r.label for r in outcome.result.records})
    assert labels == ["broken_large", "broken_small", "contamination", "good"]
    assert panel.model.rowCount() == 8 and outcome.result.overall["pixel_roc_auc"] is not None
    panel.table.selectRow(0)
    assert panel.image_view.image_shape[:2] == (900, 900)
    assert problems == []
