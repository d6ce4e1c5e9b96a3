"""The full WideResNet-50-2 path on a few real MVTec AD bottle images (seeded random weights, imported
through the real import path): maps at 900x900, ONNX Runtime parity, and a recipe that loads back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from station.core.datasets import MVTecCategory, iter_images
from station.detectors.base import create_detector
from station.detectors.patchcore import PatchCore
from station.weights import WeightsStore, random_state_dict

pytestmark = [pytest.mark.slow, pytest.mark.mvtec]


def test_wide_resnet_on_bottle(mvtec_bottle, tmp_path, monkeypatch):
    monkeypatch.setenv("STATION_HOME", str(tmp_path / "home"))
    weights = tmp_path / "wrn50_seed0.pth"
    torch.save(random_state_dict("wide_resnet50_2", 0), weights)
    sha = WeightsStore().import_file(weights, allow_custom=True).sha256
    category = MVTecCategory(mvtec_bottle)
    train = [im for _, im in iter_images(category.train_good()[:6], "rgb")]
    tests = [s for s in category.test() if s.label in ("good", "broken_large")]
    samples = tests[:2] + tests[-2:]
    images = [im for _, im in iter_images(samples, "rgb")]
    det = create_detector("patchcore", weights=f"custom:{sha[:16]}", coreset_ratio=0.01, device="cpu")
    stats = det.fit(train)
    assert stats["feature_dim"] == 1024 and stats["feature_grid"] == [32, 32]
    assert stats["bank_size"] == int(6 * 1024 * 0.01)
    pred = det.predict(images)
    assert pred.anomaly_maps.shape == (4, 900, 900) and np.isfinite(pred.anomaly_maps).all()
    assert det.get_config()["weights_info"]["sha256"] == sha
    det.export_onnx(tmp_path / "onnx")
    ort = PatchCore.from_state(det.get_config(), det.get_state(), device="cpu", backend="onnxruntime",
                               onnx_dir=tmp_path / "onnx")
    b = ort.predict(images[:1])
    rel = np.abs(b.anomaly_maps[0] - pred.anomaly_maps[0]).max() / np.abs(pred.anomaly_maps[0]).max()
    assert rel < 1e-3
