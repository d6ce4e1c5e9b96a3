"""Threshold estimation for a minimum defect area (MVTec AD paper, 4.3) against brute force."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from station.core.regions import largest_region_area
from station.core.threshold import ThresholdEstimator, estimate_threshold


def two_blob_map():
    m = np.zeros((64, 64), np.float32)
    m[5:15, 5:15] = 5.0  # 100 px
    m[30:50, 30:50] = 3.0  # 400 px
    return m


def brute_force(maps, min_area, shapes=None):
    """Scan every distinct value of all maps from the bottom: the first that works for all maps."""
    shapes = shapes or [m.shape for m in maps]
    for t in np.unique(np.concatenate([m.ravel() for m in maps])):
        if all(largest_region_area(m, t) * (s[0] * s[1]) / m.size < min_area for m, s in zip(maps, shapes, strict=True)):
            return float(t)
    raise AssertionError("unreachable: the maximum always works")


def test_two_blobs():
    m = two_blob_map()
    assert estimate_threshold([m], 150).threshold == 3.0  # only the 100 px blob stays above
    assert estimate_threshold([m], 50).threshold == 5.0  # nothing may stay above
    assert estimate_threshold([m], 500).threshold == 0.0  # both blobs are small enough already
    est = estimate_threshold([m], 150)
    assert est.largest_area_px == [100.0]


def test_matches_brute_force_on_random_smooth_maps(rng):
    maps = [cv2.GaussianBlur(rng.random((48, 48)).astype(np.float32), (0, 0), 2.5) for _ in range(6)]
    est = ThresholdEstimator(maps)
    for area in (1, 5, 20, 80, 300, 1500):
        got = est.estimate(area)
        assert got.threshold == pytest.approx(brute_force(maps, area)), area
        assert max(got.largest_area_px) < area
        # the next lower distinct value would leave a region of at least the area on some map
        lower = np.unique(np.concatenate([m.ravel() for m in maps]))
        below = lower[lower < got.threshold]
        if below.size:
            assert max(est.largest_areas(float(below[-1]))) >= area


def test_threshold_never_decreases_when_the_area_shrinks(rng):
    maps = [cv2.GaussianBlur(rng.random((40, 40)).astype(np.float32), (0, 0), 2) for _ in range(4)]
    est = ThresholdEstimator(maps)
    thresholds = [est.estimate(a).threshold for a in (1000, 300, 100, 30, 10, 3, 1)]
    assert thresholds == sorted(thresholds)


def test_areas_scale_to_original_image_pixels():
    m = two_blob_map()  # map at 64x64 standing for a 128x128 image: every map pixel is 4 image pixels
    est = ThresholdEstimator([m], image_shapes=[(128, 128)])
    assert est.estimate(500).threshold == 3.0  # the 100 px blob is 400 image px < 500
    assert est.estimate(300).threshold == 5.0
    assert est.estimate(500).largest_area_px == [400.0]


def test_limiting_image_and_errors():
    a = two_blob_map()
    b = two_blob_map() * 2
    est = ThresholdEstimator([a, b]).estimate(150)
    assert est.threshold == 6.0 and est.limiting_image == 1
    with pytest.raises(ValueError):
        ThresholdEstimator([])
    with pytest.raises(ValueError):
        ThresholdEstimator([a]).estimate(0)
