"""The teach-in wizard's region of interest: set by moving the rectangle on the detector page, trained,
drawn at its place on the threshold page and in the live preview, saved in the recipe; "Whole image"
clears it, and a new wizard starts without one."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_detector import register_test_detector

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

from PySide6.QtCore import QRectF, Qt  # noqa: E402

from station.acquisition.synthetic import SyntheticPart  # noqa: E402
from station.core.recipe import load_recipe  # noqa: E402
from station.detectors.runtime import load_inspector  # noqa: E402
from station.gui.teach import TeachWizard  # noqa: E402

SIZE = 96
SEED = 5
ROI = (30, 20, 56, 60)


@pytest.fixture(autouse=True)
def _detector():
    register_test_detector()


def _to_detector_page(qtbot, ctx, name: str) -> TeachWizard:
    w = TeachWizard(ctx)
    qtbot.addWidget(w)
    w.show()
    w.part_page.name.setText(name)
    w.part_page.pixel_size.setValue(0.5)
    w.next()
    part = SyntheticPart(seed=SEED, size=SIZE)
    for i in range(10):
        w.samples_page.add_frame_image(part.render(i).image, f"part {i}")
    w.next()
    w.detector_page.select_kind("test-zscore")
    qtbot.waitUntil(w.detector_page.isComplete, timeout=10000)
    return w


def _drag(editor, roi) -> None:
    """Move the rectangle as a finished drag would: resize, then move (one commit)."""
    x, y, w, h = roi
    editor.rect.setSize((w, h), finish=False)
    editor.rect.setPos((x, y))  # finish=True: sigRegionChangeFinished, as at a mouse release


def _item_rect(item) -> QRectF:
    return item.mapRectToParent(item.boundingRect())


def _with_blob(image: np.ndarray, x: int, y: int, side: int = 8) -> np.ndarray:
    out = image.copy()
    out[y:y + side, x:x + side] = 255 - out[y:y + side, x:x + side]
    return out


def _train_and_finish(qtbot, w: TeachWizard):
    w.next()
    qtbot.waitUntil(w.train_page.isComplete, timeout=20000)
    w.next()
    thr = w.threshold_page
    qtbot.waitUntil(lambda: thr.panel.estimate is not None, timeout=10000)
    return thr


def test_roi_set_in_the_wizard_is_trained_shown_and_saved(qtbot, ctx):
    w = _to_detector_page(qtbot, ctx, "bracket")
    s, editor = w.session, w.detector_page.roi_editor
    assert editor.canvas.image_shape[:2] == (SIZE, SIZE)  # the first good sample
    assert (editor.rect.pos().x(), editor.rect.size().x()) == (0, SIZE) and s.roi is None
    assert editor.value_label.text().startswith("whole image: 96 × 96 px")
    assert editor.shade.path().isEmpty()

    with qtbot.waitSignal(editor.changed, timeout=1000):
        _drag(editor, ROI)
    assert s.roi == ROI
    assert editor.value_label.text() == "x 30, y 20, 56 × 60 px  (15.0, 10.0 mm; 28.0 × 30.0 mm)"
    shade = editor.shade.path()
    assert shade.contains(QRectF(2, 2, 4, 4).center()) and not shade.contains(QRectF(50, 40, 4, 4).center())

    editor.rect.setPos((80, 70))  # would leave 16x26 px inside the image: refused, the frame goes back
    assert s.roi == ROI and "at least 32x32" in editor.message.text()
    assert (editor.rect.pos().x(), editor.rect.pos().y()) == (30, 20)

    # threshold page: the validation image is whole, its map and regions at the region's place
    thr = _train_and_finish(qtbot, w)
    assert s.result.recipe.preprocessing["roi"] == list(ROI)
    view = thr.panel.largest_view
    assert view.image_shape[:2] == (SIZE, SIZE)
    assert _item_rect(view.heat_item) == QRectF(*ROI)
    assert list(view.roi_item.getData()[0][:2]) == [30, 86]
    with qtbot.waitSignal(thr.panel.estimate_changed, timeout=5000):
        thr.panel.set_area_px(20.0)  # above the test detector's noise specks
    # the live preview draws its results at the region's place too
    thr.preview_source.setCurrentText(f"synthetic://demo?fps=30&defect_rate=0.5&size={SIZE}&seed={SEED}")
    thr.start_preview()
    qtbot.waitUntil(lambda: thr.preview_verdict.verdict in ("OK", "NG"), timeout=20000)
    assert _item_rect(thr.preview_view.heat_item) == QRectF(*ROI)
    w.next()

    assert "x 30, y 20, 56 × 60 px" in w.save_page.summary.text()
    with qtbot.waitSignal(w.saved, timeout=5000) as saved:
        w.accept()
    recipe = load_recipe(saved.args[0])
    assert recipe.preprocessing["roi"] == list(ROI)
    inspector = load_inspector(recipe)
    good = SyntheticPart(seed=SEED, size=SIZE).render(0).image  # a taught sample: only the blob differs
    assert not inspector.inspect(_with_blob(good, 4, 4)).regions  # on the fixture: not inspected
    inside = inspector.inspect(_with_blob(good, 50, 40))
    assert inside.is_ng
    x, y, rw, rh = ROI
    for r in inside.regions:
        bx, by, bw, bh = r.bbox
        assert x <= bx and y <= by and bx + bw <= x + rw and by + bh <= y + rh


def test_whole_image_clears_the_roi_and_a_new_wizard_starts_without_one(qtbot, ctx):
    w = _to_detector_page(qtbot, ctx, "plate")
    s, editor = w.session, w.detector_page.roi_editor
    _drag(editor, ROI)
    assert s.roi == ROI and not editor.shade.path().isEmpty()
    with qtbot.waitSignal(editor.changed, timeout=1000):
        qtbot.mouseClick(editor.whole_button, Qt.MouseButton.LeftButton)
    assert s.roi is None and editor.shade.path().isEmpty()
    assert (editor.rect.pos().x(), editor.rect.pos().y(), editor.rect.size().x()) == (0, 0, SIZE)
    assert editor.value_label.text().startswith("whole image")
    _train_and_finish(qtbot, w)
    w.next()
    assert "whole image" in w.save_page.summary.text()
    with qtbot.waitSignal(w.saved, timeout=5000) as saved:
        w.accept()
    assert load_recipe(saved.args[0]).preprocessing["roi"] is None

    again = TeachWizard(ctx)  # what the Teach mode opens next: a fresh session, no region carried over
    qtbot.addWidget(again)
    assert again.session.roi is None


def test_typed_fields_set_the_region_and_follow_a_drag(qtbot, ctx):
    w = _to_detector_page(qtbot, ctx, "typed")
    editor = w.detector_page.roi_editor
    f = editor.fields
    assert [f[k].value() for k in "xywh"] == [0, 0, SIZE, SIZE]  # the whole image to begin with
    for key, value in zip("xywh", ROI, strict=True):
        f[key].setValue(value)
        f[key].editingFinished.emit()  # as Enter or leaving the field does
    assert w.session.roi == ROI
    assert _item_rect(editor.rect) == QRectF(*ROI)
    qtbot.keyClick(f["w"], Qt.Key.Key_Return)  # Enter in a field stays on the page
    assert w.currentPage() is w.detector_page
    f["w"].setValue(10)  # too small: refused, the fields show the region in force
    f["w"].editingFinished.emit()
    assert w.session.roi == ROI and f["w"].value() == ROI[2]
    assert "at least" in editor.message.text()
    _drag(editor, (10, 12, 50, 40))
    assert [f[k].value() for k in "xywh"] == [10, 12, 50, 40]
    w.reject()
