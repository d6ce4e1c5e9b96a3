"""The variation model on the synthetic freely lying screw: accuracy and teach/predict time.

    python tools/rotated_part_bench.py --background textured -p pose_method=moments

Teaches on 40 good screws, evaluates on 20 good + 8 of each defect type (docs/benchmarks.md,
"Freely lying parts"). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from station.acquisition.synthetic_parts import BACKGROUNDS, SCREW_DEFECTS, SyntheticScrew
from station.core.metrics import pixel_curves, roc_auc
from station.detectors.variation import VariationModel


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--background", choices=BACKGROUNDS, default="textured")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-p", action="append", default=[], metavar="KEY=VALUE", help="variation-model parameter")
    args = ap.parse_args()
    params = dict((k, _value(v)) for k, v in (p.split("=", 1) for p in args.p))
    screw = SyntheticScrew(args.seed, args.size, args.background)
    train = screw.good_images(40)
    base = 1_000_000
    tests = [screw.render(base + i) for i in range(20)]
    for k, kind in enumerate(SCREW_DEFECTS):
        tests += [screw.render(base + (k + 1) * 10_000 + i, kind) for i in range(8)]
    model = VariationModel(**params)
    t = time.perf_counter()
    stats = model.fit(train)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    pred = model.predict([s.image for s in tests])
    predict_ms = 1000 * (time.perf_counter() - t) / len(tests)
    pose = {}
    if model._free is not None:  # pose error against the renderer's truth, on the good test screws
        offsets, times = [], []
        for s in tests[:20]:
            t = time.perf_counter()
            loc = model._free.locate(s.image)
            times.append(time.perf_counter() - t)
            offsets.append(np.degrees(np.arctan2(loc.matrix[1, 0], loc.matrix[0, 0])) - s.pose["angle"])
        off = np.asarray(offsets)
        err = np.abs((off - np.median(off) + 180.0) % 360.0 - 180.0)
        pose = {"angle_error_deg_median": round(float(np.median(err)), 3), "angle_error_deg_max": round(float(err.max()), 3),
                "wrong_poses_over_5_deg": int((err > 5).sum()), "locate_ms": round(1000 * float(np.median(times)))}
    labels = np.array([not s.is_good for s in tests])
    per_type = {}
    for kind in SCREW_DEFECTS:
        sel = [i for i, s in enumerate(tests) if s.label in ("good", kind)]
        per_type[kind] = round(roc_auc(pred.scores[sel], labels[sel]), 3)
    print(json.dumps({
        "background": args.background, "size": args.size, "seed": args.seed, "params": params,
        "image_roc_auc": round(roc_auc(pred.scores, labels), 3),
        "pixel_roc_auc": round(pixel_curves(list(pred.anomaly_maps), [s.mask for s in tests]).pixel_roc_auc(), 3),
        "image_roc_auc_per_type": per_type, "fit_s": round(fit_s, 1), "predict_ms": round(predict_ms),
        "pose": pose, "alignment": stats["alignment"], "load": [round(v, 2) for v in os.getloadavg()],
    }))


if __name__ == "__main__":
    main()
