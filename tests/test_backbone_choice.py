"""Choosing a backbone on the line PC: every offered backbone has a record that says what was measured
(and what was not), the fast measured one is suggested without a GPU, and the teach-in wizard shows
that note under its backbone choice, following the selection."""

from __future__ import annotations

import pytest

from station.weights import TAPS
from station.weights.choice import RECORDS, backbone_note, suggested_backbone


def test_every_backbone_has_a_record_and_unmeasured_says_so():
    assert set(RECORDS) == set(TAPS)
    for record in RECORDS.values():
        text = record.describe()
        assert ("unmeasured" in text) == (record.quality is None or record.cpu_ms is None or record.gpu_ms is None)
    assert "GPU unmeasured" in RECORDS["mobilenet_v2"].describe()  # no GPU was lent for these numbers


def test_the_fast_measured_backbone_is_suggested_without_a_gpu():
    assert suggested_backbone(has_gpu=False) == "mobilenet_v2"
    assert RECORDS["mobilenet_v2"].quality is not None  # suggested because it was measured with real weights
    assert suggested_backbone(has_gpu=True) == "wide_resnet50_2"
    note = backbone_note("wide_resnet50_2", has_gpu=False)
    assert note.startswith("WideResNet-50-2") and "Suggested on this PC (without a GPU): MobileNetV2" in note
    assert backbone_note("mobilenet_v2", has_gpu=False).endswith("Suggested on this PC (without a GPU).")


@pytest.mark.gui
def test_the_wizard_shows_the_note_under_the_backbone(qtbot, ctx):
    pytest.importorskip("pytestqt")
    from helpers_wizard import wizard_at_detector
    from PySide6.QtWidgets import QLabel

    from station.core.devices import cuda_available

    w = wizard_at_detector(qtbot, ctx, "patchcore", 4, timeout=60000)
    note = w.detector_page.findChild(QLabel, "backbone_note")
    combo = w.detector_page.editors["backbone"][0]
    assert "mobilenet_v2" in [combo.itemText(i) for i in range(combo.count())]
    assert note.text() == backbone_note(combo.currentText(), cuda_available())
    combo.setCurrentText("mobilenet_v2")
    assert note.text().startswith("MobileNetV2: bottle image/pixel ROC AUC")
