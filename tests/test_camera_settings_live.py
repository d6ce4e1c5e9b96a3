"""A recipe's camera settings reach the camera when ``station inspect`` runs with it: a recipe taught
on 128x120 gray images inspects the simulated viky camera (400x400 RGBa by default) only because the
recipe keeps width, height and pixel format."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers_detector import register_test_detector

from station.acquisition.gentl import simulated_producer
from station.app.teach_session import TeachSession
from station.cli.main import main

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(simulated_producer() is None, reason="viky.cti (genicam package) not installed")]


def _recipe(tmp_path, camera: dict) -> str:
    register_test_detector()
    s = TeachSession(models_dir=tmp_path / "models", part_name="viky", detector_kind="test-zscore")
    rng = np.random.default_rng(0)
    for i in range(6):
        s.add_image(rng.integers(0, 255, (120, 128), dtype=np.uint8), f"sample {i}")
    s.camera_settings = camera
    s.train()
    return str(s.save())


def _inspect(tmp_path, recipe: str, name: str) -> dict:
    out = tmp_path / f"{name}.json"
    # taught on noise, the camera shows its test pattern: the input watch would rightly refuse every
    # frame as unlike the teach images, so it is off -- this test is about the frames' size and format
    main(["inspect", "--source", "genicam://1?fps=60", "--recipe", recipe, "--frames", "5", "--no-db",
          "--no-archive", "--no-line-io", "--print", "none", "--json", str(out), "--no-input-watch"])
    return json.loads(out.read_text())


def test_the_recipes_camera_settings_reach_the_camera(tmp_path):
    kept = _recipe(tmp_path, {"width": 128, "height": 120, "pixel_format": "Mono8"})
    stats = _inspect(tmp_path, kept, "kept")
    assert stats["inspected"] == 5 and stats["failed"] == 0, stats
    bare = _recipe(tmp_path / "bare", {})  # the same part without them: the camera's 400x400 frames fail
    without = _inspect(tmp_path, bare, "bare")
    assert without["inspected"] == 0 and without["failed"] == 5, without
