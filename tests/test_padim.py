"""PaDiM on small inputs (ResNet-18, seeded random weights imported through the real import path): the
Gaussian statistics and Mahalanobis maps against direct reference computations, fitting and
predicting, recipes, ONNX Runtime parity, ``station train/eval/export`` and ``station bench``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers_data import make_mvtec_category, part_images, with_defect

from station.bench import BenchConfig, run_case
from station.cli.main import main
from station.core.progress import Cancelled, CancelToken
from station.core.recipe import Recipe, load_recipe, save_recipe
from station.detectors.base import (
    DetectorError,
    SupportsOnnx,
    available_detectors,
    create_detector,
    detector_class,
)
from station.detectors.padim import PaDiM
from station.detectors.padim import detector as detector_module
from station.detectors.padim.gaussian import GaussianAccumulator, inverse_spd, random_channels
from station.detectors.padim.network import ChannelSelection, Mahalanobis
from station.detectors.runtime import build_detector
from station.weights import WeightsError

SIZE = 64  # network input: an 8x8 feature grid, fast on two cores


@pytest.fixture(autouse=True)
def _home(store_home, monkeypatch):
    monkeypatch.setenv("STATION_HOME", str(store_home))


def make(custom_weights: str, **kw) -> PaDiM:
    return create_detector("padim", **{"backbone": "resnet18", "weights": custom_weights, "input_size": SIZE,
                                       "n_features": 40, "device": "cpu", **kw})


@pytest.fixture(scope="module")
def fitted(custom_weights) -> PaDiM:
    det = make(custom_weights)
    det.fit(part_images(12))
    return det


# --- the building blocks against direct reference computations -------------------------------------------
def reference_gaussians(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's formulas, literally, in float64: ``x`` is ``(N, D, h, w)``."""
    n, d, h, w = x.shape
    flat = x.double().permute(2, 3, 0, 1).reshape(h * w, n, d)
    mean = flat.mean(1)
    cov = torch.stack([torch.cov(flat[p].T) for p in range(h * w)]) + eps * torch.eye(d, dtype=torch.float64)
    return mean, torch.linalg.inv(cov)


def test_streamed_gaussians_match_the_papers_formulas():
    torch.manual_seed(0)
    # a large common offset: naive float32 sums of x x^T would lose the covariance to cancellation
    x = 500.0 + torch.randn(23, 6, 3, 4) * torch.linspace(0.5, 3.0, 6).view(1, 6, 1, 1)
    acc = GaussianAccumulator(12, 6)
    for part in torch.split(x, [1, 8, 5, 9]):  # uneven batches: one pass, any batching
        acc.add(part)
    mean, inverse = acc.finish(0.01)
    ref_mean, ref_inverse = reference_gaussians(x, 0.01)
    torch.testing.assert_close(mean.double(), ref_mean, rtol=1e-6, atol=1e-4)
    torch.testing.assert_close(inverse.double(), ref_inverse, rtol=2e-3, atol=1e-4)
    assert mean.dtype == inverse.dtype == torch.float32 and inverse.shape == (12, 6, 6)


def test_one_image_gives_the_regulariser_alone_and_bad_shapes_are_refused():
    acc = GaussianAccumulator(4, 3)
    acc.add(torch.ones(1, 3, 2, 2))
    _, inverse = acc.finish(0.5)
    torch.testing.assert_close(inverse, torch.eye(3).expand(4, 3, 3) * 2.0)
    with pytest.raises(ValueError, match="do not fit"):
        GaussianAccumulator(4, 3).add(torch.ones(1, 5, 2, 2))
    with pytest.raises(ValueError, match="positive definite"):
        inverse_spd(torch.zeros(2, 3, 3, dtype=torch.float64))


def test_inverse_of_large_batched_matrices():
    # torch 2.14's batched LU inverse fails with oneMKL errors here (2 threads, as the bench runs,
    # batches of matrices above 128 x 128); the Cholesky inverse does not
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        a = torch.randn(8, 152, 200, dtype=torch.float64)
        spd = a @ a.transpose(1, 2) / 200 + 0.01 * torch.eye(152, dtype=torch.float64)
        eye = torch.eye(152, dtype=torch.float64).expand(8, 152, 152)
        torch.testing.assert_close(inverse_spd(spd) @ spd, eye, rtol=0, atol=1e-8)
    finally:
        torch.set_num_threads(threads)


def test_random_channels_are_a_seeded_sorted_subset():
    a = random_channels(448, 100, seed=3)
    assert len(a) == 100 and len(set(a.tolist())) == 100 and (np.diff(a) > 0).all() and a.max() < 448
    np.testing.assert_array_equal(a, random_channels(448, 100, seed=3))
    assert not np.array_equal(a, random_channels(448, 100, seed=4))
    np.testing.assert_array_equal(random_channels(128, 500, seed=0), np.arange(128))
    with pytest.raises(ValueError):
        random_channels(10, 0, seed=0)


def test_channel_selection_equals_choosing_after_upsampling_and_concatenating():
    torch.manual_seed(1)
    f8, f16 = torch.randn(2, 5, 8, 6), torch.randn(2, 7, 4, 3)
    channels = torch.tensor([0, 3, 5, 6, 11])  # from both taps
    ours = ChannelSelection((5, 7), channels)((f8, f16))
    full = torch.cat([f8, F.interpolate(f16, size=(8, 6), mode="bilinear", align_corners=False)], 1)
    torch.testing.assert_close(ours, full[:, channels])
    only_first = ChannelSelection((5, 7), torch.tensor([1, 2]))((f8, f16))
    torch.testing.assert_close(only_first, f8[:, [1, 2]])
    with pytest.raises(ValueError, match="sorted"):
        ChannelSelection((5, 7), torch.tensor([3, 1]))
    with pytest.raises(ValueError, match="lie in"):
        ChannelSelection((5, 7), torch.tensor([12]))


def test_mahalanobis_matches_the_definition():
    torch.manual_seed(2)
    h, w, d = 3, 2, 4
    mean = torch.randn(h, w, d)
    a = torch.randn(h, w, d, d)
    inverse = a @ a.transpose(-1, -2) + torch.eye(d)
    x = torch.randn(3, d, h, w)
    ours = Mahalanobis(mean, inverse)(x)
    ref = torch.empty(3, h, w)
    for b in range(3):
        for i in range(h):
            for j in range(w):
                q = x[b, :, i, j] - mean[i, j]
                ref[b, i, j] = torch.sqrt(q @ inverse[i, j] @ q)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="grid"):
        Mahalanobis(mean, inverse)(torch.randn(1, d, 4, 4))


# --- the detector ---------------------------------------------------------------------------------------
def test_registry_parameters_and_per_backbone_feature_counts(custom_weights):
    assert detector_class("padim") is PaDiM and "padim" in [i.kind for i in available_detectors()]
    assert make(custom_weights, n_features=None).n_features == 100  # the paper's count for ResNet-18
    assert detector_module.default_features("wide_resnet50_2") == 550
    assert detector_module.default_features("mobilenet_v2") == 64 and PaDiM().backbone == "mobilenet_v2"
    for bad in ({"n_features": 0}, {"epsilon": 0}, {"sigma": -1}, {"backbone": "vgg"}, {"backend": "tpu"}):
        with pytest.raises(ValueError):
            make(custom_weights, **bad)
    with pytest.raises(TypeError):
        make(custom_weights, coreset_ratio=0.1)  # PaDiM has no coreset


def test_fit_and_predict_find_the_defect(fitted):
    good = part_images(4, seed=9)
    bad = [with_defect(im) for im in part_images(2, seed=10)]
    pred = fitted.predict(good + bad)
    assert pred.anomaly_maps.shape == (6, 72, 88) and pred.anomaly_maps.dtype == np.float32
    assert pred.scores[4:].min() > pred.scores[:4].max()
    for m, s in zip(pred.anomaly_maps, pred.scores, strict=True):  # at the network size, restored after
        assert s == pytest.approx(m.max(), rel=0.05)
    for m in pred.anomaly_maps[4:]:
        y, x = np.unravel_index(np.argmax(m), m.shape)
        assert 2 <= y <= 30 and 50 <= x <= 80  # the defect sits at rows 10-22, columns 60-72
    assert fitted.predict([np.zeros((130, 97, 3), np.uint8)]).anomaly_maps.shape == (1, 130, 97)
    assert fitted.predict([np.zeros((50, 40), np.uint8)]).anomaly_maps.shape == (1, 50, 40)  # gray in


def test_fit_statistics_progress_state_and_records(custom_weights):
    det = make(custom_weights, seed=5)
    seen = []
    stats = det.fit(part_images(5), progress=seen.append)
    assert stats["n_images"] == 5 and stats["feature_grid"] == [8, 8] and stats["feature_dim"] == 40
    assert stats["channels_available"] == 128 + 256
    assert {p.stage for p in seen} == {"extracting features", "inverting covariances"}
    state = det.get_state()
    assert state["mean"].shape == (8, 8, 40) and state["inverse_covariance"].shape == (8, 8, 40, 40)
    np.testing.assert_array_equal(state["channels"], random_channels(384, 40, seed=5))
    assert det.get_config()["weights_info"]["source"] == "custom" and det.get_config()["n_features"] == 40


def test_cancel_stops_fitting(custom_weights):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        make(custom_weights).fit(part_images(3), cancel=token)


def test_too_large_gaussians_are_refused_in_one_line(custom_weights, monkeypatch):
    monkeypatch.setattr(detector_module, "MEMORY_SHARE", 1e-9)
    with pytest.raises(ValueError, match="lower n_features or input_size"):
        make(custom_weights).fit(part_images(2))


def test_recipe_round_trip_and_checks(fitted, tmp_path):
    recipe = Recipe(name="p", detector_kind="padim", detector_config=fitted.get_config(), threshold=1.0,
                    min_defect_area_px=10.0, weights=fitted.weights_info, state=fitted.get_state())
    folder = save_recipe(recipe, tmp_path / "models" / "p")
    assert (folder / "tensors.safetensors").is_file()
    loaded = load_recipe(folder)
    again = PaDiM.from_state(loaded.detector_config, loaded.detector_state(), device="cpu")
    images = part_images(2, seed=4)
    a, b = fitted.predict(images), again.predict(images)
    np.testing.assert_array_equal(a.anomaly_maps, b.anomaly_maps)
    state = fitted.get_state()
    with pytest.raises(DetectorError, match="inverse_covariance"):
        PaDiM.from_state(fitted.get_config(), {k: v for k, v in state.items() if k != "inverse_covariance"})
    with pytest.raises(DetectorError, match="malformed"):
        PaDiM.from_state(fitted.get_config(), {**state, "channels": state["channels"][:3]})
    with pytest.raises(DetectorError, match="does not fit its backbone"):
        PaDiM.from_state(fitted.get_config(), {**state, "channels": state["channels"] + 1000}, device="cpu")
    other = {**fitted.get_config(), "weights_info": {**fitted.weights_info, "sha256": "0" * 64}}
    with pytest.raises(WeightsError):
        PaDiM.from_state(other, state, device="cpu")


def test_onnx_runtime_matches_torch_and_refuses_stale_exports(fitted, tmp_path):
    assert isinstance(fitted, SupportsOnnx)
    with pytest.raises(DetectorError, match="station export"):
        PaDiM.from_state(fitted.get_config(), fitted.get_state(), backend="onnxruntime", onnx_dir=tmp_path)
    files = fitted.export_onnx(tmp_path)
    assert {f.name for f in files} == {"padim.onnx", "padim.json"}
    ort = PaDiM.from_state(fitted.get_config(), fitted.get_state(), device="cpu", backend="onnxruntime",
                           onnx_dir=tmp_path)
    for batch in (part_images(1, seed=3), [with_defect(im) for im in part_images(3, seed=2)]):  # any batch
        a, b = fitted.predict(batch), ort.predict(batch)
        rel = np.abs(a.anomaly_maps - b.anomaly_maps).max() / np.abs(a.anomaly_maps).max()
        assert b.anomaly_maps.shape == a.anomaly_maps.shape and rel < 1e-3
        np.testing.assert_allclose(b.scores, a.scores, rtol=1e-3)
    auto = build_detector("padim", fitted.get_config(), fitted.get_state(), device="cpu", backend="auto",
                          onnx_dir=tmp_path)
    assert auto.backend == "onnxruntime"  # a current export is the CPU path
    state = fitted.get_state()
    state["mean"] = state["mean"] + 0.5  # as if the part had been taught again
    with pytest.raises(DetectorError, match="another recipe version"):
        PaDiM.from_state(fitted.get_config(), state, backend="onnxruntime", onnx_dir=tmp_path)
    assert build_detector("padim", fitted.get_config(), state, device="cpu", backend="auto",
                          onnx_dir=tmp_path).backend == "torch"
    with pytest.raises(ValueError, match="unknown backend"):  # "auto" is the runtime's decision, not PaDiM's
        PaDiM(backend="auto")


# --- through the station's tools --------------------------------------------------------------------------
def test_station_train_eval_export_inspect(custom_weights, tmp_path, capsys):
    data = make_mvtec_category(tmp_path / "data" / "disc", n_train=10, n_good_test=3, n_defect=3)
    part = tmp_path / "models" / "disc"
    assert main(["train", "--data", str(data), "--detector", "padim", "--out", str(part), "--validation-fraction",
                 "0.2", "-p", "backbone=resnet18", "-p", f"weights={custom_weights}", "-p", f"input_size={SIZE}",
                 "-p", "n_features=30", "--device", "cpu"]) == 0
    recipe = load_recipe(part)
    assert recipe.detector_kind == "padim" and recipe.weights["source"] == "custom"
    assert main(["eval", "--data", str(data), "--recipe", str(part), "--out", str(tmp_path / "eval")]) == 0
    overall = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]["overall"]
    assert overall["n_images"] == 9 and overall["image_roc_auc_map_max"] > 0.5
    capsys.readouterr()
    assert main(["export", str(part)]) == 0
    assert json.loads(capsys.readouterr().out)["max_relative_difference"] < 1e-3
    assert main(["inspect-image", str(part), str(data / "test" / "good" / "000.png")]) in (0, 1)


def test_bench_measures_padim_through_torch_and_onnx_runtime():
    config = BenchConfig(n_fit=3, n_test=2, repeats=3, warmup=1, threads=2, isolate=False, synthetic=True,
                         synthetic_size=96, params={"padim": {"backbone": "resnet18", "weights": "random",
                                                              "input_size": SIZE, "n_features": 30}})
    row = run_case("padim", "cpu", config)
    assert "error" not in row, row.get("traceback")
    assert row["fit_s"] > 0 and row["weights"]["source"] == "random" and row["native"]["backend"] == "torch"
    for backend in ("native", "onnxruntime"):
        assert row[backend]["batch1"]["n"] == 3 and row[backend]["batch8_images_per_s"] > 0
    assert row["onnxruntime"]["max_relative_difference_vs_torch"] < 1e-3
    assert "onnxruntime_int8" not in row  # no int8 model for PaDiM
