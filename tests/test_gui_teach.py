"""The teach-in wizard driven to a saved recipe, the threshold control, re-tuning, and Cancel or
closing the window in the middle of training leaving nothing behind."""

from __future__ import annotations

import time

import numpy as np
import pytest
from helpers_detector import ZScoreDetector, register_test_detector

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

from station.core.progress import checkpoint, report  # noqa: E402
from station.core.recipe import load_recipe, versions  # noqa: E402
from station.detectors.base import DetectorInfo, register  # noqa: E402
from station.gui.main_window import MainWindow  # noqa: E402
from station.gui.teach import TeachWizard  # noqa: E402

GOOD_SOURCE = "synthetic://demo?fps=60&defect_rate=0.5&size=128"  # defective parts are skipped by the wizard


class SlowDetector(ZScoreDetector):
    """Fits slowly, with a cancel point every 20 ms (training that a user cancels or a close ends)."""

    kind = "test-slow"

    def fit(self, images, progress=None, cancel=None):
        for i in range(500):
            checkpoint(cancel)
            time.sleep(0.02)
            report(progress, "fitting", i + 1, 500)
        return super().fit(images, progress, cancel)


@pytest.fixture(autouse=True)
def _detectors():
    register_test_detector()
    register(DetectorInfo("test-slow", "test_gui_teach:SlowDetector", "slow test", "test only", "gray"))


def make_wizard(qtbot, ctx) -> TeachWizard:
    w = TeachWizard(ctx)
    qtbot.addWidget(w)
    w.show()
    return w


def test_wizard_to_a_saved_recipe(qtbot, ctx):
    w = make_wizard(qtbot, ctx)
    s = w.session
    # 1: part and source
    assert not w.button(w.WizardButton.NextButton).isEnabled()
    w.part_page.name.setText("washer")
    w.part_page.picker.set_uri(GOOD_SOURCE)
    w.part_page.pixel_size.setValue(0.25)
    assert "washer v1" in w.part_page.hint.text()
    w.next()
    assert s.source_uri == GOOD_SOURCE and s.pixel_size_mm == 0.25
    # 2: capture good samples live; the demo source's defective parts are skipped
    page = w.samples_page
    page.target.setValue(12)
    page.capture_rate = 30.0
    page.start_capture()
    qtbot.waitUntil(lambda: not page.busy and len(s.images) == 12, timeout=20000)
    assert page.skipped_defective > 0 and page.strip.count() == 12
    assert "12 good samples" in page.counter.text()
    assert page.isComplete()
    w.next()
    # 3: detector (the registry's summary is shown; unavailable ones are disabled)
    det = w.detector_page
    det.select_kind("test-zscore")
    qtbot.waitUntil(lambda: det.isComplete(), timeout=10000)  # the detector loads on a worker
    assert "floor" in det.editors
    det.editors["floor"][0].setValue(2.0)
    w.next()
    assert s.params == {"floor": 2.0}
    # 4: training on the worker
    train = w.train_page
    qtbot.waitUntil(lambda: train.isComplete(), timeout=20000)
    assert "Trained" in train.status.text()
    w.next()
    # 5: threshold: the area control re-estimates on the held-out samples
    thr = w.threshold_page
    qtbot.waitUntil(lambda: thr.panel.estimate is not None, timeout=10000)
    assert thr.panel.unit_code == "mm2"  # the pixel size is known
    with qtbot.waitSignal(thr.panel.estimate_changed, timeout=5000) as blocker:
        thr.panel.set_area_px(40.0)
    est = blocker.args[0]
    assert est.min_defect_area_px == 40.0 and s.estimate is est
    assert est.threshold == pytest.approx(s.result.estimator.estimate(40.0).threshold)
    assert thr.panel.area.value() == pytest.approx(40.0 * 0.25 ** 2)
    assert "held-out good images" in thr.panel.largest_label.text()
    # preview on new live frames with the current threshold
    thr.preview_source.setCurrentText("synthetic://demo?fps=30&defect_rate=0.5&size=128")
    thr.start_preview()
    qtbot.waitUntil(lambda: thr.preview_verdict.verdict in ("OK", "NG"), timeout=20000)
    w.next()
    assert thr.preview is None  # the preview stops when the page is left
    # 6: save
    assert "washer v1" in w.save_page.summary.text()
    with qtbot.waitSignal(w.saved, timeout=5000) as saved:
        w.accept()
    folder = saved.args[0]
    recipe = load_recipe(folder)
    assert recipe.name == "washer" and recipe.detector_kind == "test-zscore"
    assert recipe.detector_config == {"floor": 2.0}
    assert recipe.min_defect_area_px == 40.0 and recipe.threshold == pytest.approx(est.threshold)
    assert recipe.pixel_size_mm == 0.25 and recipe.training["n_images"] == len(s.split()[0])
    entries, _ = ctx.audit.entries()
    assert [e.action for e in entries] == ["recipe.created"]


def test_threshold_control_answers_quickly(qtbot, ctx):
    """20 held-out maps: the threshold follows the area control, each answer timed by the panel. How fast
    is a benchmark's question (tools/gui_bench.py reports it), not a unit test's: the machine may be shared."""
    from station.core.threshold import ThresholdEstimator
    from station.gui.threshold_panel import ThresholdPanel

    rng = np.random.default_rng(0)
    maps = [np.clip(rng.normal(1.0, 0.3, (256, 256)), 0, None).astype(np.float32) for _ in range(20)]
    est = ThresholdEstimator(maps)
    panel = ThresholdPanel()
    qtbot.addWidget(panel)
    panel.set_validation(est.estimate, maps, (256, 256), 30.0)
    qtbot.waitUntil(lambda: panel.estimate is not None, timeout=5000)
    for area in (10.0, 50.0, 120.0, 400.0):
        with qtbot.waitSignal(panel.estimate_changed, timeout=5000):
            panel.set_area_px(area)
        assert panel.estimate.min_defect_area_px == area
    assert len(panel.response_ms) >= 5 and all(ms > 0 for ms in panel.response_ms)
    panel.shutdown()


def test_cancel_leaves_nothing_written(qtbot, ctx):
    w = make_wizard(qtbot, ctx)
    s = w.session
    s.part_name = "cancelled-part"
    from station.acquisition.synthetic import SyntheticPart

    part = SyntheticPart(seed=1, size=96)
    for i in range(8):
        s.add_image(part.render(i).image, f"part {i}")
    s.detector_kind = "test-slow"
    w.next()  # samples
    w.next()  # detector
    w.detector_page.select_kind("test-slow")
    qtbot.waitUntil(lambda: w.detector_page.isComplete(), timeout=10000)
    w.next()  # training starts
    qtbot.waitUntil(lambda: w.train_page.job is not None and w.train_page.job.running, timeout=5000)
    with qtbot.waitSignal(w.closed, timeout=5000):
        w.reject()
    assert w.train_page.job.wait(2.0)
    assert not (ctx.models_dir / "cancelled-part").exists()
    assert ctx.audit.entries()[0] == []


def test_closing_the_window_mid_training_is_clean(qtbot, ctx):
    w = MainWindow(ctx, auto_start=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.inspect.recipe_path is not None, timeout=30000)  # the demo part is ready
    w.gate.unlock_with("engineer-pw")
    wizard = w.teach.open_wizard()
    s = wizard.session
    s.part_name = "closing"
    from station.acquisition.synthetic import SyntheticPart

    part = SyntheticPart(seed=2, size=96)
    for i in range(8):
        s.add_image(part.render(i).image, f"part {i}")
    wizard.next()
    wizard.next()
    wizard.detector_page.select_kind("test-slow")
    qtbot.waitUntil(lambda: wizard.detector_page.isComplete(), timeout=10000)
    wizard.next()
    job = wizard.train_page.job
    qtbot.waitUntil(lambda: job.running, timeout=5000)
    w.inspect.start()  # inspecting at the same time
    qtbot.waitUntil(lambda: w.first_verdict_s is not None, timeout=20000)
    t0 = time.monotonic()
    w.close()
    assert time.monotonic() - t0 < 10.0  # a hang, not the speed (2.2 s seen at load 9)
    assert not job.running and job.outcome == "cancelled"
    assert not (ctx.models_dir / "closing").exists()
    leftovers = [p for p in ctx.models_dir.rglob(".saving-*")]
    assert leftovers == []
    assert [v for v, _ in versions(ctx.models_dir / "demo")] == [1]
    load_recipe(ctx.models_dir / "demo")  # intact


def test_retune_in_teach_mode(qtbot, ctx):
    w = MainWindow(ctx, auto_start=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.inspect.recipe_path is not None, timeout=30000)
    w.gate.unlock_with("engineer-pw")
    panel = w.teach
    panel.fill_recipes()
    panel.retune_pick.setCurrentIndex(0)
    panel.load_retune(panel.retune_pick.currentData())
    qtbot.waitUntil(lambda: panel.retune_recipe is not None and panel.retune_panel.estimate is not None,
                    timeout=5000)
    assert not panel.retune_save.isEnabled()  # nothing changed yet
    with qtbot.waitSignal(panel.retune_panel.estimate_changed, timeout=5000):
        panel.retune_panel.set_area_px(90.0)
    assert panel.retune_save.isEnabled()
    with qtbot.waitSignal(panel.recipe_saved, timeout=10000) as saved:
        assert panel.save_retune() is not None
    new = saved.args[0]
    assert load_recipe(new).min_defect_area_px == 90.0
    actions = [e.action for e in ctx.audit.entries()[0]]
    assert "min_defect_area" in actions
    w.close()


def test_import_a_folder_of_good_images(qtbot, ctx, tmp_path):
    from helpers_data import make_mvtec_category

    data = make_mvtec_category(tmp_path / "bracket", n_train=9, n_good_test=1, n_defect=1)
    (data / "train" / "good" / "broken.png").write_bytes(b"not a png")
    w = make_wizard(qtbot, ctx)
    w.part_page.picker.set_uri("folder://" + str(data))
    w.session.part_name = ""
    w.part_page.name.setText("x")
    w.next()
    job = w.samples_page.import_folder(data)
    qtbot.waitUntil(lambda: job.outcome == "finished" and not w.samples_page.busy, timeout=20000)
    qtbot.waitUntil(lambda: w.samples_page.strip.count() == 9, timeout=5000)  # the queued "finished" ran
    s = w.session
    assert len(s.images) == 9 and w.samples_page.strip.count() == 9
    assert any("broken.png" in p for p in s.problems)  # skipped and said so
    assert "broken.png" in w.samples_page.notes.text()
    assert w.samples_page.isComplete()
    w.reject()
