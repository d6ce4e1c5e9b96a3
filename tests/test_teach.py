"""teach(): threshold consistency with the stored validation maps, cancel, and input checks."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_data import draw_part
from helpers_detector import register_test_detector

from station.core.progress import Cancelled, CancelToken
from station.core.recipe import load_recipe, save_recipe, versions
from station.core.teach import validation_estimator
from station.detectors.runtime import load_inspector, teach_detector


@pytest.fixture(scope="module")
def images():
    register_test_detector()
    rng = np.random.default_rng(5)
    return [draw_part(rng, 64)[0] for _ in range(14)]


def test_retune_from_the_recipe_reproduces_the_taught_threshold(images, tmp_path):
    res = teach_detector("disc", images[:10], images[10:], "test-zscore", min_defect_area_px=30)
    folder = save_recipe(res.recipe, tmp_path / "disc")
    recipe = load_recipe(folder)
    assert validation_estimator(recipe).estimate(30).threshold == pytest.approx(recipe.threshold)
    assert recipe.preprocessing["color_mode"] == "gray"  # the detector's registered colour mode
    # every validation image is OK at the taught threshold: the procedure's promise
    assert not any(r.is_ng for r in load_inspector(recipe).inspect_batch(images[10:]))


def test_cancel_raises_and_leaves_nothing(images, tmp_path):
    token = CancelToken()
    seen = []

    def progress(p):
        seen.append(p)
        if p.done == 3:
            token.cancel()

    with pytest.raises(Cancelled):
        teach_detector("disc", images[:10], images[10:], "test-zscore", progress=progress, cancel=token)
    assert seen and seen[-1].done == 3
    assert versions(tmp_path / "disc") == []


def test_input_checks(images):
    with pytest.raises(ValueError, match="validation"):
        teach_detector("x", images[:4], [], "test-zscore")
    # another size is no longer an error: it is fitted to the working size and its map comes back at its own
    mixed = teach_detector("x", images[:4], [images[5][:32]], "test-zscore")
    assert mixed.validation_maps[0].shape == images[5][:32].shape[:2]
    assert "other sizes than the first" in mixed.notes[0]
    with pytest.raises(ValueError, match="at least one"):
        teach_detector("x", [], images[:2], "test-zscore")
