"""The SSIM autoencoder on real MVTec AD bottle images (900x900 RGB): a short teach-in through the
recipe, the inspector and ONNX Runtime. Accuracy is measured with ``station eval``, not here: a
training short enough for a test teaches the autoencoder nothing yet."""

from __future__ import annotations

import numpy as np
import pytest

from station.core.datasets import MVTecCategory, iter_images
from station.core.inspection import Inspector
from station.core.recipe import load_recipe, save_recipe
from station.detectors.autoencoder import SSIMAutoencoder
from station.detectors.runtime import load_inspector, teach_detector

pytestmark = [pytest.mark.slow, pytest.mark.mvtec]


def test_short_teach_on_bottle_through_recipe_and_onnx(mvtec_bottle, tmp_path):
    cat = MVTecCategory(mvtec_bottle)
    good = [im for _, im in iter_images(cat.train_good()[:10], "rgb")]
    test = [s for s in cat.test() if s.label in ("good", "broken_large")][::20]
    test_images = [im for _, im in iter_images(test, "rgb")]
    params = dict(schedule="cpu", epochs=1, samples_per_epoch=16, batch_size=8, max_train_seconds=0)
    result = teach_detector("bottle", good[:8], good[8:], "autoencoder", detector_params=params, device="cpu")
    assert result.recipe.preprocessing["color_mode"] == "gray"
    assert result.recipe.training["input_size"] == 128
    folder = save_recipe(result.recipe, tmp_path / "bottle")
    recipe = load_recipe(folder)
    inspector = load_inspector(recipe, device="cpu")
    results = inspector.inspect_batch(test_images)
    maps = np.stack([r.anomaly_map for r in results])
    assert maps.shape == (len(test_images), 900, 900) and np.all(np.isfinite(maps))

    paths = result.detector.export_onnx(folder / "onnx")
    onnx_det = SSIMAutoencoder.from_state(recipe.detector_config, recipe.detector_state(), device="cpu",
                                          backend="onnxruntime", onnx_dir=folder / "onnx")
    onnx_maps = np.stack([r.anomaly_map for r in Inspector(recipe, detector=onnx_det).inspect_batch(test_images)])
    np.testing.assert_allclose(onnx_maps, maps, rtol=1e-3, atol=1e-3 * float(maps.max()))
    assert paths[0].stat().st_size > 1_000_000  # the weights are inside the one file
