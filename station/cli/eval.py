"""``station eval``: score an MVTec AD category with a recipe and report the paper's metrics."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a recipe on an MVTec AD category (metrics, curves, overlays)",
                       description="Score the test images of an MVTec AD category with a recipe; print a "
                                   "table and write metrics.json, metrics.csv, images.csv, roc.png, pro.png, "
                                   "overlays/ and maps/ (raw anomaly maps as .npy).")
    p.add_argument("--data", required=True, type=Path, help="an MVTec AD category folder")
    p.add_argument("--recipe", required=True, type=Path, help="a part folder (newest version) or a version folder")
    p.add_argument("--out", type=Path, help="output folder (default: runs/eval-<part>-<time>)")
    p.add_argument("--min-area", type=float,
                   help="re-estimate the threshold for this minimum defect area (pixels) from the "
                        "recipe's validation maps")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--no-overlays", action="store_true", help="do not write overlay images")
    p.add_argument("--no-maps", action="store_true", help="do not save raw anomaly maps")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:n] (deep detectors)")
    p.add_argument("--backend", choices=["auto", "torch", "onnxruntime"], default="auto",
                   help="inference backend where supported (auto: ONNX Runtime on the CPU where the recipe "
                        "has a current export, see station export)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from station.cli.common import ProgressPrinter
    from station.core.datasets import MVTecCategory
    from station.core.evaluation import evaluate
    from station.core.recipe import load_recipe
    from station.core.report import ImageWriter, metrics_table, write_report
    from station.core.teach import validation_estimator
    from station.detectors.runtime import load_inspector

    recipe = load_recipe(args.recipe)
    category = MVTecCategory(args.data)
    inspector = load_inspector(recipe, device=args.device, backend=args.backend)
    if args.min_area is not None:
        est = validation_estimator(recipe).estimate(args.min_area)
        inspector.set_threshold(est.threshold, args.min_area)
        print(f"threshold re-estimated for a minimum defect area of {args.min_area:g} px: {est.threshold:.6g}")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = args.out or Path("runs") / f"eval-{recipe.name}-{stamp}"
    writer = ImageWriter(out, overlays=not args.no_overlays, maps=not args.no_maps)
    print(f"evaluating {recipe.label} ({recipe.detector_kind}) on {category.root}")
    result = evaluate(inspector, category, batch_size=args.batch_size, progress=ProgressPrinter(),
                      on_image=writer)
    json_path = write_report(result, out, extra={"data": str(category.root), "recipe_path": str(recipe.path)})
    print()
    print(f"threshold {result.threshold:.6g} for a minimum defect area of {result.min_defect_area_px:g} px")
    print(metrics_table(result))
    if len(result.problems):
        print(f"\n{len(result.problems)} problem(s):\n{result.problems.summary()}")
    print(f"\nscoring {result.timing['scoring_s']:.1f} s ({result.timing['ms_per_image']:.1f} ms/image), "
          f"metrics {result.timing['metrics_s']:.1f} s")
    print(f"report: {json_path} (+ metrics.csv, images.csv, roc.png, pro.png"
          f"{', overlays/' if not args.no_overlays else ''}{', maps/' if not args.no_maps else ''})")
    print(json.dumps({k: v for k, v in result.overall.items() if v is not None}))
    return 0
