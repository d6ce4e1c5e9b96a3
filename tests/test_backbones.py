"""The feature-tap table and the extractor built from it: every backbone gives the stride-8 and
stride-16 maps the table promises, folding batch norms changes nothing but rounding, only the
modules up to the last tap need weights, and PatchCore runs on each through torch, ONNX Runtime
float32 and int8 (seeded random weights: shapes and parity, not quality)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from station.detectors.patchcore import PatchCore
from station.detectors.patchcore.backbone import FeatureExtractor
from station.detectors.patchcore.detector import default_embedding_dim
from station.detectors.patchcore.network import feature_grid
from station.weights import BACKBONES, TAPS, WeightsError, random_state_dict
from station.weights.state import check_state_dict, infer_backbone, require_fit

LIGHT = ("mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0")


def test_the_table_names_every_backbone_the_station_offers():
    assert set(TAPS) == set(BACKBONES)
    assert {"wide_resnet50_2", "resnet18", "mobilenet_v2"} <= set(TAPS)
    assert TAPS["mobilenet_v2"].taps == ("6", "13") and TAPS["wide_resnet50_2"].taps == ("layer2", "layer3")
    for taps in TAPS.values():
        assert taps.taps[1] == taps.trunk[-1] and taps.taps[0] in taps.trunk


@pytest.mark.parametrize("backbone", sorted(TAPS))
def test_taps_give_the_promised_channels_and_strides(backbone):
    """Against torchvision's own model, run child by child: the tapped outputs, their channels and
    the stride-8 grid formula PatchCore sizes its memory with (an odd input size on purpose)."""
    state = random_state_dict(backbone, 0)
    ext = FeatureExtractor(backbone, state, fold_batchnorm=False)
    model = getattr(torchvision.models, backbone)()
    model.load_state_dict(state)
    model.eval()
    container = model.get_submodule(TAPS[backbone].container) if TAPS[backbone].container else model
    x = torch.randint(0, 256, (2, 75, 67, 3), dtype=torch.uint8)
    with torch.no_grad():
        f8, f16 = ext(x)
        y = ext.normalise(x)
        want = []
        for name, child in container.named_children():
            y = child(y)
            if name in TAPS[backbone].taps:
                want.append(y)
            if name == TAPS[backbone].taps[1]:
                break
    assert (f8.shape[1], f16.shape[1]) == ext.channels == TAPS[backbone].channels
    assert tuple(f8.shape[-2:]) == feature_grid((75, 67))
    assert tuple(f16.shape[-2:]) == tuple((n - 1) // 2 + 1 for n in f8.shape[-2:])
    torch.testing.assert_close(f8, want[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(f16, want[1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backbone", ["resnet18", *LIGHT])
def test_folding_batch_norms_changes_only_rounding(backbone):
    state = random_state_dict(backbone, 3)
    for k, v in state.items():  # trained-looking statistics, so that folding actually changes weights
        if k.endswith("running_var"):
            state[k] = torch.rand_like(v) + 0.5
        elif k.endswith("running_mean"):
            state[k] = torch.randn_like(v) * 0.1
    plain, folded = FeatureExtractor(backbone, state, False), FeatureExtractor(backbone, state, True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    x = torch.randint(0, 256, (1, 64, 64, 3), dtype=torch.uint8)
    with torch.no_grad():
        for a, b in zip(plain(x), folded(x), strict=True):
            assert float((a - b).abs().max() / a.abs().max()) < 1e-4


def test_only_the_modules_up_to_the_last_tap_need_weights():
    state = {k: v for k, v in random_state_dict("mobilenet_v2", 0).items()
             if TAPS["mobilenet_v2"].uses(k)}  # as a converted features-only file: no classifier, no 14..18
    assert not any(k.startswith(("classifier.", "features.14.")) for k in state)
    assert check_state_dict(state, "mobilenet_v2") == []
    assert infer_backbone(state) == "mobilenet_v2"
    FeatureExtractor("mobilenet_v2", state)
    del state["features.13.conv.2.weight"]
    with pytest.raises(WeightsError, match="missing features.13.conv.2.weight"):
        require_fit(state, "mobilenet_v2", "test")


def test_light_backbones_default_to_a_smaller_embedding():
    assert default_embedding_dim("wide_resnet50_2") == 1024
    assert all(default_embedding_dim(b) == 256 for b in LIGHT)
    assert PatchCore(backbone="mobilenet_v2", weights="random").embedding_dim == 256
    assert PatchCore(backbone="resnet18", weights="random", embedding_dim=64).embedding_dim == 64


@pytest.mark.parametrize("backbone", LIGHT)
def test_patchcore_on_light_backbones_through_torch_onnx_and_int8(backbone, tmp_path):
    rng = np.random.default_rng(0)
    train = [rng.integers(60, 200, (70, 64, 3), dtype=np.uint8) for _ in range(4)]
    tests = [rng.integers(0, 256, (70, 64, 3), dtype=np.uint8) for _ in range(2)]
    det = PatchCore(backbone=backbone, weights="random", input_size=64, coreset_ratio=0.2, device="cpu")
    stats = det.fit(train)
    assert stats["feature_grid"] == [8, 8] and stats["feature_dim"] == 256
    ref = det.predict(tests)
    assert ref.anomaly_maps.shape == (2, 70, 64) and np.isfinite(ref.anomaly_maps).all()
    files = {f.name for f in det.export_onnx(tmp_path, int8_calibration=train)}
    assert "patchcore_int8.onnx" in files
    ort = PatchCore.from_state(det.get_config(), det.get_state(), device="cpu", backend="onnxruntime",
                               onnx_dir=tmp_path)
    out = ort.predict(tests)
    assert float(np.abs(out.anomaly_maps - ref.anomaly_maps).max() / np.abs(ref.anomaly_maps).max()) < 1e-3
    int8 = PatchCore.from_state(det.get_config(), det.get_state(), device="cpu", backend="onnxruntime",
                                onnx_dir=tmp_path, onnx_precision="int8")
    q = int8.predict(tests)
    assert int8.onnx_model == "int8"
    # random weights give tiny distances that int8 noise shifts by tens of per cent (the real loss is
    # measured with real weights, tests/test_real_weights.py), but the maps must still follow float32's
    assert q.anomaly_maps.shape == ref.anomaly_maps.shape and np.isfinite(q.anomaly_maps).all()
    assert np.corrcoef(q.anomaly_maps.ravel(), ref.anomaly_maps.ravel())[0, 1] > 0.8
