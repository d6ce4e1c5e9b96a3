"""``station bench``: fit time, latency, throughput, memory and threshold re-estimation per detector."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from station.cli.common import parse_param


def _kind_param(text: str) -> tuple[str, str, object]:
    key, value = parse_param(text)
    kind, dot, name = key.partition(".")
    if not dot or not kind or not name:
        raise argparse.ArgumentTypeError(f"expected kind.key=value (e.g. patchcore.coreset_ratio=0.01), got {text!r}")
    return kind, name, value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark the detectors (speed, memory) on this machine",
                       description="For each registered detector, on the CPU and on a GPU when present: fit "
                                   "time, latency p50/p95 at batch 1, throughput at batch 8 (32 on a GPU), "
                                   "through torch and ONNX Runtime, peak memory, and the threshold "
                                   "re-estimation time. Uses MVTec AD bottle if found, else synthetic images.")
    p.add_argument("--detector", action="append", dest="kinds", metavar="KIND",
                   help="benchmark only this detector (repeatable; default: all registered)")
    p.add_argument("--device", action="append", dest="devices", metavar="DEVICE",
                   help="cpu or cuda (repeatable; default: cpu, and cuda when present)")
    p.add_argument("--fit-images", type=int, default=209, help="images to fit on (default 209: all of bottle)")
    p.add_argument("--test-images", type=int, default=20, help="distinct images for the latency runs")
    p.add_argument("--repeats", type=int, default=30, help="timed predictions at batch 1 (default 30)")
    p.add_argument("--threads", type=int, default=2, help="torch / ONNX Runtime CPU threads (default 2)")
    p.add_argument("--no-onnx", action="store_true", help="skip ONNX Runtime")
    p.add_argument("--data", type=Path, help="an MVTec AD category to use instead of bottle")
    p.add_argument("--synthetic", action="store_true", help="use the synthetic washer even if bottle is present")
    p.add_argument("--param", "-p", action="append", type=_kind_param, default=[], metavar="KIND.KEY=VALUE",
                   help="a detector parameter, e.g. -p patchcore.weights=custom:1a2b3c4d (repeatable)")
    p.add_argument("--random-weights", action="store_true",
                   help="use seeded random backbone weights where none are installed (speed does not "
                        "depend on the values; the report says so)")
    p.add_argument("--in-process", action="store_true", help="run all cases in this process (peak memory "
                   "then covers everything run so far)")
    p.add_argument("--out", type=Path, help="write the JSON report here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from station.bench import BenchConfig, results_table, run_bench

    params: dict[str, dict[str, object]] = {}
    for kind, key, value in args.param:
        params.setdefault(kind, {})[key] = value
    if args.random_weights:
        for kind in ("patchcore", "padim"):  # the detectors with pretrained backbones
            params.setdefault(kind, {}).setdefault("weights", "random")
    config = BenchConfig(kinds=args.kinds, devices=args.devices, n_fit=args.fit_images,
                         n_test=args.test_images, repeats=args.repeats, threads=args.threads,
                         onnx=not args.no_onnx, isolate=not args.in_process,
                         data=str(args.data) if args.data else None, synthetic=args.synthetic,
                         params=params)
    report = run_bench(config, progress=lambda what: print(f"benchmarking {what} ...", file=sys.stderr, flush=True))
    print(results_table(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"\nJSON report: {args.out}")
    return 0
