"""What tiles cost: inspection latency of one frame, down-scaled to the detector's input versus cut into
overlapping tiles at the frame's own resolution (station.core.geometry), for large frames and strips.

    python tools/tiles_bench.py [--backbone resnet18] [--repeats 5] [--out tiles.json]

PatchCore with seeded random weights (speed does not depend on the values), 256-px input, on the CPU
with 2 threads. Timed: ``Inspector.inspect`` -- the whole path a live frame takes (geometry, detector,
stitching, regions). Prints a Markdown table and the machine's load average, which matters on a shared
machine: report it beside the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def surface(seed: int, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 25 * np.sin(xx / 7.0) * np.sin(yy / 9.0)
    img = np.clip(base + np.random.default_rng(seed).normal(0, 6, (h, w)), 0, 255).astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backbone", default="resnet18", choices=["resnet18", "wide_resnet50_2"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    os.environ.setdefault("STATION_HOME", tempfile.mkdtemp(prefix="tiles-bench-"))
    import torch

    from station.core.inspection import Inspector
    from station.detectors.runtime import teach_detector
    from station.weights import WeightsStore, random_state_dict

    torch.set_num_threads(args.threads)
    path = Path(tempfile.mkdtemp()) / f"{args.backbone}_seed0.pth"
    torch.save(random_state_dict(args.backbone, 0), path)
    stored = WeightsStore(Path(os.environ["STATION_HOME"]) / "weights").import_file(path, allow_custom=True)
    base = {"backbone": args.backbone, "weights": f"custom:{stored.sha256[:16]}", "input_size": 256,
            "coreset_ratio": 0.02}
    cases = [("2048x2048 frame", (2048, 2048)), ("1240x500 strip", (500, 1240))]
    modes = [("down-scaled (fit=resize)", {}), ("tiles, no overlap", {"fit": "tiles", "tile_overlap": 0.0}),
             ("tiles, 25 % overlap", {"fit": "tiles", "tile_overlap": 0.25})]
    rows = []
    for case, shape in cases:
        for mode, geo in modes:
            train = [surface(0, shape)] if not geo else [surface(0, (512, 512))]
            val = [surface(1, shape)] if not geo else [surface(1, (256, 512))]
            result = teach_detector("bench", train, val, "patchcore", {**base, **geo}, device="cpu")
            inspector = Inspector(result.recipe, result.detector)
            frame = surface(7, shape)
            inspector.inspect(frame)  # warm-up
            ms = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                inspector.inspect(frame)
                ms.append(1000 * (time.perf_counter() - t0))
            n = inspector.geometry.tile_count(shape) if geo else 1
            rows.append({"frame": case, "mode": mode, "tiles": n, "p50_ms": round(float(np.median(ms)), 1),
                         "min_ms": round(float(np.min(ms)), 1), "load": [round(v, 2) for v in os.getloadavg()]})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(f"PatchCore {args.backbone} (random weights), 256 px input, {args.threads} threads, CPU; "
          f"load average at the end {os.getloadavg()[0]:.1f}")
    print("| frame | geometry | detector calls (tiles) | p50 ms | min ms | load (1/5/15 min) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['frame']} | {r['mode']} | {r['tiles']} | {r['p50_ms']} | {r['min_ms']} | "
              f"{' / '.join(str(v) for v in r['load'])} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
