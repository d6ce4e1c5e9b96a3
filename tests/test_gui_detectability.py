"""The wizard's threshold page shows what the recipe will catch (issue 16, item 1): measured on a
worker, beside the histogram, re-scored when the minimum area changes, saved with the recipe."""

from __future__ import annotations

import pytest
from helpers_detector import register_test_detector

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

from station.acquisition.synthetic import SyntheticPart  # noqa: E402
from station.core.detectability import load_detectability  # noqa: E402
from station.gui.teach import TeachWizard  # noqa: E402


def test_threshold_page_measures_and_follows_the_area(qtbot, ctx):
    register_test_detector()
    w = TeachWizard(ctx)
    qtbot.addWidget(w)
    w.show()
    w.part_page.name.setText("bracket")
    w.next()
    part = SyntheticPart(seed=3, size=96)
    for i in range(10):
        w.samples_page.add_frame_image(part.render(i).image, f"part {i}")
    w.next()
    w.detector_page.select_kind("test-zscore")
    qtbot.waitUntil(w.detector_page.isComplete, timeout=10000)
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
