"""Issue-2 acceptance, end to end through the CLI: ``station train`` + ``station eval`` with the
variation model on the whole MVTec AD bottle category (skips without the data; ~2 minutes).

The reported metrics are then recomputed independently from the maps ``station eval`` saved, with a
rank statistic (Mann-Whitney) instead of the station's curve code.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy.stats import rankdata

from station.cli.main import main
from station.core.datasets import MVTecCategory, load_ground_truth

pytestmark = [pytest.mark.slow, pytest.mark.mvtec, pytest.mark.timeout(900)]


def mann_whitney_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    ranks = rankdata(scores)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def test_variation_model_meets_the_acceptance_numbers_on_bottle(mvtec_bottle, tmp_path, capsys):
    part = tmp_path / "models" / "bottle"
    assert main(["train", "--data", str(mvtec_bottle), "--detector", "variation", "--out", str(part)]) == 0
    out = tmp_path / "eval"
    assert main(["eval", "--data", str(mvtec_bottle), "--recipe", str(part), "--out", str(out),
                 "--no-overlays"]) == 0
    print(capsys.readouterr().out)
    m = json.loads((out / "metrics.json").read_text())["metrics"]["overall"]
    assert m["n_images"] == 83 and m["n_images_pixel_metrics"] == 83
    assert m["pixel_roc_auc"] >= 0.96
    assert m["image_roc_auc"] >= 0.98
    assert m["accuracy_good"] >= 0.95
    assert m["accuracy_defective"] >= 0.90

    # independent re-computation from the saved maps and the data set's own masks
    rows = list(csv.DictReader(open(out / "images.csv", encoding="utf-8")))
    samples = {s.name: s for s in MVTecCategory(mvtec_bottle).test()}
    labels = np.array([r["label"] != "good" for r in rows])
    maps = [np.load(out / r["map_file"]) for r in rows]
    assert mann_whitney_auc(np.array([mp.max() for mp in maps]), labels) == pytest.approx(m["image_roc_auc"], abs=1e-9)
    step = 3  # every third pixel row/column keeps the rank statistic's memory modest
    pix = np.concatenate([mp[::step, ::step].ravel() for mp in maps])
    gts = np.concatenate([load_ground_truth(samples[r["image"]], mp.shape)[::step, ::step].ravel()
                          for r, mp in zip(rows, maps, strict=True)])
    assert mann_whitney_auc(pix, gts) == pytest.approx(m["pixel_roc_auc"], abs=2e-3)
