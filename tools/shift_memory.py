"""Long-run memory benchmark (issue 13 item 9): a shift in fast-forward in one process, as the window
runs it -- teach a part, review it on a labelled data set (with an exported report), then inspect
``--frames`` frames live with the results log and an NG archive under a small quota -- and the
process RSS after each phase. Fails (exit 1) if the RSS at the end exceeds ``--ceiling-mb`` or the
archive exceeds its quota.

    python tools/shift_memory.py [--frames 6000] [--ceiling-mb 700] [--json out.json]

``--frames 6000`` at full speed stands for ~3.5 minutes of a 30 frames/s line (the 30-minute run is
``--frames 54000``); what grows with time (results rows, archive files, counters) grows the same way.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def rss_mb() -> float:
    from station.bench.measure import current_rss_bytes

    rss = current_rss_bytes()
    return float("nan") if rss is None else rss / 2**20


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=6000)
    p.add_argument("--detector", default="variation")
    p.add_argument("--ceiling-mb", type=float, default=700.0)
    p.add_argument("--quota-mb", type=float, default=20.0, help="the NG archive's quota for the run")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()

    from station.acquisition.synthetic import export_mvtec
    from station.app.demo import teach_demo_recipe
    from station.app.review import ReviewRequest, export_report, run_review
    from station.live.archive import ImageArchive
    from station.live.results_db import ResultsLog
    from station.live.session import LiveSession
    from station.live.shift import ShiftCounters

    phases: dict[str, float] = {"start": rss_mb()}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="shift-") as tmp:
        home = Path(tmp)
        folder = teach_demo_recipe(home / "models", args.detector)
        gc.collect()
        phases["after teach"] = rss_mb()
        data = export_mvtec(home / "washer", n_train=0, n_test_good=20, n_per_defect=10)
        outcome = run_review(ReviewRequest(data=data, recipe_path=folder))
        export_report(outcome, home / "report")
        phases["review held"] = rss_mb()
        del outcome  # the window drops it when the next review starts or the tab is left
        gc.collect()
        phases["after review"] = rss_mb()
        results = ResultsLog(home / "results.sqlite")
        archive = ImageArchive(home / "archive", quota_mb=args.quota_mb)
        counters = ShiftCounters(home / "shift.json")
        peak = 0.0
        session = LiveSession(f"synthetic://demo?fps=0&count={args.frames}&defect_rate=0.3", folder,
                              counters=counters, results=results, archive=archive)
        session.start()
        while session.running:
            peak = max(peak, rss_mb())
            time.sleep(0.5)
        session.stop()
        stats = session.stats()
        del session
        gc.collect()
        phases["after inspection"] = rss_mb()
        usage, quota = archive.usage_bytes, archive.quota_bytes
        archive_line = archive.describe()
        results.close()
    wall = time.monotonic() - t0
    out = {"frames": args.frames, "detector": args.detector, "wall_s": round(wall, 1),
           "rss_mb": {k: round(v, 1) for k, v in phases.items()}, "inspection_peak_mb": round(peak, 1),
           "inspected": stats.inspected if stats else 0, "failed": stats.failed if stats else 0,
           "dropped": stats.dropped if stats else 0, "archive": archive_line,
           "archive_within_quota": usage <= quota, "ceiling_mb": args.ceiling_mb,
           "load": " ".join(f"{v:.2f}" for v in os.getloadavg()), "cpus": os.cpu_count()}
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    ok = phases["after inspection"] <= args.ceiling_mb and usage <= quota
    if not ok:
        print(f"FAILED: RSS {phases['after inspection']:.0f} MB (ceiling {args.ceiling_mb:.0f}) or archive "
              f"{usage / 2**20:.1f} MB over its quota {quota / 2**20:.1f} MB", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
