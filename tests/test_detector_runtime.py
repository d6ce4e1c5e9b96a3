"""Detectors declare what they can do (DetectorInfo); station.detectors.runtime acts on it: one device
pick, the recipe's onnx/ folder, and what backend="auto" means. No torch needed."""

from __future__ import annotations

import numpy as np
import pytest

from station.core.devices import DeviceChoice
from station.core.recipe import Recipe
from station.detectors import base, runtime
from station.detectors.base import DetectorInfo, detector_info


def test_builtin_detectors_declare_their_capabilities():
    variation, patchcore, ae = (detector_info(k) for k in ("variation", "patchcore", "autoencoder"))
    assert not variation.uses_device and not variation.onnx and variation.runtime == ()
    assert patchcore.uses_device and patchcore.onnx and patchcore.int8
    assert ae.uses_device and ae.onnx and not ae.int8 and ae.color_mode == "gray"
    padim = detector_info("padim")
    assert padim.uses_device and padim.onnx and not padim.int8


def test_a_declaration_must_be_consistent():
    with pytest.raises(ValueError, match="unknown runtime options"):
        DetectorInfo("x", "m:C", "X", "x", runtime=("device", "gpu_count"))
    with pytest.raises(ValueError, match="must take 'backend' and 'onnx_dir'"):
        DetectorInfo("x", "m:C", "X", "x", runtime=("device",), onnx=True)


@pytest.fixture
def torch_kind(monkeypatch):
    """A registered detector that declares torch and ONNX, and a pick_device that counts its calls."""
    monkeypatch.setitem(base._REGISTRY, "fake-deep", DetectorInfo(
        "fake-deep", "nowhere:Fake", "Fake", "test only",
        runtime=("device", "backend", "onnx_dir", "threads"), onnx=True, int8=True))
    calls = []

    def pick(preference="auto"):
        calls.append(preference)
        return DeviceChoice("cuda" if preference in ("auto", "cuda") else "cpu", f"picked {preference}")

    monkeypatch.setattr(runtime, "pick_device", pick)
    return calls


def test_the_device_is_picked_once_and_only_for_detectors_that_take_one(torch_kind):
    plan = runtime.plan_runtime("variation", device="cuda", backend="auto", threads=4)
    assert plan.options == {} and plan.device_name == "CPU" and torch_kind == []  # torch never asked
    plan = runtime.plan_runtime("fake-deep", device="auto", threads=4, inference_batch=3)
    assert torch_kind == ["auto"]
    assert plan.options["device"] == "cuda" and plan.device_name == "picked auto"
    assert plan.options["threads"] == 4 and "inference_batch" not in plan.options  # not declared
    assert runtime.plan_new("fake-deep", "cpu").options == {"device": "cpu"}


def test_auto_backend(torch_kind, tmp_path):
    (tmp_path / "onnx").mkdir()
    on_gpu = runtime.plan_runtime("fake-deep", {}, device="auto", onnx_dir=tmp_path / "onnx")
    assert on_gpu.options["backend"] == "torch"  # torch is the fast path on a GPU
    no_export = runtime.plan_runtime("fake-deep", {}, device="cpu", onnx_dir=tmp_path / "missing")
    assert no_export.options["backend"] == "torch" and no_export.options["onnx_dir"] == tmp_path / "missing"
    cpu = runtime.plan_runtime("fake-deep", {}, device="cpu", onnx_dir=tmp_path / "onnx")
    assert cpu.options["backend"] == "auto"  # settled by build_detector: the export, or torch if stale
    picks = len(torch_kind)
    int8 = runtime.plan_runtime("fake-deep", {"onnx_precision": "int8"}, device="cuda", onnx_dir=tmp_path)
    assert int8.options["backend"] == "onnxruntime" and int8.options["device"] == "cpu"
    assert torch_kind[picks:] == ["cpu"]  # an int8 version never asks for a GPU
    forced = runtime.plan_runtime("fake-deep", {}, device="cpu", backend="onnxruntime", onnx_dir=tmp_path)
    assert forced.options["backend"] == "onnxruntime"
    with pytest.raises(ValueError, match="unknown backend"):
        runtime.plan_runtime("fake-deep", {}, backend="tensorrt")


class _Recorder:
    """from_state records the options it was given; an ONNX export of 'stale' weights is refused."""

    kind = "fake-deep"
    seen: list[dict] = []

    @classmethod
    def from_state(cls, config, state, **options):
        from station.detectors.base import DetectorError

        cls.seen.append(options)
        if options.get("backend") == "onnxruntime" and config.get("stale"):
            raise DetectorError("the ONNX export was made from another recipe version")
        return cls()


def test_build_detector_falls_back_to_torch_only_for_auto(torch_kind, monkeypatch, tmp_path):
    monkeypatch.setattr(runtime, "detector_class", lambda kind: _Recorder)
    _Recorder.seen = []
    runtime.build_detector("fake-deep", {"stale": True}, {}, device="cpu", backend="auto", onnx_dir=tmp_path)
    assert [o["backend"] for o in _Recorder.seen] == ["onnxruntime", "torch"]
    from station.core.recipe import RecipeError

    with pytest.raises(RecipeError, match="another recipe version"):  # asked for, a stale export is the recipe's error
        runtime.build_detector("fake-deep", {"stale": True}, {}, device="cpu", backend="onnxruntime")


def test_recipe_runtime_uses_the_versions_onnx_folder(torch_kind, tmp_path):
    recipe = Recipe(name="p", detector_kind="fake-deep", detector_config={}, threshold=1.0,
                    min_defect_area_px=1.0, state={"x": np.zeros(1, np.float32)}, path=tmp_path / "v0001")
    (tmp_path / "v0001" / runtime.ONNX_SUBDIR).mkdir(parents=True)
    options = runtime.recipe_runtime(recipe, device="cpu")
    assert options["onnx_dir"] == tmp_path / "v0001" / "onnx" and options["backend"] == "auto"
    unsaved = Recipe(name="p", detector_kind="fake-deep", detector_config={}, threshold=1.0, min_defect_area_px=1.0)
    assert "onnx_dir" not in runtime.recipe_runtime(unsaved, device="cpu")
