"""``station train / eval / inspect-image / retune`` end to end on a synthetic MVTec-style category,
with a minimal test detector (the real detectors have their own tests)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from helpers_data import make_mvtec_category
from helpers_detector import register_test_detector

from station.cli.main import main
from station.core.metrics import pixel_curves, roc_auc
from station.core.recipe import load_recipe, versions


@pytest.fixture(scope="module")
def category(tmp_path_factory):
    register_test_detector()
    return make_mvtec_category(tmp_path_factory.mktemp("data") / "disc", n_train=12, n_good_test=4, n_defect=4)


def train(category, out, *extra):
    return main(["train", "--data", str(category), "--detector", "test-zscore", "--out", str(out),
                 "--validation-fraction", "0.25", "--min-area", "60", "-p", "floor=2.0", *extra])


def test_train_eval_inspect_retune(category, tmp_path, capsys):
    part = tmp_path / "models" / "disc"
    assert train(category, part) == 0
    recipe = load_recipe(part)
    assert recipe.version == 1 and recipe.detector_config == {"floor": 2.0}
    assert recipe.validation["n_images"] == 3 and recipe.training["n_images"] == 9
    assert max(recipe.validation["estimate"]["largest_area_px"]) < 60

    out = tmp_path / "eval"
    assert main(["eval", "--data", str(category), "--recipe", str(part), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "pixel AUC" in text and "spot" in text and "scratch" in text
    doc = json.loads((out / "metrics.json").read_text())
    overall = doc["metrics"]["overall"]
    assert overall["n_images"] == 12 and overall["n_defective"] == 8
    assert overall["accuracy_good"] == 1.0 and overall["accuracy_defective"] == 1.0  # easy synthetic defects
    for f in ("metrics.csv", "images.csv", "roc.png", "pro.png"):
        assert (out / f).stat().st_size > 0
    assert len(list((out / "overlays").rglob("*.jpg"))) == 12

    # the saved maps reproduce the reported metrics independently
    rows = list(csv.DictReader(open(out / "images.csv")))
    maps = [np.load(out / r["map_file"]) for r in rows]
    labels = np.array([r["label"] != "good" for r in rows])
    assert roc_auc([m.max() for m in maps], labels) == pytest.approx(overall["image_roc_auc_map_max"])
    from station.core.datasets import MVTecCategory, load_ground_truth
    samples = {s.name: s for s in MVTecCategory(category).test()}
    gts = [load_ground_truth(samples[r["image"]], m.shape) for r, m in zip(rows, maps, strict=True)]
    assert pixel_curves(maps, gts).pixel_roc_auc() == pytest.approx(overall["pixel_roc_auc"])

    img = category / "test" / "spot" / "000.png"
    good = category / "test" / "good" / "000.png"
    assert main(["inspect-image", str(part), str(good)]) == 0
    assert main(["inspect-image", str(part), str(img), "--overlay", str(tmp_path / "ov")]) == 1
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert lines[0]["verdict"] == "OK" and lines[1]["verdict"] == "NG" and lines[1]["regions"]
    assert (tmp_path / "ov" / "000_overlay.png").exists()

    assert main(["retune", str(part), "--min-area", "5"]) == 0
    assert [v for v, _ in versions(part)] == [1, 2]
    v2 = load_recipe(part)
    assert v2.min_defect_area_px == 5 and v2.threshold >= recipe.threshold


def test_broken_input_gives_clear_messages_and_the_rest_completes(category, tmp_path, capsys):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(category, broken)
    (broken / "test" / "spot" / "001.png").write_bytes(b"not a png")
    (broken / "ground_truth" / "scratch" / "002_mask.png").unlink()
    part = tmp_path / "m"
    assert train(category, part) == 0
    out = tmp_path / "e"
    assert main(["eval", "--data", str(broken), "--recipe", str(part), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "001.png" in text and "not a readable image" in text
    assert "002_mask.png is missing" in text
    overall = json.loads((out / "metrics.json").read_text())["metrics"]["overall"]
    assert overall["n_images"] == 11  # the corrupt image is skipped
    assert overall["n_images_pixel_metrics"] == 10  # the image without mask counts for image metrics only

    (tmp_path / "empty").mkdir()
    assert main(["train", "--data", str(tmp_path / "empty"), "--detector", "test-zscore", "--out", str(tmp_path / "x")]) == 2
    assert main(["eval", "--data", str(tmp_path / "nope"), "--recipe", str(part)]) == 2
    assert main(["inspect-image", str(tmp_path / "no-recipe"), str(category / "test/good/000.png")]) == 2
    assert main(["train", "--data", str(category), "--detector", "patchcor", "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert "holds no images" in err and "folder not found" in err and "recipe not found" in err
    assert "Did you mean 'patchcore'" in err


def test_eval_with_a_region_of_interest_scores_the_pixels_inspected(category, tmp_path, capsys):
    """The anomaly map covers the ROI only: the ground truth is cropped to it (pixel metrics are over
    the inspected pixels) and the overlays show that part of the image."""
    from station.core.images import load_image

    part = tmp_path / "models" / "disc-roi"
    assert train(category, part, "--roi", "6,4,84,88") == 0
    assert load_recipe(part).preprocessing["roi"] == [6, 4, 84, 88]
    out = tmp_path / "eval"
    assert main(["eval", "--data", str(category), "--recipe", str(part), "--out", str(out)]) == 0
    assert "ground-truth mask is" not in capsys.readouterr().out  # no mask refused for its size
    overall = json.loads((out / "metrics.json").read_text())["metrics"]["overall"]
    assert overall["n_images_pixel_metrics"] == 12 and overall["pixel_roc_auc"] > 0.9
    assert overall["au_pro"] is not None and overall["region_overlap"] is not None
    rows = list(csv.DictReader(open(out / "images.csv")))
    assert {np.load(out / r["map_file"]).shape for r in rows} == {(88, 84)}
    overlay = load_image(next((out / "overlays").rglob("*.jpg")))
    assert overlay.shape[0] == 88  # panels of the inspected part, not of the whole 96x96 image
