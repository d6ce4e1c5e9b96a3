"""``station inspect`` end to end, in process and as a real process killed or interrupted mid-run."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import test_live_support as support

from station.cli.main import main

pytestmark = pytest.mark.timeout(180)
TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

RUNNER = """
import sys
import test_live_support
test_live_support.register()
from station.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def recipe_dir(tmp_path_factory):
    return support.teach_demo_recipe(tmp_path_factory.mktemp("models") / "demo")


def _spawn(args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)]), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-c", RUNNER, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _read_verdicts(proc, n, timeout=60):
    """Frame ids of the first ``n`` verdict lines the process printed."""
    ids = []
    deadline = time.monotonic() + timeout
    while len(ids) < n and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.match(r"#(\d+)\s+(OK|NG|ERROR)", line)
        if m:
            ids.append(int(m.group(1)))
    assert len(ids) >= n, f"only {len(ids)} verdicts; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
    return ids


def test_inspect_in_process(recipe_dir, tmp_path, capsys):
    support.register()
    db, images, stats = tmp_path / "r.db", tmp_path / "img", tmp_path / "stats.json"
    rc = main(["inspect", "--source", "synthetic://demo?fps=0&count=30&live=0&defect_rate=0.5", "--recipe",
               str(recipe_dir), "--db", str(db), "--archive", str(images), "--json", str(stats)])
    assert rc == 0
    out, err = capsys.readouterr()
    lines = [line for line in out.splitlines() if line.startswith("#")]
    assert len(lines) == 30 and "[truth:" in lines[0]
    assert "30 inspected" in err and "0 dropped of 30 acquired" in err and "latency p50" in err
    data = json.loads(stats.read_text())
    assert data["acquired"] == 30 and data["in_flight"] == 0 and data["db_rows"] == 30
    rows = sqlite3.connect(db).execute("SELECT COUNT(*), SUM(verdict='NG') FROM inspections").fetchone()
    assert rows[0] == 30 and rows[1] == data["ng"] == len(list(images.glob("*/*.png")))


def test_inspect_prints_only_ng_and_frames_limit(recipe_dir, tmp_path, capsys):
    support.register()
    rc = main(["inspect", "--source", "synthetic://demo?fps=0&defect_rate=0.5", "--recipe", str(recipe_dir),
               "--frames", "12", "--no-db", "--no-archive", "--print", "ng"])
    assert rc == 0
    out, err = capsys.readouterr()
    assert all(" NG " in line for line in out.splitlines())
    assert "of 12 acquired" in err


def test_teach_demo_then_inspect(tmp_path, capsys):
    support.register()
    target = tmp_path / "models" / "demo"
    rc = main(["inspect", "--source", "synthetic://demo?fps=0&count=3", "--recipe", str(target), "--teach-demo",
               "--demo-detector", support.KIND, "--no-db", "--no-archive"])
    assert rc == 0 and (target / "v0001" / "recipe.json").is_file()
    assert "teaching the demo part" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--source", "synthetic://demo", "--recipe", "/no/such/recipe"], "recipe not found"),
    (["--source", "webcam://0", "--recipe", "RECIPE"], "unknown source type"),
    (["--source", "folder:///no/such/folder", "--recipe", "RECIPE"], "not found"),
])
def test_user_errors_are_one_line(recipe_dir, tmp_path, capsys, args, message):
    args = [str(recipe_dir) if a == "RECIPE" else a for a in args]
    rc = main(["inspect", *args, "--db", str(tmp_path / "r.db"), "--no-archive"])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err


def test_sigkill_mid_run_leaves_every_committed_row(recipe_dir, tmp_path):
    db = tmp_path / "r.db"
    proc = _spawn(["inspect", "--source", "synthetic://demo?fps=0", "--recipe", str(recipe_dir), "--db", str(db),
                   "--archive", str(tmp_path / "img"), "--stats-every", "0"], cwd=tmp_path)
    try:
        printed = _read_verdicts(proc, 40)  # a verdict is printed only after its row was committed
    finally:
        proc.kill()  # SIGKILL: no clean-up, no checkpoint
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = conn.execute("SELECT id, frame_id, verdict FROM inspections ORDER BY id").fetchall()
    ids = [r[0] for r in rows]
    assert ids == list(range(1, len(ids) + 1))
    assert set(printed) <= {r[1] for r in rows}
    assert all(r[2] in ("OK", "NG") for r in rows)


def test_ctrl_c_stops_cleanly(recipe_dir, tmp_path):
    db = tmp_path / "r.db"
    proc = _spawn(["inspect", "--source", "synthetic://demo?fps=30", "--recipe", str(recipe_dir), "--db", str(db),
                   "--no-archive", "--stats-every", "0"], cwd=tmp_path)
    try:
        _read_verdicts(proc, 10)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    m = re.search(r"(\d+) inspected \(\d+ OK, \d+ NG\), (\d+) failed;.*; (\d+) dropped of (\d+) acquired", err)
    assert m, err
    inspected, failed, dropped, acquired = map(int, m.groups())
    assert inspected + failed + dropped == acquired
    rows = sqlite3.connect(db).execute("SELECT COUNT(*) FROM inspections").fetchone()[0]
    assert rows == inspected + failed
    assert "Traceback" not in err
