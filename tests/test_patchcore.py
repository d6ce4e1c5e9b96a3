"""PatchCore on small inputs (ResNet-18, seeded random weights imported through the real import path):
the paper's building blocks against direct reference implementations, fitting and predicting,
recipes and weights records, devices and memory fallbacks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers_data import part_images, with_defect

from station.core.devices import DeviceChoice
from station.core.progress import Cancelled, CancelToken
from station.core.recipe import load_recipe, save_recipe
from station.detectors.base import create_detector, detector_class
from station.detectors.patchcore import PatchCore
from station.detectors.patchcore import detector as detector_module
from station.detectors.patchcore.coreset import greedy_coreset, nearest_in_bank, sparse_random_projection
from station.detectors.patchcore.embedding import PatchEmbedding
from station.detectors.patchcore.geometry import InputGeometry
from station.detectors.patchcore.network import GaussianBlur, PatchScorer
from station.detectors.runtime import load_inspector, teach_detector
from station.weights import WeightsError

SIZE = 64  # network input: an 8x8 feature grid, fast on two cores


@pytest.fixture(autouse=True)
def _home(store_home, monkeypatch):
    monkeypatch.setenv("STATION_HOME", str(store_home))


def make(custom_weights: str, **kw) -> PatchCore:
    params = {"backbone": "resnet18", "weights": custom_weights, "input_size": SIZE, "coreset_ratio": 0.25,
              "device": "cpu", **kw}
    return create_detector("patchcore", **params)


@pytest.fixture(scope="module")
def fitted(custom_weights) -> PatchCore:
    det = make(custom_weights)
    det.fit(part_images(6))
    return det


# --- the building blocks against reference implementations ---------------------------------------------
def reference_paper_embedding(f2: torch.Tensor, f3: torch.Tensor, dim: int, pre: int = 1024) -> torch.Tensor:
    """The authors' code, literally: unfold 3x3 patches, upsample layer3's patches, adaptive average
    pooling per layer (MeanMapper) and over the stacked layers (Aggregator)."""
    b, _, h2, w2 = f2.shape
    _, c3, h3, w3 = f3.shape
    u2 = F.unfold(f2, 3, padding=1).reshape(b, f2.shape[1], 3, 3, h2 * w2).permute(0, 4, 1, 2, 3)
    u3 = F.unfold(f3, 3, padding=1).reshape(b, c3, 3, 3, h3, w3).reshape(-1, h3, w3)
    u3 = F.interpolate(u3.unsqueeze(1), size=(h2, w2), mode="bilinear", align_corners=False).squeeze(1)
    u3 = u3.reshape(b, c3, 3, 3, h2 * w2).permute(0, 4, 1, 2, 3)
    pooled = [F.adaptive_avg_pool1d(u.reshape(-1, 1, u[0, 0].numel()), pre).squeeze(1) for u in (u2, u3)]
    stacked = torch.stack(pooled, 1).reshape(-1, 1, 2 * pre)
    return F.adaptive_avg_pool1d(stacked, dim).reshape(b, h2, w2, dim).permute(0, 3, 1, 2)


@pytest.mark.parametrize("channels,dim", [((512, 1024), 1024), ((128, 256), 1024), ((128, 256), 100), ((64, 96), 300)])
def test_paper_embedding_matches_the_reference_code(channels, dim):
    torch.manual_seed(0)
    f2, f3 = torch.rand(2, channels[0], 8, 8), torch.rand(2, channels[1], 4, 4)
    ours = PatchEmbedding(channels, "paper", dim)(f2, f3)
    ref = reference_paper_embedding(f2, f3, dim)
    assert ours.shape == (2, dim, 8, 8)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def test_wide_resnet_projection_is_cheap():
    emb = PatchEmbedding((512, 1024), "paper", 1024)
    assert [p.groups for p in emb.projections] == [512, 512]  # depthwise-like, not a dense 3x3 conv


def test_concat_layout_is_anomalibs():
    torch.manual_seed(1)
    f2, f3 = torch.rand(1, 8, 8, 8), torch.rand(1, 16, 4, 4)
    out = PatchEmbedding((8, 16), "concat")(f2, f3)
    ref = torch.cat([F.avg_pool2d(f2, 3, 1, 1),
                     F.interpolate(F.avg_pool2d(f3, 3, 1, 1), size=(8, 8), mode="bilinear")], 1)
    torch.testing.assert_close(out, ref)


def reference_greedy(x: np.ndarray, size: int, start: int) -> list[int]:
    chosen, min_d = [start], np.linalg.norm(x - x[start], axis=1)
    for _ in range(size - 1):
        nxt = int(np.argmax(min_d))
        chosen.append(nxt)
        min_d = np.minimum(min_d, np.linalg.norm(x - x[nxt], axis=1))
    return chosen


def test_greedy_coreset_matches_the_definition():
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(500, 16)) * rng.uniform(0.2, 3, size=(500, 1)) + 40).astype(np.float32)
    idx = greedy_coreset(torch.from_numpy(x.T.copy()), 25, seed=7).tolist()
    start = int(np.random.default_rng(7).integers(500))
    assert idx == reference_greedy(x.astype(np.float64), 25, start)
    assert len(set(idx)) == 25


def test_sparse_projection_is_seeded_and_sparse():
    a, b = sparse_random_projection(1024, 128, 0), sparse_random_projection(1024, 128, 0)
    assert torch.equal(a, b) and not torch.equal(a, sparse_random_projection(1024, 128, 1))
    density = float((a != 0).float().mean())
    assert 0.5 / 32 < density < 2.0 / 32  # 1 / sqrt(1024)
    # distances are roughly preserved (Johnson-Lindenstrauss)
    x = torch.randn(50, 1024)
    ratio = torch.pdist(x @ a) / torch.pdist(x)
    assert 0.6 < float(ratio.mean()) < 1.4


def test_support_sets_start_with_the_row_itself():
    rng = np.random.default_rng(0)
    bank = torch.from_numpy(rng.normal(size=(40, 8)).astype(np.float32))
    bank[5] = bank[4]  # a duplicate must still list itself first
    sup = nearest_in_bank(bank, 4)
    assert sup[:, 0].tolist() == list(range(40))
    d = torch.cdist(bank, bank)
    for i in (0, 17, 39):
        assert set(sup[i].tolist()) == set(torch.topk(d[i], 4, largest=False).indices.tolist()) or sup[i, 1] in (4, 5)


def test_scorer_matches_the_papers_equations():
    rng = np.random.default_rng(2)
    bank = torch.from_numpy(rng.normal(size=(30, 6)).astype(np.float32)) + 100.0  # far from 0: cancellation
    support = nearest_in_bank(bank, 3)
    emb = torch.from_numpy(rng.normal(size=(2, 6, 3, 4)).astype(np.float32)) + 100.0
    patch, score = PatchScorer(bank, support)(emb)
    q = emb.permute(0, 2, 3, 1).reshape(2, 12, 6).double()
    b = bank.double()
    for i in range(2):
        d = torch.cdist(q[i], b)  # (12, 30)
        s, nn = d.min(1)
        torch.testing.assert_close(patch[i].reshape(-1).double(), s, rtol=1e-5, atol=1e-5)
        j = int(s.argmax())
        m_star = int(nn[j])
        neigh = support[m_star]
        dist = torch.linalg.norm(b[neigh] - q[i, j], dim=1)
        expected = (1 - torch.exp(dist[0]) / torch.exp(dist).sum()) * s[j]  # eq. 7
        assert math.isclose(float(score[i]), float(expected), rel_tol=1e-4)


def test_coarse_layer3_search_and_chunks_give_the_same_answer():
    """Dot products of the layer3 block on its own grid, upsampled, equal those of the upsampled
    features; chunking over images changes nothing either."""
    from station.detectors.patchcore.embedding import upsample_to

    rng = np.random.default_rng(5)
    bank = torch.from_numpy(rng.normal(size=(50, 12)).astype(np.float32)) + 20.0
    support = nearest_in_bank(bank, 4)
    fine = torch.from_numpy(rng.normal(size=(3, 5, 8, 8)).astype(np.float32)) + 20.0
    coarse = torch.from_numpy(rng.normal(size=(3, 7, 4, 4)).astype(np.float32)) + 20.0
    full = torch.cat((fine, upsample_to(coarse, fine)), 1)
    split = PatchScorer(bank, support, split=5)
    ref_patch, ref_score = PatchScorer(bank, support)(full)
    patch, score = split(fine, coarse)
    torch.testing.assert_close(patch, ref_patch, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(score, ref_score, rtol=1e-5, atol=1e-5)
    split.chunk_elements = 50 * 64  # one image per block
    chunked_patch, chunked_score = split(fine, coarse)
    torch.testing.assert_close(chunked_patch, patch)
    torch.testing.assert_close(chunked_score, score)


def test_gaussian_blur_is_normalised_and_handles_small_maps():
    blur = GaussianBlur(4.0)
    assert blur.kernel.numel() == 33 and math.isclose(float(blur.kernel.sum()), 1.0, rel_tol=1e-6)
    flat = torch.full((1, 1, 10, 12), 3.0)
    torch.testing.assert_close(blur(flat), flat)  # smaller than the kernel: still works, still normalised


def test_default_resize_is_antialiased_bilinear_like_pil():
    from PIL import Image

    img = np.random.default_rng(0).integers(0, 256, (300, 270, 3), dtype=np.uint8)
    ours = InputGeometry((64, 64)).prepare(img).astype(int)
    pil = np.asarray(Image.fromarray(img).resize((64, 64), Image.BILINEAR)).astype(int)
    assert np.abs(ours - pil).max() <= 1  # the authors' code resizes with PIL, anomalib with torchvision
    area = InputGeometry((64, 64), interpolation="area").prepare(img)
    assert area.shape == (64, 64, 3) and not np.array_equal(area, ours)


def test_geometry_resize_crop_and_restore():
    g = InputGeometry((64, 64), (48, 48))
    img = np.zeros((100, 80, 3), np.uint8)
    assert g.prepare(img).shape == (48, 48, 3)
    assert g.prepare(np.zeros((100, 80), np.uint8)).shape == (48, 48, 3)  # gray -> RGB
    m = np.full((48, 48), 5.0, np.float32)
    m[0, 0] = 1.0
    out = g.restore(m, (100, 80))
    assert out.shape == (100, 80) and out.dtype == np.float32
    assert out[0, 0] == pytest.approx(1.0)  # outside the crop: the map's minimum
    with pytest.raises(ValueError, match="larger"):
        InputGeometry((64, 64), (80, 80))


# --- the detector ---------------------------------------------------------------------------------------
def test_registry_target_and_parameter_checks(custom_weights):
    assert detector_class("patchcore") is PatchCore
    with pytest.raises(ValueError, match="coreset_ratio"):
        make(custom_weights, coreset_ratio=0)
    with pytest.raises(ValueError, match="layout"):
        make(custom_weights, layout="fancy")
    with pytest.raises(TypeError):
        make(custom_weights, no_such_param=1)


def test_fit_and_predict_find_the_defect(fitted):
    good = part_images(4, seed=9)
    bad = [with_defect(im) for im in part_images(2, seed=10)]
    pred = fitted.predict(good + bad)
    assert pred.anomaly_maps.shape == (6, 72, 88) and pred.anomaly_maps.dtype == np.float32
    assert pred.scores.shape == (6,)
    assert pred.scores[4:].min() > pred.scores[:4].max()
    for m in pred.anomaly_maps[4:]:
        y, x = np.unravel_index(np.argmax(m), m.shape)
        assert 2 <= y <= 30 and 50 <= x <= 80  # the defect sits at rows 10-22, columns 60-72
    # any input size comes back at its own resolution
    big = fitted.predict([np.zeros((130, 97, 3), np.uint8)])
    assert big.anomaly_maps.shape == (1, 130, 97)
    mixed = fitted.predict([np.zeros((130, 97, 3), np.uint8), np.zeros((130, 60), np.uint8)])
    assert [m.shape for m in mixed.anomaly_maps] == [(130, 97), (130, 60)]


def test_fit_statistics_progress_and_records(custom_weights):
    det = make(custom_weights, coreset_ratio=0.1)
    seen = []
    stats = det.fit(part_images(5), progress=seen.append)
    assert stats["n_patches"] == 5 * 64 and stats["bank_size"] == 32 and stats["feature_dim"] == 1024
    assert {p.stage for p in seen} == {"extracting features", "selecting coreset"}
    assert det.weights_info["source"] == "custom" and det.weights_info["backbone"] == "resnet18"
    cfg = det.get_config()
    assert cfg["weights_info"] == det.weights_info and cfg["input_size"] == [SIZE, SIZE]
    state = det.get_state()
    assert state["memory_bank"].shape == (32, 1024) and state["bank_support"].shape == (32, 9)


def test_cancel_stops_fitting(custom_weights):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        make(custom_weights).fit(part_images(3), cancel=token)


def test_round_trip_through_state_gives_identical_results(fitted):
    images = part_images(2, seed=4)
    again = PatchCore.from_state(fitted.get_config(), fitted.get_state(), device="cpu")
    a, b = fitted.predict(images), again.predict(images)
    np.testing.assert_array_equal(a.anomaly_maps, b.anomaly_maps)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_recipe_records_and_checks_its_weights(fitted, store_home, tmp_path, monkeypatch):


    result = teach_detector("part", part_images(5), part_images(2, seed=5), "patchcore",
                            {"backbone": "resnet18", "weights": fitted.weights, "input_size": SIZE,
                             "coreset_ratio": 0.25}, device="cpu")
    folder = save_recipe(result.recipe, tmp_path / "models" / "part")
    recipe = load_recipe(folder)
    assert recipe.weights == fitted.weights_info
    image = with_defect(part_images(1, seed=8)[0])
    res = load_inspector(recipe, device="cpu").inspect(image)
    np.testing.assert_allclose(res.anomaly_map, result.detector.predict([image]).anomaly_maps[0], rtol=1e-6)
    # another PC without those weights: a clear error naming the fix
    monkeypatch.setenv("STATION_HOME", str(tmp_path / "empty-home"))
    with pytest.raises(WeightsError, match="station weights import <file> --allow-custom"):
        load_inspector(recipe, device="cpu")
    monkeypatch.setenv("STATION_HOME", str(store_home))
    # a record that names other weights is refused, never silently replaced
    cfg = dict(recipe.detector_config)
    cfg["weights_info"] = {**cfg["weights_info"], "sha256": "0" * 64}
    with pytest.raises(WeightsError):
        PatchCore.from_state(cfg, recipe.detector_state(), device="cpu")


def test_random_weights_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("STATION_HOME", str(tmp_path / "empty"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # not this PC's torch cache
    det = create_detector("patchcore", backbone="resnet18", input_size=SIZE, device="cpu", allow_download=False)
    with pytest.raises(WeightsError, match="station weights download --backbone resnet18"):
        det.fit(part_images(2))
    rnd = create_detector("patchcore", backbone="resnet18", weights="random", seed=3, input_size=SIZE,
                          device="cpu", coreset_ratio=0.5)
    rnd.fit(part_images(2))
    assert rnd.weights_info["source"] == "random" and rnd.weights_info["seed"] == 3
    again = PatchCore.from_state(rnd.get_config(), rnd.get_state(), device="cpu")
    np.testing.assert_array_equal(again.predict(part_images(1)).scores, rnd.predict(part_images(1)).scores)


def test_concat_layout_crop_and_full_bank(custom_weights):
    det = make(custom_weights, layout="concat", crop_size=48, coreset_ratio=1.0, num_neighbors=1)
    stats = det.fit(part_images(2))
    assert stats["feature_dim"] == 128 + 256 and stats["bank_size"] == stats["n_patches"] == 2 * 36
    pred = det.predict(part_images(2, seed=3))
    assert pred.anomaly_maps.shape == (2, 72, 88)
    # num_neighbors=1: the image score is the largest patch distance, the map's peak before smoothing
    assert np.all(pred.scores >= pred.anomaly_maps.reshape(2, -1).max(1) - 1e-4)


def test_patch_features_can_live_on_disk(custom_weights, monkeypatch):
    images = part_images(3)
    in_ram = make(custom_weights)
    in_ram.fit(images)
    monkeypatch.setattr(detector_module, "RAM_BUDGET_BYTES", 0)
    on_disk = make(custom_weights)
    on_disk.fit(images)
    np.testing.assert_array_equal(in_ram.get_state()["memory_bank"], on_disk.get_state()["memory_bank"])


def test_gpu_out_of_memory_falls_back_to_the_cpu(fitted, monkeypatch, caplog):
    det = PatchCore.from_state(fitted.get_config(), fitted.get_state(), device="cpu")
    det.device = DeviceChoice("cuda", "pretend GPU")  # the network stays on the CPU: only the error is faked
    calls = {"n": 0}
    real = det._infer_torch

    def flaky(batch):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(batch)

    monkeypatch.setattr(det, "_infer_torch", flaky)
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: self)
    with caplog.at_level("WARNING"):
        pred = det.predict(part_images(1))
    assert pred.scores.shape == (1,) and det.device.device == "cpu"
    assert "out of GPU memory" in caplog.text


def test_reduced_precision_backbones(custom_weights, fitted):
    images = part_images(2, seed=6)
    ref = fitted.predict(images)
    half = make(custom_weights, precision="float16")  # a GPU option: the CPU keeps float32
    half.fit(part_images(6))
    np.testing.assert_array_equal(half.predict(images).anomaly_maps, ref.anomaly_maps)
    bf16 = PatchCore.from_state({**fitted.get_config(), "precision": "bfloat16"}, fitted.get_state(), device="cpu")
    pred = bf16.predict(images)
    assert pred.anomaly_maps.dtype == np.float32 and np.isfinite(pred.anomaly_maps).all()
    rel = np.abs(pred.anomaly_maps - ref.anomaly_maps).max() / np.abs(ref.anomaly_maps).max()
    assert 0 < rel < 0.1  # bfloat16 features: close, not equal
