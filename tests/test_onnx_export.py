"""PatchCore through ONNX Runtime: parity with torch (1e-3 relative), dynamic batches, stale or
missing exports refused, and ``station export`` next to the recipe version."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from station.cli.main import main
from station.core.recipe import RecipeError, load_recipe, save_recipe
from station.detectors.base import DetectorError, SupportsOnnx, create_detector
from station.detectors.patchcore import PatchCore
from station.detectors.runtime import build_detector, detector_from_recipe, plan_runtime, recipe_runtime
from station.weights import WeightsStore, random_state_dict

SIZE = 64


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> PatchCore:
    home = tmp_path_factory.mktemp("home")
    patch = pytest.MonkeyPatch()
    patch.setenv("STATION_HOME", str(home))
    path = tmp_path_factory.mktemp("w") / "r18.pth"
    torch.save(random_state_dict("resnet18", 1), path)
    stored = WeightsStore().import_file(path, allow_custom=True)
    det = create_detector("patchcore", backbone="resnet18", weights=f"custom:{stored.sha256[:16]}",
                          input_size=SIZE, coreset_ratio=0.2, device="cpu")
    rng = np.random.default_rng(0)
    det.fit([rng.integers(90, 160, (80, 70, 3), dtype=np.uint8) for _ in range(4)])
    yield det
    patch.undo()


def images(n: int, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (80, 70, 3), dtype=np.uint8) for _ in range(n)]


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(a).max())


def test_onnx_runtime_matches_torch(fitted, tmp_path):
    assert isinstance(fitted, SupportsOnnx)
    files = fitted.export_onnx(tmp_path)
    assert {f.name for f in files} == {"patchcore.onnx", "patchcore.json"}
    ort = PatchCore.from_state(fitted.get_config(), fitted.get_state(), device="cpu",
                               backend="onnxruntime", onnx_dir=tmp_path)
    for batch in (images(1), images(3, seed=2)):  # one graph, any batch size
        a, b = fitted.predict(batch), ort.predict(batch)
        assert b.anomaly_maps.shape == a.anomaly_maps.shape
        assert relative(a.anomaly_maps, b.anomaly_maps) < 1e-3
        np.testing.assert_allclose(b.scores, a.scores, rtol=1e-3)


def test_stale_or_missing_exports_are_refused(fitted, tmp_path):
    with pytest.raises(DetectorError, match="station export"):
        PatchCore.from_state(fitted.get_config(), fitted.get_state(), backend="onnxruntime", onnx_dir=tmp_path)
    fitted.export_onnx(tmp_path)
    state = fitted.get_state()
    state["memory_bank"] = state["memory_bank"] * 1.01  # as if the part had been taught again
    with pytest.raises(DetectorError, match="another recipe version"):
        PatchCore.from_state(fitted.get_config(), state, backend="onnxruntime", onnx_dir=tmp_path)


def test_station_export_writes_next_to_the_recipe(fitted, tmp_path, capsys):
    from station.core.recipe import Recipe

    recipe = Recipe(name="p", detector_kind="patchcore", detector_config=fitted.get_config(), threshold=1.0,
                    min_defect_area_px=10.0, validation={"image_shape": [80, 70]},
                    weights=fitted.weights_info, state=fitted.get_state())
    folder = save_recipe(recipe, tmp_path / "models" / "p")
    assert main(["export", str(tmp_path / "models" / "p")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (folder / "onnx" / "patchcore.onnx").is_file() and out["max_relative_difference"] < 1e-3
    loaded = load_recipe(folder)  # the recipe itself is untouched and still verifies
    det = detector_from_recipe(loaded, device="cpu", backend="onnxruntime", onnx_dir=folder / "onnx")
    assert det.predict(images(1)).anomaly_maps.shape == (1, 80, 70)


def test_auto_backend_prefers_a_current_export_on_the_cpu(fitted, tmp_path):
    cfg, state = fitted.get_config(), fitted.get_state()

    def auto(st, onnx_dir=tmp_path):
        plan = plan_runtime("patchcore", cfg, device="cpu", backend="auto", onnx_dir=onnx_dir)
        return build_detector("patchcore", cfg, st, **plan.options)

    assert auto(state).backend == "torch"  # nothing exported yet
    assert auto(state, tmp_path / "missing").backend == "torch"
    fitted.export_onnx(tmp_path)
    assert auto(state).backend == "onnxruntime"
    stale = dict(state, memory_bank=state["memory_bank"] + 1.0)
    assert auto(stale).backend == "torch"  # an export of another memory bank is not used


def test_dynamo_exporter_is_a_working_fallback(fitted, tmp_path, monkeypatch):
    """Should a torch release drop the TorchScript exporter, the dynamo one takes over."""
    real = torch.onnx.export

    def without_torchscript(*args, **kwargs):
        if kwargs.get("dynamo") is False:
            raise RuntimeError("TorchScript-based ONNX export is not available")
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", without_torchscript)
    fitted.export_onnx(tmp_path)
    assert json.loads((tmp_path / "patchcore.json").read_text())["exporter"] == "dynamo"
    ort = PatchCore.from_state(fitted.get_config(), fitted.get_state(), device="cpu",
                               backend="onnxruntime", onnx_dir=tmp_path)
    batch = images(2, seed=5)
    assert relative(fitted.predict(batch).anomaly_maps, ort.predict(batch).anomaly_maps) < 1e-3


def test_train_can_export_for_onnx_runtime_at_once(fitted, tmp_path, capsys):
    from helpers_data import make_mvtec_category

    data = make_mvtec_category(tmp_path / "d", n_train=6, n_good_test=1, n_defect=1, size=64)
    sha = fitted.weights_info["sha256"][:16]
    assert main(["train", "--data", str(data), "--detector", "patchcore", "--out", str(tmp_path / "m"),
                 "--validation-fraction", "0.34", "--device", "cpu", "--export-onnx", "-p", "backbone=resnet18",
                 "-p", f"weights=custom:{sha}", "-p", "input_size=64", "-p", "coreset_ratio=0.2"]) == 0
    assert "ONNX export" in capsys.readouterr().out
    recipe = load_recipe(tmp_path / "m")
    assert (recipe.path / "onnx" / "patchcore.onnx").is_file()
    assert detector_from_recipe(recipe, **recipe_runtime(recipe, device="cpu")).backend == "onnxruntime"


# --- the int8 CPU version (quantize.py, int8_recipe.py) -------------------------------------------------
def test_int8_model_quantizes_every_backbone_convolution(fitted, tmp_path):
    files = fitted.export_onnx(tmp_path, int8_calibration=images(6, seed=3))
    assert "patchcore_int8.onnx" in {f.name for f in files}
    record = json.loads((tmp_path / "patchcore.json").read_text())["int8"]
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in fitted._network().extractor.modules())
    assert record["quantized_convolutions"] == convs and record["calibration_images"] == 6
    cfg, state = fitted.get_config(), fitted.get_state()
    i8 = PatchCore.from_state(cfg, state, backend="onnxruntime", onnx_dir=tmp_path, onnx_precision="int8")
    f32 = PatchCore.from_state(cfg, state, backend="onnxruntime", onnx_dir=tmp_path)
    assert (i8.onnx_model, f32.onnx_model) == ("int8", "float32")
    batch = images(3, seed=4)
    a, b = f32.predict(batch).anomaly_maps, i8.predict(batch).anomaly_maps
    assert b.shape == a.shape and np.isfinite(b).all()
    assert not np.allclose(a, b)  # it is another model ...
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9  # ... that sees the same things
    fitted.export_onnx(tmp_path)  # a plain export drops the int8 model, which no longer matches
    assert not (tmp_path / "patchcore_int8.onnx").exists()
    with pytest.raises(DetectorError, match="no int8 model"):
        PatchCore.from_state(cfg, state, backend="onnxruntime", onnx_dir=tmp_path, onnx_precision="int8")


def _taught_part(fitted, tmp_path) -> tuple:
    from helpers_data import make_mvtec_category

    data = make_mvtec_category(tmp_path / "d", n_train=9, n_good_test=1, n_defect=1, size=64)
    sha = fitted.weights_info["sha256"][:16]
    assert main(["train", "--data", str(data), "--detector", "patchcore", "--out", str(tmp_path / "m"),
                 "--validation-fraction", "0.34", "--device", "cpu", "-p", "backbone=resnet18",
                 "-p", f"weights=custom:{sha}", "-p", "input_size=64", "-p", "coreset_ratio=0.2"]) == 0
    return data, tmp_path / "m"


def test_station_export_int8_saves_a_cpu_version_with_its_own_threshold(fitted, tmp_path, capsys):
    from station.core.inspection import Inspector
    from station.core.teach import validation_estimator

    data, part = _taught_part(fitted, tmp_path)
    capsys.readouterr()
    assert main(["export", str(part), "--int8", "--calibration-images", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    v1, v2 = load_recipe(part / "v0001"), load_recipe(part)
    assert v2.version == 2 and out["recipe"] == str(v2.path)
    assert v2.detector_config["onnx_precision"] == "int8" and v1.detector_config["onnx_precision"] == "float32"
    assert out["validation_images"] == v1.validation["n_images"] == 3 and out["calibration_images"] == 4
    assert out["max_relative_difference_float32"] < 1e-3
    # the int8 threshold is the paper's estimate on the int8 model's own validation maps
    assert v2.threshold == pytest.approx(validation_estimator(v2).estimate(v2.min_defect_area_px).threshold)
    assert v2.threshold != v1.threshold
    assert not (v1.path / "onnx").exists()  # the float32 version is untouched
    det = detector_from_recipe(v2, **recipe_runtime(v2, device="cpu"))
    assert (det.backend, det.onnx_model) == ("onnxruntime", "int8")
    result = Inspector(v2, det).inspect(images(1, seed=6)[0])
    assert result.verdict in ("OK", "NG")
    with pytest.raises(RecipeError, match="int8"):  # torch would give other maps than the threshold's
        detector_from_recipe(v2, device="cpu", backend="torch")
    capsys.readouterr()
    assert main(["export", str(part)]) != 0  # a plain export would drop its int8 model
    assert "is an int8 version" in capsys.readouterr().err
    # re-tuning the area keeps the int8 model with the new version (its maps are the stored ones)
    assert main(["retune", str(part), "--min-area", str(v2.min_defect_area_px * 2)]) == 0
    v3 = load_recipe(part)
    assert v3.version == 3 and (v3.path / "onnx" / "patchcore_int8.onnx").is_file()
    assert detector_from_recipe(v3, **recipe_runtime(v3, device="cpu")).onnx_model == "int8"


def test_int8_asks_for_good_images_when_the_teaching_folder_is_gone(fitted, tmp_path, capsys):
    import shutil

    from station.core.golden import add_golden_part, golden_parts

    data, part = _taught_part(fitted, tmp_path)
    v1 = load_recipe(part)
    add_golden_part(v1, "ok_ref", images(1, seed=7)[0], "OK")
    save_recipe(v1, part)  # v2, with a golden part
    moved = shutil.move(str(data), str(tmp_path / "elsewhere"))
    capsys.readouterr()
    assert main(["export", str(part), "--int8"]) != 0
    assert "--calibration-data" in capsys.readouterr().err
    assert sorted(p.name for p in part.iterdir() if not p.name.startswith(".")) == ["v0001", "v0002"]  # nothing half-made
    assert main(["export", str(part), "--int8", "--calibration-data", str(moved)]) == 0
    i8 = load_recipe(part)
    assert i8.detector_config["onnx_precision"] == "int8"
    assert [p.name for p in golden_parts(i8)] == ["ok_ref"]  # the int8 version carries the golden parts
    np.testing.assert_array_equal(golden_parts(i8)[0].image, images(1, seed=7)[0])


def test_a_graph_the_quantizer_cannot_handle_is_one_clear_error(fitted, tmp_path, capsys, monkeypatch):
    from station.detectors.patchcore import quantize

    _, part = _taught_part(fitted, tmp_path)

    def unusable(*args, **kwargs):
        raise quantize.QuantizationError("found 3 of the backbone's 20 convolutions")

    monkeypatch.setattr(quantize, "quantize_backbone", unusable)
    capsys.readouterr()
    assert main(["export", str(part), "--int8"]) != 0
    assert "no int8 model could be made" in capsys.readouterr().err
    assert [p.name for p in part.iterdir()] == ["v0001"]  # no version, no temporary folder left

