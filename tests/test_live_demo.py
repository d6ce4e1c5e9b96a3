"""The embedded demo: the synthetic washer taught with the variation model and inspected live.

It checks that the demo part is really teachable and inspectable with the station's default detector.
"""

from __future__ import annotations

import sqlite3

import pytest

from station.acquisition.base import open_source
from station.app.demo import ensure_demo_recipe, teach_demo_recipe
from station.core.recipe import load_recipe
from station.live.pipeline import LivePipeline
from station.live.results_db import ResultsLog

pytestmark = pytest.mark.timeout(300)


def test_demo_part_is_taught_with_the_variation_model_and_inspected(tmp_path):
    folder = teach_demo_recipe(tmp_path / "models")
    recipe = load_recipe(folder)
    assert recipe.detector_kind == "variation" and recipe.version == 1
    assert ensure_demo_recipe(tmp_path / "models") == folder  # taught once, then loaded
    db = ResultsLog(tmp_path / "r.db")
    source = open_source("synthetic://demo?fps=0&count=80&live=0&defect_rate=0.5&seed=11")
    pipe = LivePipeline(source, recipe, results=db)
    pipe.start()
    assert pipe.wait(240)
    db.close()
    s = pipe.stats()
    assert s.inspected == 80 and s.failed == 0
    rows = sqlite3.connect(tmp_path / "r.db").execute("SELECT label, verdict FROM inspections").fetchall()
    defective = [v for label, v in rows if label != "good"]
    good = [v for label, v in rows if label == "good"]
    recall = defective.count("NG") / len(defective)
    pass_rate = good.count("OK") / len(good)
    assert recall >= 0.8, f"only {recall:.0%} of the defective demo parts found"
    assert pass_rate >= 0.8, f"only {pass_rate:.0%} of the good demo parts passed"
