"""Soak benchmark of headless live inspection (issue 13 item 9, issue 14 item 2): ``--frames`` frames of
the synthetic demo camera through :class:`~station.live.pipeline.LivePipeline` with the results log at
full durability (one fsync per row) and the NG archive, as the window runs it.

Prints (and writes with ``--json``): frames acquired / inspected / dropped / failed, latency p50/p95
(acquisition to verdict), the *inspection thread's* time per frame p50/p95 (everything that thread
does for one frame: inspect, then -- on code before the dispatch thread -- the archive hand-off and
the database row with its fsync), the results log's own write time, and the process RSS: after
warm-up, peak and at the end (growth = end - warm-up).

    python tools/live_soak.py [--frames 2000] [--fps 0] [--json out.json]

The thread time is taken by wrapping ``LivePipeline._process`` (the inspection thread's per-frame
step in both designs), so the same script measures the code before and after the change.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def rss_mb() -> float:
    from station.bench.measure import current_rss_bytes

    rss = current_rss_bytes()
    return float("nan") if rss is None else rss / 2**20


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=2000)
    p.add_argument("--fps", type=float, default=0.0, help="the demo camera's rate (0: as fast as inspected)")
    p.add_argument("--detector", default="variation")
    p.add_argument("--warmup-s", type=float, default=5.0, help="RSS after this many seconds is the baseline")
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()

    from station.acquisition.base import open_source
    from station.app.demo import teach_demo_recipe
    from station.core.recipe import load_recipe
    from station.live import pipeline as pipeline_mod
    from station.live.archive import ImageArchive
    from station.live.results_db import ResultsLog

    thread_ms: list[float] = []
    original = pipeline_mod.LivePipeline._process

    def timed(self, *a, **kw):
        t0 = time.perf_counter()
        try:
            return original(self, *a, **kw)
        finally:
            thread_ms.append((time.perf_counter() - t0) * 1000.0)

    pipeline_mod.LivePipeline._process = timed  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        home = Path(tmp)
        folder = teach_demo_recipe(home / "models", args.detector)
        recipe = load_recipe(folder)
        results = ResultsLog(home / "results.sqlite", durability="full")
        archive = ImageArchive(home / "archive", quota_mb=200)
        source = open_source(f"synthetic://demo?fps={args.fps:g}")
        pipe = pipeline_mod.LivePipeline(source, recipe, results=results, archive=archive, queue_size=2,
                                         max_frames=args.frames)
        samples: list[tuple[float, float]] = []
        done = threading.Event()

        def sample() -> None:
            t0 = time.monotonic()
            while not done.is_set():
                samples.append((time.monotonic() - t0, rss_mb()))
                done.wait(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        t0 = time.monotonic()
        pipe.start()
        sampler.start()
        pipe.wait()
        stats = pipe.stop(timeout=30.0)
        wall = time.monotonic() - t0
        done.set()
        sampler.join()
        end_rss = rss_mb()
        archive.close()
        results.close()
        rows = ResultsLog(home / "results.sqlite").count()
    warm = next((m for t, m in samples if t >= args.warmup_s), samples[-1][1] if samples else end_rss)
    th = np.asarray(thread_ms)
    out = {
        "frames": args.frames, "fps": args.fps, "detector": args.detector, "wall_s": round(wall, 1),
        "acquired": stats.acquired, "inspected": stats.inspected, "failed": stats.failed,
        "dropped": stats.dropped, "db_rows": rows,
        "latency_p50_ms": stats.latency_p50_ms, "latency_p95_ms": stats.latency_p95_ms,
        "inspect_p50_ms": stats.inspect_p50_ms, "inspect_p95_ms": stats.inspect_p95_ms,
        "thread_p50_ms": float(np.percentile(th, 50)), "thread_p95_ms": float(np.percentile(th, 95)),
        "db_p50_ms": pipe.db_time.percentiles(50)[0], "db_p95_ms": pipe.db_time.percentiles(95)[0],
        "rss_warm_mb": round(warm, 1), "rss_peak_mb": round(max(m for _, m in samples), 1),
        "rss_end_mb": round(end_rss, 1), "rss_growth_mb": round(end_rss - warm, 1),
        "load": " ".join(f"{v:.2f}" for v in os.getloadavg()), "cpus": os.cpu_count(),
    }
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
