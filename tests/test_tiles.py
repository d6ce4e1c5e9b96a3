"""Acceptance (issue 12, item 2): overlapping tiles find a 5x5 px defect on a 2048x2048 frame that the
same detector misses when the frame is down-scaled to its input size.

PatchCore (ResNet-18, seeded random weights, 256-px input). Tiles keep the frame's pixel scale, so they
can be taught on smaller good crops of the same surface; the down-scaled detector is taught on whole
frames, as it would be on a line."""

from __future__ import annotations

import numpy as np
import pytest

from station.core.inspection import Inspector
from station.detectors.runtime import teach_detector

pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]

SIDE = 2048
DEFECT = (1000, 1500)  # y, x of the 5x5 px spot


def surface(seed: int, shape=(SIDE, SIDE), defect: tuple[int, int] | None = None) -> np.ndarray:
    """A fine periodic surface with sensor noise; optionally one dark 5x5 px spot."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 25 * np.sin(xx / 7.0) * np.sin(yy / 9.0)
    image = np.clip(base + np.random.default_rng(seed).normal(0, 6, (h, w)), 0, 255).astype(np.uint8)
    if defect is not None:
        y, x = defect
        image[y:y + 5, x:x + 5] = 10
    return np.repeat(image[..., None], 3, axis=2)


def params(weights: str, **extra) -> dict:
    return {"backbone": "resnet18", "weights": weights, "input_size": 256, "embedding_dim": 64,
            "coreset_ratio": 0.02, **extra}


def test_tiles_find_a_5px_defect_the_down_scaled_detector_misses(custom_weights):
    frame = surface(99, defect=DEFECT)

    plain = teach_detector("plain", [surface(0)], [surface(1)], "patchcore", params(custom_weights), device="cpu",
                           min_defect_area_px=9)
    assert plain.recipe.preprocessing["geometry"]["delegate"]  # the detector's own resize, as before
    p = Inspector(plain.recipe, plain.detector).inspect(frame)
    plain_good = max(plain.recipe.validation["scores"])

    tiled = teach_detector("tiles", [surface(0, (1024, 1024))], [surface(1, (512, 768))], "patchcore",
                  params(custom_weights, fit="tiles", tile_overlap=0.0), device="cpu",
                           min_defect_area_px=9)
    assert tiled.recipe.preprocessing["geometry"]["size"] == [256, 256]
    t = Inspector(tiled.recipe, tiled.detector).inspect(frame)
    tiled_good = max(tiled.recipe.validation["scores"])

    assert t.anomaly_map.shape == p.anomaly_map.shape == (SIDE, SIDE)  # both in the frame's own pixels
    # tiles: the spot stands far above anything on a good surface, and it is where the map peaks
    assert t.score > 2.0 * tiled_good, (t.score, tiled_good)
    peak = np.unravel_index(np.argmax(t.anomaly_map), t.anomaly_map.shape)
    assert abs(peak[0] - DEFECT[0] - 2) <= 12 and abs(peak[1] - DEFECT[1] - 2) <= 12, peak
    x, y, w, h = t.regions[0].bbox  # the largest region covers it
    assert x <= DEFECT[1] + 2 <= x + w and y <= DEFECT[0] + 2 <= y + h
    # down-scaled: 5 px become 0.6 px; the frame scores like a good one
    assert p.score < 1.2 * plain_good, (p.score, plain_good)
