"""``station results``: read the results database -- export to CSV, summarise, show recent rows."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from station.cli.inspect import default_db


def _time(text: str) -> float:
    from station.live.results_db import parse_time

    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("results", help="export or summarise the inspection results",
                              description="Read the results database written by `station inspect` and the GUI.")
    sub = p.add_subparsers(dest="results_command", metavar="<action>", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--db", default=default_db(), help="results database (default: %(default)s)")
        q.add_argument("--since", type=_time, help="from this time: 2026-11-22, 2026-11-22T14:00 (local), today, "
                                                   "yesterday, 12h, 7d, or Unix seconds")
        q.add_argument("--until", type=_time, help="up to (not including) this time; same forms")
        q.add_argument("--verdict", choices=["OK", "NG", "ERROR", "ok", "ng", "error"], help="only this verdict")
        q.add_argument("--source", help="only this source URI")
        q.add_argument("--central", metavar="URL",
                       help="read the central PostgreSQL database of all stations (postgresql://...) instead of "
                            "this station's log")
        q.add_argument("--station", help="with --central: only this station id")

    e = sub.add_parser("export", help="write the results as CSV (for the quality department)")
    common(e)
    e.add_argument("--csv", nargs="?", const="-", default="-", metavar="FILE",
                   help="CSV file to write ('-' or no value: standard output)")
    e.set_defaults(func=_reporting_errors(run_export))

    s = sub.add_parser("summary", help="counts per verdict and recipe")
    common(s)
    s.set_defaults(func=_reporting_errors(run_summary))

    t = sub.add_parser("show", help="the most recent rows")
    common(t)
    t.add_argument("--last", type=int, default=20, help="how many rows")
    t.set_defaults(func=_reporting_errors(run_show))


def _reporting_errors(func: Any) -> Any:
    """Report an unreadable database as one line with exit status 2, as ``station`` does for user errors."""

    def wrapper(args: argparse.Namespace) -> int:
        from station.lineio.central import CentralError
        from station.live.results_db import ResultsError

        try:
            if getattr(args, "central", None):
                from station.cli import results_central

                return getattr(results_central, func.__name__)(args)
            return func(args)
        except (ResultsError, CentralError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return wrapper


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {"since": args.since, "until": args.until, "verdict": args.verdict, "source": args.source}


def run_export(args: argparse.Namespace) -> int:
    from station.live.results_db import export_csv

    if args.csv == "-":
        n = export_csv(args.db, sys.stdout, **_filters(args))
    else:
        from pathlib import Path

        out = Path(args.csv)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            n = export_csv(args.db, f, **_filters(args))
        tmp.replace(out)
    print(f"{n} row(s) exported", file=sys.stderr)
    return 0


def _fmt_time(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


def run_summary(args: argparse.Namespace) -> int:
    from station.live.results_db import summary

    f = _filters(args)
    s = summary(args.db, since=f["since"], until=f["until"])
    print(f"{args.db}: {s['total']} inspection(s) from {_fmt_time(s['first'])} to {_fmt_time(s['last'])}")
    for verdict in ("OK", "NG", "ERROR"):
        n = s["counts"].get(verdict, 0)
        share = f" ({100.0 * n / s['total']:.1f} %)" if s["total"] else ""
        print(f"  {verdict:<6s}{n}{share}")
    for r in s["recipes"]:
        print(f"  recipe {r['recipe']} v{r['recipe_version']}: {r['n']} inspected, {r['ng'] or 0} NG")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from station.live.results_db import query

    rows = list(query(args.db, limit=args.last, newest_first=True, **_filters(args)))
    for r in reversed(rows):
        score = "-" if r["score"] is None else f"{r['score']:.3f}"
        extra = r["error"] or (f"{r['n_regions']} region(s)" if r["n_regions"] else "")
        print(f"{r['time_local']}  {r['source']}  #{r['frame_id']}  {r['verdict']:<5s} score {score}  "
              f"{r['recipe']} v{r['recipe_version']}  {extra}")
    if not rows:
        print("no results match", file=sys.stderr)
    return 0
