"""Golden-part self-test (issue 16 item 3): known OK/NG parts stored in the recipe are judged before
inspecting; a wrong verdict blocks inspection (or warns) with a clear message, audited; `station
selftest --recipe` runs them headless. Qt-free, with the fast test detector."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import test_live_support as support

from station.acquisition.synthetic import SyntheticPart
from station.app.audit import AuditLog
from station.app.golden import record_golden_run, store_golden_parts
from station.core.golden import (
    GoldenError,
    add_golden_part,
    golden_parts,
    has_golden,
    run_golden,
    set_on_failure,
)
from station.core.images import save_image
from station.core.recipe import GOLDEN_PREFIX, load_recipe, save_recipe
from station.core.regions import Verdict
from station.detectors.runtime import load_inspector
from station.live.session import LiveSession

pytestmark = pytest.mark.timeout(120)

PART = SyntheticPart(seed=0)
OK_PARTS = (500, 501)  # good parts the demo recipe judges OK
NG_PARTS = ((500, "spot"), (501, "scratch"))
GOOD = "v0002"  # the version with golden parts and the taught threshold (tests add edited versions)


@pytest.fixture(scope="module")
def golden_recipe(tmp_path_factory):
    """The demo part taught with the test detector, with two OK and two NG golden parts (v2)."""
    folder = support.teach_demo_recipe(tmp_path_factory.mktemp("models") / "demo")
    recipe = load_recipe(folder)
    for i in OK_PARTS:
        add_golden_part(recipe, f"ok_{i}", PART.render(i).image, "OK")
    for i, kind in NG_PARTS:
        add_golden_part(recipe, f"ng_{kind}", PART.render(i, kind).image, Verdict.NG, note=kind)
    save_recipe(recipe, folder)
    return folder


def _with(folder, threshold_factor=1.0, mode=None):
    """A new version of the golden recipe with its threshold scaled (an engineer's edit)."""
    recipe = load_recipe(folder / GOOD)
    recipe.threshold *= threshold_factor
    if mode:
        set_on_failure(recipe, mode)
    save_recipe(recipe, folder)
    return load_recipe(folder)


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


# --- stored in the recipe --------------------------------------------------------------------------
def test_golden_parts_round_trip_and_never_reach_the_detector(golden_recipe):
    old = load_recipe(golden_recipe / "v0001")  # a recipe saved without golden parts still loads
    assert old.golden == {} and not has_golden(old) and golden_parts(old) == []
    recipe = load_recipe(golden_recipe / GOOD)
    parts = golden_parts(recipe)
    assert [(p.name, p.expected.value) for p in parts] == [("ok_500", "OK"), ("ok_501", "OK"),
                                                            ("ng_spot", "NG"), ("ng_scratch", "NG")]
    assert np.array_equal(parts[2].image, PART.render(500, "spot").image)
    assert recipe.golden["on_failure"] == "block"
    assert not any(k.startswith(GOLDEN_PREFIX) for k in recipe.detector_state())
    assert sorted(recipe.detector_state()) == sorted(old.detector_state())


def test_bad_golden_parts_are_refused_in_one_line(golden_recipe):
    recipe = load_recipe(golden_recipe / GOOD)
    with pytest.raises(GoldenError, match="use OK or NG"):
        add_golden_part(recipe, "x", PART.render(1).image, "maybe")
    with pytest.raises(GoldenError, match="name"):
        add_golden_part(recipe, "../evil", PART.render(1).image, "OK")
    with pytest.raises(GoldenError, match="8-bit image"):
        add_golden_part(recipe, "tiny", np.zeros((4, 4), np.float32), "OK")
    with pytest.raises(GoldenError, match="block or warn"):
        set_on_failure(recipe, "ignore")


# --- judged ------------------------------------------------------------------------------------------
def test_the_taught_recipe_passes_its_golden_parts(golden_recipe):
    recipe = load_recipe(golden_recipe / GOOD)
    report = run_golden(recipe, load_inspector(recipe))
    assert report.passed and not report.blocks, report.message()
    assert "passed for demo v2: 4 of 4" in report.message()


def test_a_threshold_edited_far_too_high_fails_and_blocks_with_a_clear_message(golden_recipe):
    recipe = _with(golden_recipe, threshold_factor=50.0)
    report = run_golden(recipe, load_inspector(recipe))
    assert not report.passed and report.blocks
    assert [o.name for o in report.wrong] == ["ng_spot", "ng_scratch"]
    message = report.message()
    assert f"FAILED for {recipe.label}: 2 of 4 known parts judged wrong" in message
    assert "ng_spot expected NG, got OK" in message and "Inspection is blocked" in message


def test_a_part_that_cannot_be_inspected_counts_as_wrong(golden_recipe):
    recipe = load_recipe(golden_recipe / GOOD)
    add_golden_part(recipe, "ok_small", PART.render(3).image[:128, :128], "OK")
    report = run_golden(recipe, load_inspector(recipe))
    [wrong] = report.wrong
    assert wrong.name == "ok_small" and wrong.got is None and "could not be inspected" in report.message()


# --- on the line -------------------------------------------------------------------------------------
def test_live_inspection_is_blocked_before_the_first_frame(golden_recipe):
    recipe = _with(golden_recipe, threshold_factor=50.0)
    reports = []
    s = LiveSession("synthetic://demo?fps=0", recipe.path, on_golden=reports.append)
    s.start()
    assert _wait(lambda: not s.running)
    [error] = s.drain_errors()
    assert error.where == "recipe" and "golden-part self-test FAILED" in error.message
    assert "Inspection is blocked" in error.message
    assert s.stats().ok + s.stats().ng == 0  # not one part judged by the untrustworthy recipe
    assert len(reports) == 1 and reports[0].blocks


def test_a_warn_only_recipe_runs_on_with_the_warning(golden_recipe):
    recipe = _with(golden_recipe, threshold_factor=50.0, mode="warn")
    s = LiveSession("synthetic://demo?fps=0", recipe.path)
    s.start()
    try:
        assert s.first_result.wait(30)
        assert "golden-part self-test FAILED" in s.health().golden_warning
        assert "Inspection goes on" in s.health().golden_warning
    finally:
        s.stop()


def test_a_threshold_changed_far_too_high_while_running_stops_the_line(golden_recipe):
    recipe = _with(golden_recipe)  # a good threshold
    s = LiveSession("synthetic://demo?fps=0", recipe.path)
    s.start()
    try:
        assert s.first_result.wait(30) and s.golden_report is not None and s.golden_report.passed
        s.set_threshold(recipe.threshold * 50)
        assert _wait(lambda: not s.running)
        assert any("golden-part self-test FAILED" in e.message for e in s.drain_errors())
    finally:
        s.stop()


def test_without_golden_parts_nothing_changes(golden_recipe):
    s = LiveSession("synthetic://demo?fps=0", golden_recipe / "v0001")
    s.start()
    try:
        assert s.first_result.wait(30) and s.golden_report is None
    finally:
        s.stop()


# --- audited, and headless from the command line -----------------------------------------------------
def test_each_run_is_audited(golden_recipe, tmp_path):
    audit = AuditLog(tmp_path / "audit.jsonl")
    recipe = _with(golden_recipe, threshold_factor=50.0)
    record_golden_run(audit, run_golden(recipe, load_inspector(recipe)), reason="shift start")
    [entry], bad = audit.entries()
    assert bad == 0 and entry.action == "golden.blocked" and entry.target == recipe.label
    assert entry.new == "2/4 right" and entry.extra["reason"] == "shift start"
    assert entry.extra["report"]["parts"][2] == {**entry.extra["report"]["parts"][2], "expected": "NG", "got": "OK"}


def test_station_golden_add_and_selftest_recipe(golden_recipe, tmp_path, monkeypatch, capsys):
    from station.cli import selftest
    from station.cli.main import main

    monkeypatch.setenv("STATION_HOME", str(tmp_path / "home"))
    part = tmp_path / "models" / "demo"
    save_recipe(load_recipe(golden_recipe / "v0001"), part)  # a recipe without golden parts
    for name, image in (("good.png", PART.render(501).image), ("spot.png", PART.render(500, "spot").image)):
        save_image(tmp_path / name, image)
    assert main(["golden", "add", str(part), "--ok", str(tmp_path / "good.png"),
                 "--ng", str(tmp_path / "spot.png")]) == 0
    out = capsys.readouterr().out
    assert "demo v2: 2 golden parts (1 OK, 1 NG); a wrong verdict: block" in out and "NG  ng_spot" in out

    fast = {"qt", "detectors", "camera", "onnxruntime", "synthetic", "device", "weights", "line"}
    [check] = [r for r in selftest.run_checks(skip=fast, recipes=[part]) if r.name.startswith("golden:")]
    assert check.status == "pass" and "2 golden parts (1 OK, 1 NG) judged right" in check.detail
    edited = load_recipe(part)
    edited.threshold *= 50
    save_recipe(edited, part)
    [check] = [r for r in selftest.run_checks(skip=fast, recipes=[part]) if r.name.startswith("golden:")]
    assert check.failed and "ng_spot expected NG, got OK" in check.detail
    lines = (tmp_path / "home" / "audit.jsonl").read_text().splitlines()
    assert [json.loads(x)["action"] for x in lines] == ["golden.parts", "golden.passed", "golden.blocked"]
    without = selftest.run_checks(skip=fast, recipes=[golden_recipe / "v0001"])
    assert [r.status for r in without if r.name.startswith("golden:")] == ["skip"]


def test_a_bad_file_stores_nothing(golden_recipe, tmp_path):
    part = tmp_path / "demo"
    save_recipe(load_recipe(golden_recipe / "v0001"), part)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(Exception, match="broken.png"):
        store_golden_parts(load_recipe(part), part, ok=[tmp_path / "broken.png"])
    assert [p.name for p in part.iterdir() if p.name.startswith("v")] == ["v0001"]
