"""The teach-in wizard's traps (issue 13, item 5): keys typed in the part name reach it, Enter in the
preview-source field stays on the threshold page, fixing the name after training keeps the training,
detector parameters have labels, units, tooltips and choice boxes, and the summary is readable and
names where the samples came from."""

from __future__ import annotations

import pytest
from helpers_data import make_mvtec_category
from helpers_detector import ZScoreDetector, register_test_detector
from helpers_wizard import wizard_at_detector

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication, QComboBox, QDoubleSpinBox, QLabel, QTabWidget  # noqa: E402

from station.app.param_docs import docstring_parameters, param_text  # noqa: E402
from station.core.recipe import load_recipe  # noqa: E402
from station.detectors.base import DetectorInfo, register  # noqa: E402
from station.gui.teach import TeachWizard  # noqa: E402


class DocumentedDetector(ZScoreDetector):
    """A test detector whose parameters are documented as the real ones are.

    Parameters
    ----------
    floor
        Added to the deviation before dividing, in gray levels.
    smoothing
        ``"gauss"`` (Gaussian) or ``"box"`` (uniform), applied to the map.
    """

    kind = "test-documented"

    def __init__(self, floor: float = 1.0, smoothing: str = "gauss") -> None:
        super().__init__(floor)
        self.smoothing = smoothing

    def get_config(self):
        return {"floor": self.floor, "smoothing": self.smoothing}


@pytest.fixture(autouse=True)
def _detectors():
    register_test_detector()
    register(DetectorInfo("test-documented", "test_gui_teach_pages:DocumentedDetector", "Documented test",
                          "test only", "gray"))


def _embedded(qtbot, ctx) -> tuple[QTabWidget, TeachWizard]:
    """The wizard as the Teach tab holds it: embedded in a tab of the main window, the window active."""
    tabs = QTabWidget()
    qtbot.addWidget(tabs)
    tabs.addTab(QLabel("inspect"), "Inspect")
    wizard = TeachWizard(ctx)
    wizard.setWindowFlags(Qt.WindowType.Widget)
    tabs.addTab(wizard, "Teach")
    tabs.setCurrentIndex(1)
    tabs.show()
    tabs.activateWindow()
    qtbot.waitActive(tabs)
    return tabs, wizard


def _type(qtbot, text: str) -> None:
    """Keys as a keyboard sends them: each to whichever widget has the focus at that moment."""
    for ch in text:
        qtbot.keyClick(QApplication.focusWidget(), ch)


def _trained(qtbot, ctx, kind: str = "test-zscore") -> TeachWizard:
    w = wizard_at_detector(qtbot, ctx, kind, 8)
    w.next()
    qtbot.waitUntil(w.train_page.isComplete, timeout=20000)
    return w


def test_keys_typed_in_the_part_name_all_arrive(qtbot, ctx):
    """Each keystroke makes the page re-check completeness; QWizard hides its pages meanwhile and Qt
    moved the focus to the main window's tab bar: "bottle" arrived as "b"."""
    tabs, w = _embedded(qtbot, ctx)
    w.part_page.name.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is w.part_page.name, timeout=2000)
    _type(qtbot, "bottle")
    assert w.part_page.name.text() == "bottle"
    assert QApplication.focusWidget() is w.part_page.name
    assert w.session.part_name == "bottle"
    w.reject()


def test_enter_in_the_preview_source_stays_on_the_threshold_page(qtbot, ctx):
    w = _trained(qtbot, ctx)
    w.next()
    thr = w.threshold_page
    assert w.currentPage() is thr
    field = thr.preview_source.lineEdit()
    field.setText("synthetic://demo?fps=30&defect_rate=0.5&size=96")
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert w.currentPage() is thr  # not the Save page
    assert thr.preview is not None and thr.preview.source_uri.endswith("size=96")  # Enter started it
    qtbot.waitUntil(lambda: thr.preview_verdict.verdict in ("OK", "NG"), timeout=20000)
    w.reject()


def test_fixing_the_name_after_training_keeps_the_training(qtbot, ctx):
    w = _trained(qtbot, ctx)
    result = w.session.result
    w.back()  # detector
    w.back()  # samples
    w.back()  # part
    w.part_page.name.setText("bracket-m6")
    w.next()
    w.next()
    w.next()  # training page: nothing to do
    assert w.currentPage() is w.train_page
    assert w.session.result is result and w.train_page.job.outcome == "finished"
    assert w.train_page.isComplete()
    w.next()
    w.next()
    with qtbot.waitSignal(w.saved, timeout=5000) as saved:
        w.accept()
    assert load_recipe(saved.args[0]).name == "bracket-m6"
    assert (ctx.models_dir / "bracket-m6").is_dir() and not (ctx.models_dir / "bracket").exists()


def test_a_changed_parameter_retrains(qtbot, ctx):
    w = _trained(qtbot, ctx)
    result = w.session.result
    w.back()
    w.detector_page.editors["floor"][0].setValue(3.0)
    w.next()
    qtbot.waitUntil(w.train_page.isComplete, timeout=20000)
    assert w.session.result is not result and w.session.result.recipe.detector_config == {"floor": 3.0}
    w.reject()


def test_parameters_have_labels_units_tooltips_and_choices(qtbot, ctx):
    w = _trained(qtbot, ctx, kind="test-documented")
    w.back()
    det = w.detector_page
    smoothing, _ = det.editors["smoothing"]
    assert isinstance(smoothing, QComboBox) and not smoothing.isEditable()
    assert [smoothing.itemText(i) for i in range(smoothing.count())] == ["gauss", "box"]
    assert "uniform" in smoothing.toolTip()
    floor, _ = det.editors["floor"]
    assert isinstance(floor, QDoubleSpinBox) and "gray levels" in floor.toolTip()
    labels = [det.params_form.itemAt(i, det.params_form.ItemRole.LabelRole).widget().text()
              for i in range(det.params_form.rowCount())]
    assert labels == ["Floor", "Smoothing"]
    smoothing.setCurrentText("box")
    w.next()
    assert w.session.params == {"floor": 1.0, "smoothing": "box"}
    qtbot.waitUntil(w.train_page.isComplete, timeout=20000)
    w.next()
    w.next()
    text = w.save_page.summary.text()
    assert "Documented test" in text and "Smoothing box" in text and "{" not in text
    w.reject()


def test_the_summary_names_the_folder_the_samples_came_from(qtbot, ctx, tmp_path):
    data = make_mvtec_category(tmp_path / "bracket", n_train=9, n_good_test=1, n_defect=1)
    w = TeachWizard(ctx)
    qtbot.addWidget(w)
    w.show()
    w.part_page.name.setText("bracket")
    w.next()  # the source stays the demo camera: the samples come from a folder all the same
    job = w.samples_page.import_folder(data)
    qtbot.waitUntil(lambda: job.outcome == "finished" and not w.samples_page.busy, timeout=20000)
    w.next()
    w.detector_page.select_kind("test-zscore")
    qtbot.waitUntil(w.detector_page.isComplete, timeout=10000)
    w.next()
    qtbot.waitUntil(w.train_page.isComplete, timeout=20000)
    w.next()
    w.next()
    text = w.save_page.summary.text()
    assert f"folder {data}" in text and "(9 images)" in text
    with qtbot.waitSignal(w.saved, timeout=5000) as saved:
        w.accept()
    training = load_recipe(saved.args[0]).training
    assert training["source"] == f"folder {data} (9 images)"


def test_parameter_texts_come_from_the_numpy_docstring():
    docs = docstring_parameters(DocumentedDetector.__doc__)
    assert docs == {"floor": "Added to the deviation before dividing, in gray levels.",
                    "smoothing": '``"gauss"`` (Gaussian) or ``"box"`` (uniform), applied to the map.'}
    shared = docstring_parameters("X.\n\n    Parameters\n    ----------\n    a, b\n        Both.\n"
                                  "    c : int\n        Third\n        line.\n\n    Returns\n    -------\n"
                                  "    d\n        Not a parameter.\n")
    assert shared == {"a": "Both.", "b": "Both.", "c": "Third line."}
    weights = param_text("weights", "imagenet", '``"imagenet"``, ``"custom:<sha>"`` or ``"random"``')
    assert weights.choices == ("imagenet", "random") and weights.editable
    assert param_text("work_side", 256).label == "Working resolution" and param_text("work_side", 256).unit == "px"
    assert param_text("new_thing", 1.0).label == "New thing"
