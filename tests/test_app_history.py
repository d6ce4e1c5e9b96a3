"""The results history without Qt: time ranges, one bounded read, row and summary text, archived images."""

from __future__ import annotations

import shutil
from datetime import datetime

import pytest
from helpers_history import LINE1, LINE2, fill_results

from station.app.history import (
    HistoryQuery,
    archived_image,
    format_row,
    load_history,
    summary_text,
    time_window,
)
from station.live.results_db import ResultsError, sources, summary

NOW = datetime(2026, 3, 2, 14, 30, 0).timestamp()  # local time


def test_time_windows():
    midnight = datetime(2026, 3, 2).timestamp()
    assert time_window("hour", NOW) == (NOW - 3600, NOW)
    assert time_window("today", NOW) == (midnight, NOW)
    assert time_window("week", NOW) == (NOW - 7 * 86400, NOW)
    assert time_window("all", NOW) == (None, NOW)
    assert time_window("shift", NOW, shift_start=NOW - 1234) == (NOW - 1234, NOW)
    assert time_window("shift", NOW) == (midnight, NOW)  # no shift counters: today
    with pytest.raises(ValueError, match="hour"):
        time_window("month", NOW)


def test_load_history_filters_and_counts(tmp_path):
    f = fill_results(tmp_path)
    since, until = time_window("hour", f.now)
    page = load_history(f.db, HistoryQuery(since, until))
    assert page.summary["counts"] == {"OK": 5, "NG": 2, "ERROR": 1} and page.matching == 8
    assert [r["frame_id"] for r in page.rows] == [8, 7, 6, 5, 3, 4, 2, 1]  # newest first, old row out
    assert page.sources == [(LINE1, 5), (LINE2, 3)] and not page.truncated

    ng = load_history(f.db, HistoryQuery(since, until, verdict="NG"))
    assert [r["frame_id"] for r in ng.rows] == [6, 3] and ng.matching == 2
    line2 = load_history(f.db, HistoryQuery(since, until, source=LINE2))
    assert [r["frame_id"] for r in line2.rows] == [7, 6, 5] and line2.summary["total"] == 3
    everything = load_history(f.db, HistoryQuery(None, f.now, verdict="NG"))
    assert [r["frame_id"] for r in everything.rows] == [6, 3, 99]

    cut = load_history(f.db, HistoryQuery(since, until), limit=3)
    assert len(cut.rows) == 3 and cut.matching == 8 and cut.truncated


def test_summary_of_one_source_and_sources(tmp_path):
    f = fill_results(tmp_path)
    assert summary(f.db, source=LINE1)["counts"] == {"OK": 3, "NG": 2, "ERROR": 1}
    assert sources(f.db) == [(LINE1, 6), (LINE2, 3)]
    assert sources(f.db, since=f.now - 3600, until=f.now - 160) == [(LINE1, 4), (LINE2, 1)]


def test_row_and_summary_text(tmp_path):
    f = fill_results(tmp_path)
    rows = {r["frame_id"]: r for r in load_history(f.db, HistoryQuery(None, f.now)).rows}
    cells = format_row(rows[3])
    assert cells[1:] == (LINE1, "3", "demo v2", "NG", "0.9", "2", "600 px", "14.5")
    assert cells[0] == datetime.fromtimestamp(f.recent[2].time).strftime("%Y-%m-%d %H:%M:%S")
    assert format_row(rows[8])[4:] == ("ERROR", "–", "0", "–", "19.5")
    text = summary_text(summary(f.db))
    assert text.startswith("9 inspected: 5 OK, 3 NG, 1 ERROR — yield 62.5 % — ")
    assert summary_text(summary(f.db, since=f.now + 10)) == "No inspections in this range."


def test_archived_image_found_moved_or_gone(tmp_path):
    f = fill_results(tmp_path / "a")
    rows = {r["frame_id"]: r for r in load_history(f.db, HistoryQuery(None, f.now)).rows}
    path, why = archived_image(rows[3], f.archive)
    assert path is not None and path.is_file() and why == ""
    assert archived_image(rows[6], f.archive) == (None, "not archived")
    # the station's folder moved: the recorded path is stale, the same day/name under the new root is found
    moved = tmp_path / "b"
    shutil.move(str(tmp_path / "a"), moved)
    assert archived_image(rows[3])[0] is None
    found, _ = archived_image(rows[3], moved / "archive")
    assert found == moved / "archive" / path.parent.name / path.name
    found.unlink()
    none, why = archived_image(rows[3], moved / "archive")
    assert none is None and "quota" in why


def test_unreadable_databases(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(ResultsError, match="bad.sqlite"):
        load_history(bad, HistoryQuery(None, NOW))
    with pytest.raises(ResultsError, match="not found"):
        load_history(tmp_path / "missing.sqlite", HistoryQuery(None, NOW))
