"""The results database: schema, WAL, durability settings, queries, CSV export, time parsing, CLI."""

from __future__ import annotations

import csv
import io
import sqlite3
import threading
import time
from datetime import datetime

import pytest

from station.cli.main import main
from station.live.results_db import (
    ResultRow,
    ResultsError,
    ResultsLog,
    export_csv,
    parse_time,
    query,
    summary,
)

T0 = datetime(2026, 3, 2, 8, 0, 0).timestamp()  # local time


def _fill(path, n=10, start=T0, step=60.0, durability="normal"):
    with ResultsLog(path, durability=durability) as db:
        for i in range(n):
            verdict = "NG" if i % 3 == 0 else "OK"
            regions = [{"area_px": 40.0 + i, "bbox": [i, 2, 3, 4], "centroid": [1, 2]}] if verdict == "NG" else []
            db.record(ResultRow(time=start + i * step, source="synthetic://demo", frame_id=i, verdict=verdict,
                                recipe="demo", recipe_version=2, score=0.5 + i, threshold=3.0, regions=regions,
                                latency_ms=5.0, inspect_ms=2.0, label="good"))
    return path


def test_wal_mode_and_durability(tmp_path):
    for durability, expected in (("normal", 1), ("full", 2)):
        db = ResultsLog(tmp_path / f"{durability}.db", durability=durability)
        assert db._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db._conn.execute("PRAGMA synchronous").fetchone()[0] == expected
        db.close()
    with pytest.raises(ValueError):
        ResultsLog(tmp_path / "x.db", durability="fast")


def test_rows_round_trip(tmp_path):
    path = _fill(tmp_path / "r.db")
    rows = list(query(path))
    assert len(rows) == 10 and [r["id"] for r in rows] == list(range(1, 11))
    ng = [r for r in rows if r["verdict"] == "NG"]
    assert len(ng) == 4 and ng[0]["n_regions"] == 1 and ng[0]["regions"][0]["bbox"] == [0, 2, 3, 4]
    r = rows[1]
    assert r["recipe"] == "demo" and r["recipe_version"] == 2 and r["score"] == 1.5 and r["label"] == "good"
    assert r["time_local"].startswith("2026-03-02T08:01:00")
    assert [r["frame_id"] for r in query(path, newest_first=True, limit=2)] == [9, 8]
    assert len(list(query(path, verdict="ng"))) == 4
    assert len(list(query(path, since=T0 + 120, until=T0 + 300))) == 3
    s = summary(path)
    assert s["total"] == 10 and s["counts"] == {"NG": 4, "OK": 6}
    assert s["recipes"] == [{"recipe": "demo", "recipe_version": 2, "n": 10, "ng": 4}]


def test_reopening_appends(tmp_path):
    path = _fill(tmp_path / "r.db", n=3)
    _fill(path, n=2, start=T0 + 3600)
    assert [r["frame_id"] for r in query(path)] == [0, 1, 2, 0, 1]


def test_readers_see_rows_while_the_line_writes(tmp_path):
    path = tmp_path / "r.db"
    db = ResultsLog(path)
    stop = threading.Event()

    def write():
        i = 0
        while not stop.is_set():
            db.record(ResultRow(time=time.time(), source="s", frame_id=i, verdict="OK"))
            i += 1

    t = threading.Thread(target=write)
    t.start()
    try:
        counts = []
        for _ in range(5):
            time.sleep(0.05)
            counts.append(len(list(query(path))))
    finally:
        stop.set()
        t.join(10)
    assert counts == sorted(counts) and counts[-1] > counts[0]
    db.close()


def test_bad_databases_fail_clearly(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ResultsError, match="not a usable results database"):
        ResultsLog(junk)
    with pytest.raises(ResultsError, match="not a station results database"):
        list(query(junk))
    with pytest.raises(ResultsError, match="not found"):
        list(query(tmp_path / "missing.db"))
    newer = tmp_path / "newer.db"
    ResultsLog(newer).close()
    with sqlite3.connect(newer) as c:
        c.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(ResultsError, match="newer station"):
        ResultsLog(newer)


def test_parse_time():
    now = T0 + 7200
    assert parse_time("2h", now=now) == T0
    assert parse_time("90m", now=now) == now - 5400
    assert parse_time("1d", now=now) == now - 86400
    assert parse_time("2026-03-02T08:00") == T0
    assert parse_time("2026-03-02") == datetime(2026, 3, 2).timestamp()
    assert parse_time("2026-03-02T08:00:00Z") == datetime.fromisoformat("2026-03-02T08:00:00+00:00").timestamp()
    assert parse_time(str(T0)) == T0
    assert parse_time("today", now=now) == datetime(2026, 3, 2).timestamp()
    assert parse_time("yesterday", now=now) == datetime(2026, 3, 1).timestamp()
    with pytest.raises(ValueError, match="use e.g."):
        parse_time("last tuesday")


def test_export_csv(tmp_path):
    path = _fill(tmp_path / "r.db")
    buf = io.StringIO()
    n = export_csv(path, buf, since=T0 + 300)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert n == len(rows) == 5
    assert rows[0]["frame_id"] == "5" and rows[0]["verdict"] == "OK" and rows[0]["regions"] == "[]"
    ng = next(r for r in rows if r["verdict"] == "NG")
    assert ng["regions"] == '[{"area_px":46.0,"bbox":[6,2,3,4]}]'  # area and box only, compact
    assert ng["error"] == "" and ng["image_path"] == ""


def test_cli_export_summary_show(tmp_path, capsys):
    path = _fill(tmp_path / "r.db")
    out = tmp_path / "export" / "ng.csv"
    assert main(["results", "export", "--db", str(path), "--since", "2026-03-02T08:03", "--verdict", "NG",
                 "--csv", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["frame_id"] for r in rows] == ["3", "6", "9"]
    assert main(["results", "export", "--db", str(path), "--csv"]) == 0
    assert capsys.readouterr().out.count("\n") == 11  # header + 10 rows on stdout
    assert main(["results", "summary", "--db", str(path)]) == 0
    text = capsys.readouterr().out
    assert "10 inspection(s)" in text and "NG    4 (40.0 %)" in text and "recipe demo v2" in text
    assert main(["results", "show", "--db", str(path), "--last", "2"]) == 0
    assert capsys.readouterr().out.count("#") == 2
    assert main(["results", "summary", "--db", str(tmp_path / "none.db")]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["results", "export", "--db", str(path), "--since", "someday"])
