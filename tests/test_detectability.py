"""Detectability from synthetic defects (issue 16, item 1): deterministic pasting, a recall that rises
with the area, re-scoring from the cached maps without the detector, and ``station eval --synthetic``."""

from __future__ import annotations

import numpy as np
import pytest

from station.core.detectability import (
    DetectabilityGrid,
    DetectabilityTable,
    compute_maps,
    load_detectability,
)
from station.core.inspection import Inspector
from station.core.recipe import Recipe
from station.core.synthetic_defects import KINDS, paste_defect
from station.core.teach import predict_maps


def _good(i: int, shape=(96, 128)) -> np.ndarray:
    rng = np.random.default_rng(i)
    base = np.full(shape, 120, dtype=np.float32) + np.linspace(-20, 20, shape[1])[None, :]
    return np.clip(base + rng.normal(0, 3, shape), 0, 255).astype(np.uint8)


class CountingDetector:
    """The z-score detector of ``tests/helpers_detector.py`` that counts its ``predict`` calls."""

    def __init__(self) -> None:
        from helpers_detector import ZScoreDetector

        self.inner = ZScoreDetector()
        self.calls = 0

    def fit(self, images, progress=None, cancel=None):
        return self.inner.fit(images)

    def predict(self, images):
        self.calls += 1
        return self.inner.predict(images)


@pytest.fixture(scope="module")
def taught():
    det = CountingDetector()
    det.fit([_good(i) for i in range(12)])
    val = [_good(100 + i) for i in range(4)]
    maps, _ = predict_maps(det, val)
    recipe = Recipe("t", "test-zscore", {}, threshold=float(max(m.max() for m in maps)) * 1.02,
                    min_defect_area_px=40.0, preprocessing={"color_mode": "gray", "roi": None})
    return recipe, det, val


def test_pasting_is_deterministic_with_a_seed_and_stays_inside():
    image = np.dstack([_good(1)] * 3)
    allowed = np.zeros(image.shape[:2], dtype=bool)
    allowed[20:80, 30:100] = True
    for kind in KINDS:
        a, da = paste_defect(image, kind, 150, 30, np.random.default_rng([7, 1]), allowed)
        b, db = paste_defect(image, kind, 150, 30, np.random.default_rng([7, 1]), allowed)
        c, _ = paste_defect(image, kind, 150, 30, np.random.default_rng([8, 1]), allowed)
        assert np.array_equal(a, b) and da.bbox == db.bbox, kind
        assert not np.array_equal(a, c), kind  # another seed, another defect
        changed = np.any(a != image, axis=2)
        assert changed.any() and not (changed & ~allowed).any(), kind  # only inside the allowed region
        assert 0.5 * 150 <= da.drawn_area_px <= 1.5 * 150, (kind, da.drawn_area_px)


def test_recall_rises_with_the_area_and_rescoring_needs_no_detector(taught):
    recipe, det, val = taught
    grid = DetectabilityGrid(areas_px=(3.0, 10.0, 40.0, 160.0, 640.0), contrasts=(15.0, 60.0),
                             kinds=("dark_spot", "scratch"), per_cell=3, seed=3)
    cache = compute_maps(Inspector(recipe, det), val, grid)
    calls = det.calls
    table = cache.score(recipe.threshold, recipe.min_defect_area_px)
    dark = table.recall[0, :, 0]  # dark spots at the low contrast
    assert dark[0] == 0.0 and dark[-1] == 1.0  # a tiny spot is not found, a big one always
    assert np.all(np.diff(dark) >= 0), dark  # never falls as the area grows
    assert table.counts.sum() == grid.n_samples and table.counts.min() == grid.per_cell
    assert "dark spots" in table.sentence("dark_spot") and "grey levels" in table.sentence("dark_spot")

    # a larger minimum area, re-scored from the cached maps: the detector is not run again, and
    # defects below the new area are no longer found
    bigger = cache.score(recipe.threshold, 600.0)
    assert det.calls == calls
    assert bigger.recall.sum() < table.recall.sum()
    assert bigger.recall[:, :2].max() == 0.0

    # the same seed gives the same table, the same cells per defect
    again = compute_maps(Inspector(recipe, det), val, grid).score(recipe.threshold, recipe.min_defect_area_px)
    assert np.array_equal(again.recall, table.recall)
    assert DetectabilityTable.from_dict(table.to_dict()).sentences() == table.sentences()


def test_cli_eval_synthetic_prints_and_stores_the_table(tmp_path, capsys):
    from test_live_support import teach_recipe

    from station.cli.main import main
    from station.core.recipe import load_recipe

    good = tmp_path / "good"
    good.mkdir()
    import cv2

    for i in range(12):
        cv2.imwrite(str(good / f"{i:03d}.png"), _good(200 + i, (64, 80)))
    images = [cv2.imread(str(good / f"{i:03d}.png"), cv2.IMREAD_GRAYSCALE) for i in range(12)]
    part = teach_recipe(images[:8], images[8:], tmp_path / "models" / "tiny", min_defect_area_px=30)
    rc = main(["eval", "--synthetic", str(part), "--data", str(good), "--images", "3", "--per-cell", "2",
               "--contrasts", "20,80", "--area-factors", "0.5,2,8", "--device", "cpu"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "dark spots -- recall by contrast" in out and "this recipe finds" in out
    stored = load_detectability(load_recipe(part).path)
    assert stored is not None and stored.recall.shape == (4, 3, 2) and stored.n_images == 3
    assert stored.min_defect_area_px == 30.0

    # at another minimum area (the threshold re-estimated from the validation maps), printed only
    assert main(["eval", "--synthetic", str(part), "--data", str(good), "--images", "2", "--per-cell", "1",
                 "--min-area", "60", "--no-store", "--device", "cpu"]) == 0
    assert "minimum defect area 60 px" in capsys.readouterr().out
    assert load_detectability(load_recipe(part).path).min_defect_area_px == 30.0

    # a recipe that does not say what it was taught from, without --data: one clear line
    with pytest.raises(SystemExit, match="name the good images with --data"):
        main(["eval", "--synthetic", str(part), "--device", "cpu"])


def test_the_sentence_promises_only_what_every_larger_area_keeps():
    recall = np.array([[[0.0, 1.0], [0.0, 0.5], [0.5, 1.0], [1.0, 1.0]]])  # a lucky tiny area, then worse
    table = DetectabilityTable(("dark_spot",), (100.0, 400.0, 1600.0, 6400.0), (20.0, 80.0), recall,
                               np.full(recall.shape, 4), threshold=1.0, min_defect_area_px=400.0,
                               pixel_size_mm=0.05)
    assert table.sentence("dark_spot") == ("this recipe finds 100 % of dark spots of 4 mm² (1600 px) or larger "
                                           "at contrast >= 80 grey levels")
    table.recall[0, 3, 1] = 0.5  # the largest spots at the highest contrast are missed half the time
    assert DetectabilityTable.from_dict(table.to_dict()).sentence("dark_spot").startswith(
        "this recipe finds at most 100 % of dark spots")


def test_defects_go_on_the_part_mask_inside_the_region_of_interest():
    from station.app.detectability import placement_mask
    from station.detectors.variation import VariationModel

    # a bright disc on a dark background: the variation model's automatic part mask finds it
    yy, xx = np.mgrid[:64, :64]
    disc = np.where(np.hypot(xx - 32, yy - 32) < 20, 170, 20).astype(np.uint8)
    images = [np.clip(disc + np.random.default_rng(i).normal(0, 2, disc.shape), 0, 255).astype(np.uint8)
              for i in range(6)]
    model = VariationModel(mask="auto")
    model.fit(images)
    part = model.part_mask()
    assert part is not None and part.shape == (64, 64) and part[32, 32] and not part[2, 2]

    recipe = Recipe("t", "variation", {}, threshold=1.0, min_defect_area_px=10.0,
                    preprocessing={"color_mode": "gray", "roi": [10, 0, 64, 64]})
    allowed, where = placement_mask(recipe, model, (64, 80))  # the part lies in the ROI at x 10..74
    assert where == "the part mask" and allowed[32, 42] and not allowed[32, 5] and not allowed[2, 12]
    allowed, where = placement_mask(recipe, object(), (64, 80))  # no part mask: the region of interest
    assert where == "the region of interest" and allowed[:, 10:74].all() and not allowed[:, :10].any()
