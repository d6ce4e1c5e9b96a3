"""``station results ... --central URL``: the same views over the central PostgreSQL database, across
stations (``--station`` narrows to one). The functions are named as their local counterparts in
:mod:`station.cli.results`, which dispatches here."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from station.lineio.central import central_summary, query_central

CSV_COLUMNS = ("station_id", "sequence", "id", "time", "source", "frame_id", "recipe", "recipe_version", "verdict",
               "score", "threshold", "n_regions", "largest_area", "trigger_id", "latency_ms", "error")


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {"since": args.since, "until": args.until, "verdict": args.verdict, "station": args.station}


def run_show(args: argparse.Namespace) -> int:
    rows = query_central(args.central, limit=args.last, newest_first=True, **_filters(args))
    for r in reversed(rows):
        score = "-" if r["score"] is None else f"{r['score']:.3f}"
        extra = r["error"] or (f"{r['n_regions']} region(s)" if r["n_regions"] else "")
        trig = f"  trigger {r['trigger_id']}" if r["trigger_id"] else ""
        print(f"{r['time'].astimezone().isoformat(timespec='seconds')}  {r['station_id']}  #{r['sequence']}  "
              f"{r['verdict']:<5s} score {score}  {r['recipe']} v{r['recipe_version']}  {extra}{trig}")
    if not rows:
        print("no results match", file=sys.stderr)
    return 0


def run_summary(args: argparse.Namespace) -> int:
    stations = central_summary(args.central, since=args.since, until=args.until)
    if args.station:
        stations = [s for s in stations if s["station_id"] == args.station]
    total = sum(s["total"] for s in stations)
    print(f"central database: {total} inspection(s) from {len(stations)} station(s)")
    for s in stations:
        print(f"  {s['station_id']}: {s['total']} ({s['OK']} OK, {s['NG']} NG, {s['ERROR']} ERROR) "
              f"{s['first'].astimezone().isoformat(timespec='seconds')} .. "
              f"{s['last'].astimezone().isoformat(timespec='seconds')}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    rows = query_central(args.central, **_filters(args))
    out = sys.stdout if args.csv == "-" else open(args.csv, "w", newline="", encoding="utf-8")  # noqa: SIM115
    try:
        w = csv.writer(out)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            r["time"] = r["time"].astimezone().isoformat(timespec="milliseconds")
            w.writerow(["" if r[c] is None else (json.dumps(r[c]) if isinstance(r[c], (list, dict)) else r[c])
                        for c in CSV_COLUMNS])
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"{len(rows)} row(s) exported", file=sys.stderr)
    return 0
