"""Review with a region of interest: the result Review rebuilds for one image, and the overlays of its
``Export report…``, are those of ``station eval`` -- the heatmap over the inspected part only, regions
and ground truth where they lie in the image (issue 14 item 1)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_data import make_mvtec_category
from helpers_detector import register_test_detector

from station.app.review import ReviewRequest, export_report, inspection_of, run_review
from station.cli.main import main
from station.core.images import load_image
from station.core.recipe import load_recipe

ROI = (6, 4, 84, 88)


@pytest.fixture(scope="module")
def roi_recipe(tmp_path_factory):
    register_test_detector()
    root = tmp_path_factory.mktemp("roi")
    data = make_mvtec_category(root / "disc", n_train=12, n_good_test=2, n_defect=2)
    part = root / "models" / "disc-roi"
    assert main(["train", "--data", str(data), "--detector", "test-zscore", "--out", str(part),
                 "--validation-fraction", "0.25", "--min-area", "20", "-p", "floor=2.0",
                 "--roi", ",".join(map(str, ROI))]) == 0
    return data, part


def test_review_rebuilds_the_result_of_an_roi_recipe_in_image_coordinates(roi_recipe):
    data, part = roi_recipe
    outcome = run_review(ReviewRequest(data=data, recipe_path=part))
    assert outcome.recipe.preprocessing["roi"] == list(ROI)
    x, y, w, h = ROI
    defective = [i for i, r in enumerate(outcome.result.records) if r.is_anomalous and r.n_regions]
    assert defective, "the test detector finds the drawn defects"
    for i in defective:
        image, inspection, mask = inspection_of(outcome, i)
        assert inspection.roi == ROI  # the heatmap is placed over the inspected part, not stretched
        assert inspection.anomaly_map.shape == (h, w)
        assert len(inspection.regions) == outcome.result.records[i].n_regions
        for region in inspection.regions:  # in image coordinates: inside the ROI, shifted by its corner
            bx, by, bw, bh = region.bbox
            assert x <= bx and y <= by and bx + bw <= x + w and by + bh <= y + h
        # the ground truth lies where the defect is in the image, as the file says
        assert mask is not None and mask.shape == image.shape[:2]
        truth = load_image(data / "ground_truth" / outcome.result.records[i].label /
                           f"{outcome.result.records[i].name.split('/')[-1].rsplit('.', 1)[0]}_mask.png",
                           "gray") > 127
        assert np.array_equal(mask, truth & _inside(mask.shape))


def _inside(shape):
    x, y, w, h = ROI
    keep = np.zeros(shape, bool)
    keep[y:y + h, x:x + w] = True
    return keep


def test_review_export_and_station_eval_draw_the_same_overlays(roi_recipe, tmp_path):
    data, part = roi_recipe
    assert main(["eval", "--data", str(data), "--recipe", str(part), "--out", str(tmp_path / "eval")]) == 0
    outcome = run_review(ReviewRequest(data=data, recipe_path=part))
    export_report(outcome, tmp_path / "review")
    evals = sorted((tmp_path / "eval" / "overlays").rglob("*.jpg"))
    assert len(evals) == len(outcome.result.records)
    for path in evals:
        mine = tmp_path / "review" / path.relative_to(tmp_path / "eval")
        assert np.array_equal(load_image(mine), load_image(path)), f"{path.name}: overlays differ"
    assert load_recipe(part).preprocessing["roi"] == list(ROI)
