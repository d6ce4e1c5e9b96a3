"""Real frames from the simulated GenICam camera (viky.cti through harvesters) inspected end to end,
including a camera cut mid-run that the run survives."""

from __future__ import annotations

import sqlite3
import time

import pytest
import test_live_support as support

from station.acquisition.base import SourceError, SourceState, open_source
from station.acquisition.genicam import GenICamSource
from station.acquisition.gentl import GenTLHub, simulated_producer
from station.cli.main import main
from station.core.recipe import load_recipe
from station.live.pipeline import LivePipeline
from station.live.results_db import ResultsLog

pytestmark = pytest.mark.timeout(180)

if simulated_producer() is None:  # pragma: no cover
    pytest.skip("viky.cti (genicam package) not installed", allow_module_level=True)

CAMERA = "genicam://{serial}?pixel_format=Mono8&width=160&height=120&fps=60"


@pytest.fixture(scope="module")
def viky_recipe(tmp_path_factory):
    """A recipe taught on frames of the simulated camera itself."""
    src = GenICamSource.from_uri(CAMERA.format(serial=1))
    src.open()
    src.start()
    images = []
    deadline = time.monotonic() + 20
    while len(images) < 12 and time.monotonic() < deadline:
        f = src.next_frame(timeout=1.0)
        if f is not None:
            images.append(f.image)
    src.close()
    assert len(images) == 12
    folder = support.teach_recipe(images[:8], images[8:], tmp_path_factory.mktemp("models") / "viky")
    return load_recipe(folder)


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def test_camera_frames_through_a_recipe(viky_recipe, tmp_path):
    source = open_source(CAMERA.format(serial=0))
    db = ResultsLog(tmp_path / "r.db")
    pipe = LivePipeline(source, viky_recipe, results=db, max_frames=30)
    pipe.start()
    assert pipe.wait(60)
    db.close()
    s = pipe.stats()
    assert s.acquired == 30 and s.inspected + s.failed + s.dropped == 30 and s.failed == 0
    assert s.inspected >= 20 and s.db_rows == s.inspected
    last = pipe.latest_result()
    assert last.frame.pixel_format == "Mono8" and last.frame.image.shape == (120, 160)
    assert last.result.anomaly_map.shape == (120, 160)
    rows = sqlite3.connect(tmp_path / "r.db").execute("SELECT source, verdict FROM inspections").fetchall()
    assert len(rows) == s.inspected and {r[0] for r in rows} == {CAMERA.format(serial=0)}
    assert source.state is SourceState.CLOSED


def test_camera_cut_mid_run_is_lost_reconnected_and_the_run_goes_on(viky_recipe, tmp_path, monkeypatch):
    source = open_source(CAMERA.format(serial=2))
    states: list[str] = []
    db = ResultsLog(tmp_path / "r.db")
    pipe = LivePipeline(source, viky_recipe, results=db, on_state=lambda st, msg: states.append(st.value))
    pipe.start()
    try:
        assert _wait_for(lambda: pipe.stats().inspected >= 10)
        # The camera disappears for about a second: the acquirer dies and re-opening fails meanwhile.
        hub = GenTLHub.shared()
        real_open = hub.open
        back_at = time.monotonic() + 1.0

        def unplugged(selector, files):
            if time.monotonic() < back_at:
                raise SourceError(f"no camera {selector!r}")
            return real_open(selector, files)

        monkeypatch.setattr(hub, "open", unplugged)
        with source._lock:
            source._ia.destroy()
        assert _wait_for(lambda: "lost" in states)
        before = pipe.stats().inspected
        assert _wait_for(lambda: source.reconnects == 1 and pipe.stats().inspected >= before + 10)
    finally:
        s = pipe.stop(timeout=15)
        db.close()
    assert states[:3] == ["connected", "acquiring", "lost"] and "reconnecting" in states
    assert states[states.index("lost"):].count("acquiring") == 1  # acquiring again after the cut
    assert s.reconnects == 1 and s.accounted() and pipe.error is None
    assert s.db_rows == s.inspected


def test_inspect_command_on_the_simulated_camera(viky_recipe, tmp_path, capsys):
    support.register()
    rc = main(["inspect", "--source", CAMERA.format(serial=0), "--recipe", str(viky_recipe.path),
               "--frames", "15", "--db", str(tmp_path / "r.db"), "--no-archive"])
    assert rc == 0
    out, err = capsys.readouterr()
    assert "of 15 acquired" in err
    n = sqlite3.connect(tmp_path / "r.db").execute("SELECT COUNT(*) FROM inspections").fetchone()[0]
    assert n == len([line for line in out.splitlines() if line.startswith("#")]) >= 10


def test_cameras_command_lists_the_simulator(capsys):
    assert main(["cameras"]) == 0
    out = capsys.readouterr().out
    assert "viky.cti" in out and out.count("genicam://") == 3
    assert "PixelFormat" in out and "not available: " in out and "ExposureTime" in out
    assert main(["cameras", "--json", "--no-features"]) == 0
    import json

    data = json.loads(capsys.readouterr().out)
    assert sorted(c["serial"] for c in data["cameras"]) == ["0", "1", "2"]
    assert main(["cameras", "--cti", "/no/such/producer.cti"]) == 2
