"""The input and drift watch (issue 16 item 2) on the demo stream, Qt-free.

Acceptance: on ``synthetic://demo`` with the light dimmed by 20 % halfway, the warning comes before 1 %
extra false rejects have accumulated; a blurred and an empty frame are "input out of range" in the
results log, never OK. The false rejects are counted from the results log and the source's labels.

"Extra false rejects accumulated" is measured as the run's false-reject rate (good parts judged NG
over good parts seen, from the start of the run) at the first warning, less the rate before the
change: the share of good parts the change has cost the run by the time the station warns.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from station.acquisition.synthetic import NOMINAL, Conditions, SyntheticPart, SyntheticSource
from station.app.demo import teach_demo_recipe
from station.core.frame_stats import input_profile, measure
from station.core.recipe import Recipe, load_recipe
from station.live.drift import Cusum, DriftWatch
from station.live.input_watch import InputCheck, InputWatch
from station.live.results_db import ResultsLog, query
from station.live.session import LiveSession
from station.live.stats import PipelineStats

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The station's own demo recipe (the variation model, as `make run` teaches it: ~4 s)."""
    return teach_demo_recipe(tmp_path_factory.mktemp("models"))


def _run(uri, recipe, db_path, **kwargs):
    results = ResultsLog(db_path, durability="normal")
    session = LiveSession(uri, recipe, results=results, golden=False, **kwargs)
    session.start()
    deadline = time.monotonic() + 150
    while session.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not session.running and session.error is None
    results.close()
    return session, list(query(db_path))


def _false_reject_rates(rows, change):
    """(rate before the change, the run's accumulated rate at each frame) over good parts."""
    good_before = [r for r in rows if r["frame_id"] < change and r["label"] == "good"]
    base = sum(r["verdict"] == "NG" for r in good_before) / len(good_before)
    rates, fr, good = {}, 0, 0
    for r in rows:
        if r["label"] == "good":
            good += 1
            fr += r["verdict"] == "NG"
        rates[r["frame_id"]] = fr / max(1, good)
    return base, rates


def test_light_dimmed_by_20_percent_halfway_is_warned_at_once_and_never_judged_ok(demo, tmp_path):
    change = 100
    session, rows = _run(f"synthetic://demo?light=0.8&change_at={change}&count=160&fps=0&live=0",
                         demo, tmp_path / "r.sqlite")
    assert [r["frame_id"] for r in rows] == list(range(160))  # every frame logged, in order
    before, after = rows[:change], rows[change:]
    assert not any(r["warning"] for r in before)  # no false alarm on the taught light
    assert all(r["verdict"] in ("OK", "NG") for r in before)
    # the first dimmed frame is already refused: nothing judged, nothing OK, no part rejected
    assert {r["verdict"] for r in after} == {"OUT_OF_RANGE"}
    assert all("too dark" in r["error"] for r in after)
    first_drift = next(r["frame_id"] for r in rows if r["warning"])
    assert change <= first_drift <= change + 5 and "darker" in rows[first_drift]["warning"]
    base, rates = _false_reject_rates(rows, change)
    extra = rates[change] - base  # at the first warning (the refused frame itself)
    print(f"false rejects before the change {base:.2%}; extra at the warning {extra:.2%}; "
          f"drift warning at frame {first_drift}")
    assert extra < 0.01
    stats = session.stats()
    assert stats.out_of_range == 60 and stats.accounted()
    assert stats.yield_percent == pytest.approx(100.0 * stats.ok / 160)  # refused parts are not good parts
    assert "darker" in session.health().drift_warning and "too dark" in session.health().input_problem


def test_a_lamp_dimmed_by_3_percent_is_warned_before_false_rejects_accumulate(demo, tmp_path):
    """Within the accepted range the frames are judged -- and this recipe starts rejecting good parts
    at once (about 1 in 8): the drift watch must say so before they add up to 1 % of the run."""
    change = 150
    _, rows = _run(f"synthetic://demo?light=0.97&change_at={change}&count=200&fps=0&live=0",
                   demo, tmp_path / "r.sqlite")
    assert all(r["verdict"] in ("OK", "NG") for r in rows)  # in range: judged, never refused
    assert not any(r["warning"] for r in rows[:change])
    first = next(r["frame_id"] for r in rows if r["warning"])
    base, rates = _false_reject_rates(rows, change)
    good_after = [r for r in rows[change:] if r["label"] == "good"]
    fr_before_warning = sum(r["verdict"] == "NG" for r in good_after if r["frame_id"] < first)
    extra = rates[first] - base
    print(f"warning {first - change} frames after the change; {fr_before_warning} false rejects before it; "
          f"extra false-reject rate of the run then {extra:.2%}")
    assert first - change <= 15 and extra < 0.01
    # the change matters: judged on without the warning, the good parts rejected would keep adding up
    assert sum(r["verdict"] == "NG" for r in good_after) / len(good_after) > base + 0.05


def test_blurred_and_empty_frames_are_out_of_range_in_the_log_never_ok(demo, tmp_path):
    # frames 0, 1 as taught; 2 and 5 empty fixtures; 3, 4 (and 5) blurred
    _, rows = _run("synthetic://demo?blur=1.5&change_at=3&empty_every=3&count=6&fps=0&live=0&defect_rate=0",
                   demo, tmp_path / "r.sqlite")
    verdicts = {r["frame_id"]: (r["verdict"], r["error"] or "", r["label"]) for r in rows}
    assert verdicts[0][0] in ("OK", "NG") and verdicts[1][0] in ("OK", "NG")
    for frame in (2, 3, 4, 5):
        assert verdicts[frame][0] == "OUT_OF_RANGE", verdicts[frame]
    assert "no part" in verdicts[2][1] and verdicts[2][2] == "empty"
    assert "blurred" in verdicts[3][1] and "blurred" in verdicts[4][1]


def test_the_profile_is_taught_stored_and_its_absence_turns_the_watch_off(demo, caplog):
    recipe = load_recipe(demo)
    m = recipe.input_profile["measures"]
    assert set(m) == {"brightness", "contrast", "sharpness", "presence"}
    for spec in m.values():
        assert spec["range"][0] < spec["min"] <= spec["mean"] <= spec["max"] <= spec["range"][1]
    part = SyntheticPart(seed=0)
    watch = InputWatch(recipe)
    assert watch.enabled and not watch.check(part.render(7, "spot").image).problem  # a defect is judged
    old = Recipe(**{**{k: getattr(recipe, k) for k in ("name", "detector_kind", "detector_config",
                                                         "threshold", "min_defect_area_px")}})
    with caplog.at_level(logging.INFO):
        assert not InputWatch(old).enabled
        drift = DriftWatch(old)
    assert "input watch off" in caplog.text and "taught before" in caplog.text
    assert not drift.enabled  # no validation scores, no profile: nothing to compare with


def test_cusum_accumulates_a_small_shift_and_ignores_one_wild_value():
    c = Cusum(mean=10.0, sd=1.0)
    c.update(1000.0)  # one hand in the picture: clipped to 4 sd
    assert c.high == pytest.approx(3.5)
    rng = np.random.default_rng(0)
    for x in rng.normal(10.0, 1.0, 500):
        c.update(float(x))
    assert c.level < 12  # in control: no alarm over 500 frames
    steps = 0
    while c.low <= 12:
        c.update(float(rng.normal(8.5, 1.0)))  # a 1.5 sd drop
        steps += 1
    assert steps <= 25 and not c.rising


def test_drift_watch_follows_ok_scores_only_and_clears_again():
    profile = input_profile([SyntheticPart(seed=0).render(i).image for i in range(20)])
    recipe = Recipe("p", "k", {}, 5.0, 10.0, validation={"scores": [1.0, 1.2, 0.8, 1.1, 0.9, 1.0]},
                    input_profile=profile)
    watch = DriftWatch(recipe, alarm_level=6.0)

    class R:  # the two fields the watch reads of a result
        def __init__(self, score, ng=False):
            self.score, self.is_ng = score, ng

    for _ in range(10):
        assert not watch.observe(InputCheck(), R(5.0, ng=True)).warning  # NG parts never feed it
    states = [watch.observe(InputCheck(), R(1.6)) for _ in range(10)]
    assert "score higher" in states[-1].warning
    for _ in range(80):  # back in control the CUSUM falls by about k = 0.5 a frame
        state = watch.observe(InputCheck(), R(1.0))
    assert state.warning == ""
    assert not DriftWatch(recipe, alarm_level=0).enabled


def test_synthetic_conditions_are_uri_options():
    src = SyntheticSource.from_uri("synthetic://demo?light=0.8&blur=2&shift=5,-3&change_at=10&empty_every=4")
    assert src.conditions_at(9) == NOMINAL
    assert src.conditions_at(10) == Conditions(light=0.8, blur=2.0, shift=(5.0, -3.0))
    assert src.conditions_at(11).empty  # (11 + 1) % 4 == 0
    part = SyntheticPart(seed=0)
    dim = measure(part.render(3, conditions=Conditions(light=0.8)).image)["brightness"]
    assert dim == pytest.approx(0.8 * measure(part.render(3).image)["brightness"], rel=0.05)
    assert part.render(3, conditions=Conditions(empty=True)).label == "empty"
    with pytest.raises(Exception, match="light must be > 0"):
        SyntheticSource.from_uri("synthetic://demo?light=0")


def test_stats_and_results_count_out_of_range_apart():
    s = PipelineStats(acquired=10, inspected=8, ok=6, ng=2, out_of_range=2)
    assert s.accounted() and s.yield_percent == pytest.approx(60.0)


def test_line_outputs_carry_out_of_range_and_the_drift_warning(tmp_path):
    from station.acquisition.base import Frame
    from station.lineio.control import StationControl
    from station.lineio.message import SCHEMA, result_message
    from station.lineio.modbus_server import status_registers
    from station.live.dispatch import row_for
    from station.live.result import LiveResult

    frame = Frame(image=np.zeros((8, 8, 3), np.uint8), frame_id=7, timestamp=1.0e9, pixel_format="RGB8",
                  source="synthetic://demo", meta={})
    live = LiveResult(1, frame, None, None, 0.0, 0.0, input_problem="input out of range: too dark (...)",
                      warning="drift: the frames are getting darker")
    assert live.verdict == "OUT_OF_RANGE"
    with ResultsLog(tmp_path / "r.sqlite", durability="normal") as log:
        live.row_id = log.record(row_for(live))
    row = next(query(tmp_path / "r.sqlite"))
    assert (row["verdict"], row["error"], row["warning"]) == ("OUT_OF_RANGE", live.input_problem, live.warning)
    msg = result_message("st1", row)
    assert msg["schema"] == SCHEMA == "station.result/2" and msg["warning"] == live.warning
    control = StationControl()
    control.on_result(live)
    regs = status_registers(control.snapshot())
    assert regs[1] == 4 and regs[19] == 1  # verdict OUT_OF_RANGE, drift warning on
    assert control.snapshot()["counters"]["ok"] == 0  # never counted OK
