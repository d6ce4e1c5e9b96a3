"""``station inspect``: headless live inspection from a camera, a folder or the demo part.

Example::

    station inspect --source synthetic://demo --recipe models/demo --teach-demo --frames 2000
    station inspect --source genicam://<serial> --recipe models/bracket
    station inspect --source "folder:///data/mvtec_ad/bottle?fps=5" --recipe models/bottle --print ng
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from station.app.paths import AppPaths
from station.cli import lineio_options


def default_db() -> str:
    """The window's results log ($STATION_HOME/results.sqlite): one station, one record."""
    return str(AppPaths.default().results_db)


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "inspect", help="inspect parts live (camera, folder replay or the demo part), without a window",
        description="Acquire frames from a source and inspect each with a recipe; every verdict goes to the "
                    "results database, NG images to the archive. Stop with Ctrl-C.")
    p.add_argument("--source", required=True,
                   help="genicam://<serial>[?cti=...], folder://<path>[?fps=10&loop=1] or synthetic://demo")
    p.add_argument("--recipe", required=True, help="a part folder (its newest version) or a version folder")
    p.add_argument("--frames", type=_count, default=0, help="stop after this many frames (0: until Ctrl-C or the "
                                                         "source ends)")
    p.add_argument("--teach-demo", action="store_true",
                   help="if --recipe holds no recipe yet, teach the synthetic demo part into it first")
    p.add_argument("--demo-detector", default="variation", help="detector for --teach-demo (default: %(default)s)")
    p.add_argument("--db", default=default_db(), help="results database, SQLite (default: %(default)s)")
    p.add_argument("--no-db", action="store_true", help="do not record results")
    p.add_argument("--durability", choices=["normal", "full"], default="full",
                   help="full: fsync every row, a power cut loses at most the frame in flight; normal: no "
                        "fsync (a killed process still loses nothing committed; needs a UPS against power "
                        "cuts) -- default: %(default)s")
    p.add_argument("--archive", default=str(AppPaths.default().archive),
                   help="folder for NG images (default: %(default)s)")
    p.add_argument("--no-archive", action="store_true", help="do not keep images")
    p.add_argument("--archive-quota-mb", type=float, default=2048.0, help="the oldest images go beyond this (default: %(default)s MB)")
    p.add_argument("--archive-ok-every", type=int, default=0, help="also keep every n-th OK image (0: none)")
    p.add_argument("--queue", type=int, default=4, help="frames between acquisition and inspection (default: %(default)s)")
    p.add_argument("--device", default=None, help="inference device for the detector (e.g. cpu, cuda)")
    p.add_argument("--print", dest="show", choices=["all", "ng", "none"], default="all",
                   help="which verdicts to print (default: %(default)s)")
    p.add_argument("--stats-every", type=float, default=5.0, help="seconds between progress lines, 0: none (default: %(default)s)")
    p.add_argument("--json", metavar="FILE", help="write the final statistics as JSON")
    p.add_argument("--no-input-watch", action="store_true",
                   help="judge every frame, also one unlike the teach images (dark, blurred, no part)")
    p.add_argument("--drift-alarm-level", type=float, default=12.0,
                   help="the drift watch's CUSUM alarm level in taught standard deviations, 0: off "
                        "(default: %(default)s; see station/live/drift.py)")
    lineio_options.add_arguments(p)
    p.set_defaults(func=run)


def _verdict_line(live: Any) -> str:
    f = live.frame
    truth = f.meta.get("label")
    truth = f"  [truth: {truth}]" if isinstance(truth, str) else ""
    if live.input_problem:
        return f"#{f.frame_id:<7d} OUT_OF_RANGE  {live.input_problem}{truth}"
    if live.result is None:
        return f"#{f.frame_id:<7d} ERROR  {live.error}{truth}"
    r = live.result
    regions = ""
    if r.regions:
        big = r.regions[0]
        x, y, w, h = big.bbox
        regions = f"  {len(r.regions)} region(s), largest {big.area_px:.0f} px at ({x},{y},{w}x{h})"
    warning = f"  [{live.warning}]" if live.warning else ""
    return (f"#{f.frame_id:<7d} {r.verdict.value:<5s} score {r.score:8.3f}  {live.latency_ms:6.1f} ms{regions}{truth}"
            f"{warning}")


def run(args: argparse.Namespace) -> int:
    from station.acquisition.base import open_source
    from station.acquisition.camera_choice import with_camera_settings
    from station.core.inspection import Inspector
    from station.core.recipe import load_recipe, versions
    from station.detectors.runtime import detector_from_recipe, recipe_runtime
    from station.live.archive import ImageArchive
    from station.live.pipeline import LivePipeline
    from station.live.results_db import ResultsError, ResultsLog
    from station.live.watch import line_watch

    if args.teach_demo and not versions(args.recipe):
        from station.app.demo import teach_demo_recipe

        part = Path(args.recipe)
        print(f"teaching the demo part into {part} ({args.demo_detector}) ...", file=sys.stderr)
        teach_demo_recipe(part.parent, args.demo_detector, part=part.name)
    from station.lineio.config import LineConfigError
    from station.lineio.hub import LineIO, describe_outputs

    recipe = load_recipe(args.recipe)
    source = open_source(with_camera_settings(args.source, recipe.camera))  # the recipe's exposure, gain ...
    runtime = recipe_runtime(recipe, device=args.device)
    try:
        line_config = lineio_options.line_config(args)
    except LineConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if line_config.active() and args.no_db:
        print("error: the line outputs send from the results log; drop --no-db", file=sys.stderr)
        return 2
    try:
        results = None if args.no_db else ResultsLog(args.db, durability=args.durability)
    except ResultsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    line = None
    if line_config.active() or line_config.trigger_mode:
        try:
            line = LineIO(line_config, args.db, cert_dir=AppPaths.default().home / "pki", record=results.record,
                          recipe=(recipe.name, recipe.version), on_auth_failure=lineio_options.audit_refused_login)
        except LineConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            results.close()
            return 2
        source = line.wrap_source(source)
        print(f"line I/O as {line_config.station_id}: {describe_outputs(line_config)}"
              f"{'; trigger mode' if line_config.trigger_mode else ''}", file=sys.stderr)
    archive = None if args.no_archive else ImageArchive(args.archive, quota_mb=args.archive_quota_mb,
                                                         ok_every=args.archive_ok_every)
    out_lock = threading.Lock()

    def on_result(live: Any) -> None:
        if line is not None:
            line.on_result(live)
        if args.show == "none" or (args.show == "ng" and live.verdict == "OK"):
            return
        with out_lock:
            print(_verdict_line(live), flush=True)

    def on_state(state: Any, message: str) -> None:
        with out_lock:
            print(f"source {state.value}{': ' + message if message else ''}", file=sys.stderr, flush=True)

    def inspector() -> Inspector:  # built on the inspection thread, which owns it
        return Inspector(recipe, detector_from_recipe(recipe, **runtime))

    pipeline = LivePipeline(source, inspector_factory=inspector, results=results,
                            archive=archive, queue_size=args.queue, max_frames=args.frames,
                            on_result=on_result, on_state=on_state,
                            watch=line_watch(max(0.0, args.drift_alarm_level), inputs=not args.no_input_watch))
    if line is not None:
        part = Path(args.recipe).resolve()
        line.control.recipe_selector = lineio_options.recipe_selector(
            pipeline, part.parent if versions(part) else part.parent.parent, args.device, line.control)
        line.start()
    stop_requested = threading.Event()
    previous_term = None
    if threading.current_thread() is threading.main_thread():
        previous_term = signal.signal(signal.SIGTERM, lambda *_: stop_requested.set())
    interrupted = False
    print(f"inspecting {args.source} with {recipe.label} ({recipe.detector_kind}); Ctrl-C stops", file=sys.stderr)
    try:
        try:
            pipeline.start()
            next_report = time.monotonic() + args.stats_every
            while pipeline.running and not stop_requested.is_set():
                pipeline.wait(0.2)
                if args.stats_every > 0 and time.monotonic() >= next_report:
                    next_report += args.stats_every
                    s = pipeline.stats()
                    with out_lock:
                        print(f"[{s.source_state}] {s.summary()}", file=sys.stderr, flush=True)
                        for text in line.summary_lines() if line is not None else ():
                            print(f"  {text}", file=sys.stderr, flush=True)
        except KeyboardInterrupt:
            interrupted = True
            print("stopping ...", file=sys.stderr, flush=True)
        stats = pipeline.stop(timeout=15.0)
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
        if line is not None:
            line.stop(drain_s=5.0)
            for text in line.summary_lines():
                print(f"line I/O: {text}", file=sys.stderr)
        if archive is not None:
            archive.close()
        if results is not None:
            results.close()
    print(stats.summary(), file=sys.stderr)
    if results is not None:
        print(f"results: {args.db} ({stats.db_rows} rows written"
              f"{f', {stats.db_errors} failed' if stats.db_errors else ''})", file=sys.stderr)
    if archive is not None:
        print(f"images: {args.archive} ({archive.written} written, {archive.deleted} removed for the quota, "
              f"{archive.usage_bytes / 1e6:.1f} MB)", file=sys.stderr)
    if args.json:
        data = {**stats.to_dict(), "in_flight": stats.in_flight, "source": args.source, "recipe": recipe.label,
                "db_p50_ms": pipeline.db_time.percentiles(50)[0], "db_p95_ms": pipeline.db_time.percentiles(95)[0]}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if pipeline.error is not None:
        raise pipeline.error
    return 130 if interrupted else 0
