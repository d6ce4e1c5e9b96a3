"""Recipes: round trip, versions, atomic save, and clear errors for broken files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from station.core.recipe import Recipe, RecipeError, load_recipe, save_recipe, versions


def make_recipe(**kw) -> Recipe:
    state = {"mean": np.arange(12, dtype=np.float32).reshape(3, 4), "_validation/0000": np.ones((2, 2), np.float32)}
    return Recipe(name="bracket", detector_kind="variation", detector_config={"k": 3.0},
                  threshold=1.5, min_defect_area_px=40, state=state, **kw)


def test_round_trip_and_versions(tmp_path):
    part = tmp_path / "models" / "bracket"
    first = save_recipe(make_recipe(), part)
    second = save_recipe(make_recipe(notes="second"), part)
    assert first.name == "v0001" and second.name == "v0002"
    assert [v for v, _ in versions(part)] == [1, 2]
    latest = load_recipe(part)
    assert latest.version == 2 and latest.notes == "second" and latest.path == second
    assert latest.detector_config == {"k": 3.0} and latest.threshold == 1.5
    np.testing.assert_array_equal(latest.state["mean"], make_recipe().state["mean"])
    assert set(latest.detector_state()) == {"mean"} and len(latest.validation_maps()) == 1
    assert load_recipe(first).version == 1
    assert load_recipe(first / "recipe.json").version == 1
    meta = json.loads((second / "recipe.json").read_text())
    assert meta["schema_version"] == 1 and meta["detector_kind"] == "variation"  # human-readable JSON
    assert not list(part.glob(".saving-*"))


def test_failed_save_leaves_nothing_behind(tmp_path):
    part = tmp_path / "p"
    save_recipe(make_recipe(), part)
    bad = make_recipe(notes=object())  # not JSON-serialisable: fails mid-save
    with pytest.raises(TypeError):
        save_recipe(bad, part)
    assert [v for v, _ in versions(part)] == [1]
    assert not list(part.glob(".saving-*"))


def test_corrupt_json_names_the_file_and_the_older_version(tmp_path):
    part = tmp_path / "p"
    save_recipe(make_recipe(), part)
    v2 = save_recipe(make_recipe(), part)
    (v2 / "recipe.json").write_text('{"schema_version": 1, "name": "x"', encoding="utf-8")
    with pytest.raises(RecipeError, match=r"corrupt or truncated JSON.*v0001"):
        load_recipe(part)


def test_truncated_tensors_are_detected(tmp_path):
    v1 = save_recipe(make_recipe(), tmp_path / "p")
    data = (v1 / "tensors.safetensors").read_bytes()
    (v1 / "tensors.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(RecipeError, match="checksum"):
        load_recipe(v1)


def test_newer_schema_is_refused_clearly(tmp_path):
    v1 = save_recipe(make_recipe(), tmp_path / "p")
    meta = json.loads((v1 / "recipe.json").read_text())
    meta["schema_version"] = 99
    (v1 / "recipe.json").write_text(json.dumps(meta))
    with pytest.raises(RecipeError, match="newer station"):
        load_recipe(v1)


@pytest.mark.parametrize("content", ["[]", '{"schema_version": 1}', '{"name": "x"}', ""])
def test_not_a_recipe(tmp_path, content):
    v1 = save_recipe(make_recipe(), tmp_path / "p")
    (v1 / "recipe.json").write_text(content)
    with pytest.raises(RecipeError):
        load_recipe(v1)


def test_missing_paths(tmp_path):
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecipeError, match="no saved recipe versions"):
        load_recipe(tmp_path / "empty")
    v1 = save_recipe(make_recipe(), tmp_path / "p")
    (v1 / "tensors.safetensors").unlink()
    with pytest.raises(RecipeError, match="tensor file missing"):
        load_recipe(v1)
