"""The results history, without Qt: time-range presets, one bounded read of the results database, and
the text the history view shows for a row or a summary.

The window's history dialog runs :func:`load_history` on a worker thread and only displays what it
returns, so everything it shows can be tested here without a screen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from station.live.results_db import parse_time, query, sources, summary

# key -> label, in the order the picker lists them
RANGES: dict[str, str] = {
    "hour": "Last hour",
    "shift": "This shift",
    "today": "Today",
    "week": "Last 7 days",
    "all": "All",
}
VERDICTS = ("all", "NG", "OK", "OUT_OF_RANGE", "ERROR")
ROW_LIMIT = 5000  # rows the table holds at most; the summary still counts them all

HEADERS = ("Time", "Source", "Frame", "Recipe", "Verdict", "Score", "Regions", "Largest area", "Latency ms")


def time_window(preset: str, now: float | None = None, shift_start: float | None = None) -> tuple[float | None, float]:
    """``(since, until)`` for a range preset.

    ``until`` is pinned to ``now`` so the summary, the table and the CSV export of one refresh all
    describe the same rows while the line keeps writing new ones. "shift" starts at ``shift_start``
    (the shift counters' start); without one it falls back to the start of today.

    Raises
    ------
    ValueError
        For an unknown preset.
    """
    now = time.time() if now is None else now
    if preset == "hour":
        since: float | None = now - 3600.0
    elif preset == "shift":
        since = shift_start if shift_start is not None else parse_time("today", now)
    elif preset == "today":
        since = parse_time("today", now)
    elif preset == "week":
        since = now - 7 * 86400.0
    elif preset == "all":
        since = None
    else:
        raise ValueError(f"unknown time range {preset!r}; one of {', '.join(RANGES)}")
    return since, now


@dataclass(frozen=True)
class HistoryQuery:
    """What the history view asks for; :meth:`filters` are the keyword arguments of ``query`` and
    ``export_csv``."""

    since: float | None
    until: float | None
    verdict: str | None = None  # None: all verdicts
    source: str | None = None  # None: all sources

    def filters(self) -> dict[str, Any]:
        return {"since": self.since, "until": self.until, "verdict": self.verdict, "source": self.source}


@dataclass
class HistoryPage:
    """One read: the summary of the time window (and source), the sources present, the newest rows."""

    query: HistoryQuery
    summary: dict[str, Any]
    sources: list[tuple[str, int]]
    rows: list[dict[str, Any]] = field(default_factory=list)
    matching: int = 0  # rows matching all filters; more than ``len(rows)`` when the limit cut them

    @property
    def truncated(self) -> bool:
        return self.matching > len(self.rows)


def load_history(db: str | Path, q: HistoryQuery, limit: int = ROW_LIMIT) -> HistoryPage:
    """Read the summary, the sources and at most ``limit`` newest rows matching ``q``.

    Raises
    ------
    ResultsError
        If the database is missing, corrupt or not a results database.
    """
    s = summary(db, since=q.since, until=q.until, source=q.source)
    srcs = sources(db, since=q.since, until=q.until)
    rows = list(query(db, **q.filters(), limit=limit, newest_first=True))
    matching = int(s["counts"].get(q.verdict.upper(), 0)) if q.verdict else int(s["total"])
    # a row written between the summary and the query must not make the count look smaller
    return HistoryPage(q, s, srcs, rows, max(matching, len(rows)))


def _num(value: Any, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def largest_area(row: dict[str, Any]) -> float | None:
    areas = [float(r["area_px"]) for r in row.get("regions") or [] if r.get("area_px") is not None]
    return max(areas) if areas else None


def format_time(t: float | None) -> str:
    return "–" if t is None else datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


def format_row(row: dict[str, Any]) -> tuple[str, ...]:
    """The table's cells for one row of ``query`` (in :data:`HEADERS` order)."""
    recipe = row.get("recipe") or "–"
    if row.get("recipe") and row.get("recipe_version") is not None:
        recipe = f"{row['recipe']} v{row['recipe_version']}"
    area = largest_area(row)
    return (format_time(row.get("time")), str(row.get("source") or ""), str(row.get("frame_id", "")), recipe,
            str(row.get("verdict") or ""), _num(row.get("score"), ".4g"), str(row.get("n_regions") or 0),
            "–" if area is None else f"{area:.0f} px", _num(row.get("latency_ms"), ".1f"))


def summary_text(s: dict[str, Any]) -> str:
    """"200 inspected: 180 OK, 20 NG -- yield 90.0 % -- 2026-11-22 14:00:01 to 14:05:12"."""
    total = int(s.get("total") or 0)
    if not total:
        return "No inspections in this range."
    counts = s.get("counts") or {}
    ok, ng = int(counts.get("OK", 0)), int(counts.get("NG", 0))
    parts = [f"{ok} OK", f"{ng} NG"] + [f"{n} {v}" for v, n in sorted(counts.items()) if v not in ("OK", "NG")]
    # yield as the shift counters count it: OK among the parts that got a verdict (errors are not parts)
    yld = f"yield {100.0 * ok / (ok + ng):.1f} %" if ok + ng else "yield –"
    return f"{total} inspected: {', '.join(parts)} — {yld} — {format_time(s.get('first'))} to {format_time(s.get('last'))}"


def archived_image(row: dict[str, Any], archive_root: str | Path | None = None) -> tuple[Path | None, str]:
    """The archived image of a row if it is on disk, else ``None`` and why not.

    The row records the path the archive gave the image. When the station's folder was moved (or
    restored from a backup elsewhere) that path is stale, so the same ``<day>/<name>`` is looked for
    under ``archive_root`` too.
    """
    recorded = row.get("image_path")
    if not recorded:
        return None, "not archived"
    p = Path(recorded)
    candidates = [p]
    if archive_root is not None:
        candidates.append(Path(archive_root) / p.parent.name / p.name)
    for c in candidates:
        if c.is_file():
            return c, ""
    return None, "not archived any more (deleted by the archive quota, or never written)"
