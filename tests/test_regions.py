from __future__ import annotations

import numpy as np
import pytest

from station.core.regions import Verdict, defect_mask, find_regions, largest_region_area, verdict_for


def test_regions_area_bbox_peak_and_contour():
    m = np.zeros((50, 60), np.float32)
    m[10:20, 5:25] = 2.0  # 200 px
    m[12, 8] = 3.0
    m[40:43, 40:43] = 2.0  # 9 px
    regions = find_regions(m, 1.0, min_area_px=10)
    assert len(regions) == 1
    r = regions[0]
    assert r.area_px == 200 and r.bbox == (5, 10, 20, 10)
    assert r.peak_score == 3.0
    assert r.centroid == pytest.approx((14.5, 14.5))
    xs, ys = r.contour[:, 0], r.contour[:, 1]
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (5, 24, 10, 19)
    assert verdict_for(regions) is Verdict.NG
    assert verdict_for(find_regions(m, 1.0, min_area_px=201)) is Verdict.OK


def test_threshold_is_strict_and_connectivity_is_eight():
    m = np.zeros((5, 5), np.float32)
    m[1, 1] = m[2, 2] = m[3, 3] = 1.0  # diagonal chain
    assert largest_region_area(m, 0.5) == 3
    assert largest_region_area(m, 1.0) == 0  # strictly above
    assert len(find_regions(m, 0.5)) == 1


def test_areas_and_geometry_scale_to_the_original_image():
    m = np.zeros((10, 10), np.float32)
    m[2:4, 2:6] = 1.0  # 8 map px
    r = find_regions(m, 0.5, min_area_px=30, image_shape=(40, 40))[0]  # each map px = 16 image px
    assert r.area_px == 128 and r.bbox == (8, 8, 16, 8)


def test_defect_mask_drops_small_regions():
    m = np.zeros((20, 20), np.float32)
    m[0:5, 0:5] = 1
    m[10, 10] = 1
    mask = defect_mask(m, 0.5, min_area_px=2)
    assert mask.sum() == 25 and not mask[10, 10]
    assert not defect_mask(np.zeros((4, 4)), 0.5).any()
