"""The variation model on a small subset of the real MVTec AD bottle (skips without the data).

The full acceptance numbers (all of train/good, the whole test set, ``station train`` + ``station
eval``) are measured by the CLI, not here; this checks on a subset that the model taught on real
bottles ranks defective bottles above good ones and puts its response on the defect.
"""

from __future__ import annotations

import numpy as np
import pytest

from station.core.datasets import MVTecCategory, iter_images, load_ground_truth
from station.detectors.variation import VariationModel

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_defective_bottles_score_above_good_ones(mvtec_bottle):
    cat = MVTecCategory(mvtec_bottle)
    train = [im for _, im in iter_images(cat.train_good()[::5], "rgb")]  # 42 of 209
    test = cat.test()
    good = [s for s in test if not s.is_anomalous][:5]
    broken = [s for s in test if s.label == "broken_large"][:4]
    images = [im for _, im in iter_images(good + broken, "rgb")]
    model = VariationModel()
    stats = model.fit(train)
    assert stats["alignment"]["median_correlation"] > 0.95  # the bottles are really aligned
    pred = model.predict(images)
    assert pred.anomaly_maps.shape == (len(images), 900, 900)
    scores = pred.scores
    assert scores[len(good):].min() > scores[:len(good)].max(), f"scores {np.round(scores, 2)}"
    for sample, amap in zip(broken, pred.anomaly_maps[len(good):], strict=True):
        gt = load_ground_truth(sample, amap.shape)
        assert gt is not None and gt.any()
        assert amap[gt].mean() > 2.0 * amap[~gt].mean(), f"{sample.name}: response not on the defect"
