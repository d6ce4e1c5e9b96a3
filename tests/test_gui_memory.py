"""What the teach-in wizard and Review let go of (issue 13 item 9): nothing of a closed wizard and
nothing of replaced review results stays referenced, without a collection by the test. How much memory
that gives back is the benchmark's matter (tools/window_memory.py, docs/benchmarks.md)."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
from helpers_data import make_mvtec_category
from helpers_detector import register_test_detector

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

from station.core.spool import ArraySpool  # noqa: E402
from station.gui.review_mode import ReviewPanel  # noqa: E402
from station.gui.teach_mode import TeachPanel  # noqa: E402


@pytest.fixture(autouse=True)
def _test_detector():
    register_test_detector()


def test_a_closed_wizard_leaves_its_samples_and_training_behind(qtbot, ctx, rng):
    panel = TeachPanel(ctx, lambda *a: None)
    qtbot.addWidget(panel)
    wizard = panel.open_wizard()
    s = wizard.session
    s.part_name, s.detector_kind = "leak-check", "test-zscore"
    for i in range(8):
        s.add_image((rng.random((48, 48, 3)) * 255).astype(np.uint8), f"sample {i}")
    s.train()
    sample, trained, session = weakref.ref(s.images[0]), weakref.ref(s.result), weakref.ref(s)
    del s
    with qtbot.waitSignal(wizard.closed, timeout=5000):
        wizard.reject()
    del wizard
    assert panel.wizard is None
    # the window's own release (a full collection from the event loop) frees the wizard's cycles
    qtbot.waitUntil(lambda: session() is None and sample() is None and trained() is None, timeout=5000)


def test_review_results_replaced_by_a_new_run_are_let_go(qtbot, ctx, tmp_path):
    data = make_mvtec_category(tmp_path / "part", n_train=6, n_good_test=2, n_defect=1, size=64)
    panel = ReviewPanel(ctx, lambda *a: None)
    qtbot.addWidget(panel)
    panel.set_request(data, recipe=None, detector="test-zscore")
    with qtbot.waitSignal(panel.scored, timeout=30000):
        panel.score()
    first = panel.outcome
    assert isinstance(first.result.maps, ArraySpool) and len(first.result.maps) == 4  # on disk, not in memory
    job = panel.export(tmp_path / "report")  # the export's worker must not keep the results either
    qtbot.waitUntil(lambda j=job: j.outcome is not None, timeout=30000)
    old, old_map = weakref.ref(first), weakref.ref(first.result.maps)
    del first, job
    panel.set_request(data, recipe=str(panel.ctx.models_dir / "part" / "v0001"))
    with qtbot.waitSignal(panel.scored, timeout=30000):
        panel.score()
    assert panel.outcome is not None and panel.model.rowCount() == 4
    qtbot.waitUntil(lambda: old() is None and old_map() is None, timeout=5000)
