"""The teach-in model's region of interest, without Qt: validation against the samples, clamping,
what a change discards, and a recipe taught with it inspecting only inside it."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_detector import register_test_detector

from station.acquisition.synthetic import SyntheticPart
from station.app.teach_session import MIN_ROI_SIDE, TeachSession, fit_roi
from station.core.recipe import load_recipe
from station.detectors.runtime import load_inspector

SIZE = 96


@pytest.fixture(autouse=True)
def _test_detector():
    register_test_detector()


def _session(tmp_path, n: int = 10, size: int = SIZE) -> TeachSession:
    part = SyntheticPart(seed=5, size=size)
    s = TeachSession(models_dir=tmp_path / "models", part_name="bracket", detector_kind="test-zscore")
    for i in range(n):
        assert s.add_image(part.render(i).image, f"frame {i}")
    return s


def _with_blob(image: np.ndarray, x: int, y: int, side: int = 8) -> np.ndarray:
    out = image.copy()
    out[y:y + side, x:x + side] = 255 - out[y:y + side, x:x + side]  # a clear, local defect
    return out


def test_fit_roi_clamps_normalises_and_refuses():
    shape = (100, 200, 3)
    assert fit_roi((10, 20, 50, 40), shape) == (10, 20, 50, 40)
    assert fit_roi((-10, -5, 60, 50), shape) == (0, 0, 50, 45)  # dragged past the top-left corner
    assert fit_roi((150, 60, 100, 100), shape) == (150, 60, 50, 40)  # past the bottom-right corner
    assert fit_roi((10.4, 19.6, 50.2, 40), shape) == (10, 20, 50, 40)  # a dragged rectangle's floats
    assert fit_roi((0, 0, 200, 100), shape) is None  # the whole image is no crop
    assert fit_roi((-5, -5, 300, 300), shape) is None
    with pytest.raises(ValueError, match=f"at least {MIN_ROI_SIDE}x{MIN_ROI_SIDE}"):
        fit_roi((0, 0, MIN_ROI_SIDE - 1, 50), shape)
    with pytest.raises(ValueError, match="inside the 200x100 image"):
        fit_roi((190, 0, 100, 100), shape)  # only 10 px of it inside
    with pytest.raises(ValueError, match="positive"):
        fit_roi((0, 0, -40, 40), shape)
    with pytest.raises(ValueError, match="x, y, width, height"):
        fit_roi((0, 0, 40), shape)
    assert fit_roi((0, 0, 20, 20), (20, 20)) is None  # a tiny image: its own size is the minimum


def test_roi_needs_samples_and_invalidates_training(tmp_path):
    empty = TeachSession(models_dir=tmp_path)
    with pytest.raises(ValueError, match="good samples"):
        empty.roi = (0, 0, 40, 40)
    empty.roi = None  # clearing is always fine
    s = _session(tmp_path)
    s.train()
    assert s.result is not None
    s.roi = None  # unchanged: the training stays
    assert s.result is not None
    s.roi = (8, 8, 60, 50)
    assert s.roi == (8, 8, 60, 50) and s.result is None and s.estimate is None
    assert s.inspected_shape == (50, 60)
    s.train()
    s.roi = (8, 8, 60, 50)  # the same region again: nothing to redo
    assert s.result is not None
    with pytest.raises(ValueError, match="at least"):
        s.roi = (0, 0, 10, 10)
    assert s.roi == (8, 8, 60, 50) and s.result is not None  # a refused value changes nothing


def test_roi_follows_the_samples_size(tmp_path):
    s = _session(tmp_path, n=4)
    s.roi = (40, 40, 50, 50)
    s.clear_images()
    assert s.roi == (40, 40, 50, 50)  # the same camera again may keep it ...
    s.add_image(SyntheticPart(seed=5, size=SIZE).render(0).image, "same size")
    assert s.roi == (40, 40, 50, 50)
    s.clear_images()
    s.add_image(SyntheticPart(seed=5, size=64).render(0).image, "small camera")
    assert s.roi is None  # ... but it never lands outside other samples
    assert "does not fit the new 64x64 samples" in s.problems[-1]


def test_taught_recipe_inspects_only_inside_the_roi(tmp_path):
    s = _session(tmp_path)
    roi = (30, 20, 56, 60)
    s.roi = roi
    assert s.default_area_px() == pytest.approx(max(1.0, round(56 * 60 * 0.001)))  # of the inspected area
    result = s.train()
    assert result.recipe.preprocessing["roi"] == list(roi)
    assert result.recipe.validation["image_shape"] == [60, 56]
    s.apply_estimate(s.estimate_for(10.0))
    recipe = load_recipe(s.save())
    assert recipe.preprocessing["roi"] == list(roi)

    good = SyntheticPart(seed=5, size=SIZE).render(50).image
    inspector = load_inspector(recipe)
    outside = inspector.inspect(_with_blob(good, 4, 4))  # on the fixture, left of the region
    assert outside.roi == roi and not outside.regions and outside.anomaly_map.shape == (60, 56)
    inside = inspector.inspect(_with_blob(good, 50, 40))
    assert inside.is_ng and inside.regions
    x, y, w, h = roi
    for r in inside.regions:  # full-image coordinates, all within the region
        bx, by, bw, bh = r.bbox
        assert x <= bx and y <= by and bx + bw <= x + w and by + bh <= y + h
        assert (r.contour[:, 0] >= x).all() and (r.contour[:, 1] >= y).all()
    assert any(abs(r.centroid[0] - 54) < 6 and abs(r.centroid[1] - 44) < 6 for r in inside.regions)

    s.roi = None  # the whole image again: the blob on the fixture is found
    s.train()
    s.apply_estimate(s.estimate_for(10.0))
    whole = load_inspector(s.build_recipe()).inspect(_with_blob(good, 4, 4))
    assert whole.roi is None and whole.is_ng
