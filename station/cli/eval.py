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
                                   "overlays/ and maps/ (raw anomaly maps as .npy). With --synthetic: what "
                                   "the recipe will catch -- recall on synthetic defects (dark and bright "
                                   "spots, scratches, texture patches) of a grid of areas and contrasts pasted "
                                   "onto its held-out good images, stored beside the recipe.")
    p.add_argument("--data", type=Path, help="an MVTec AD category folder (with --synthetic: the good images "
                                             "the recipe was taught from; default: the folder it records)")
    p.add_argument("--recipe", type=Path, help="a part folder (newest version) or a version folder")
    p.add_argument("--synthetic", type=Path, metavar="RECIPE",
                   help="measure the recipe's detectability on synthetic defects instead (see above)")
    p.add_argument("--images", type=int, default=8, help="--synthetic: held-out good images used (default 8)")
    p.add_argument("--per-cell", type=int, default=4,
                   help="--synthetic: defects per kind, area and contrast (default 4)")
    p.add_argument("--contrasts", type=_floats,
                   help="--synthetic: contrasts in grey levels (default 10,20,40,80: DEFAULT_CONTRASTS)")
    p.add_argument("--area-factors", type=_floats,
                   help="--synthetic: areas as multiples of the minimum defect area (default "
                        "0.25,0.5,1,4,16,64: station.core.detectability.DEFAULT_AREA_FACTORS)")
    p.add_argument("--seed", type=int, default=0, help="--synthetic: seed of the defects (default 0)")
    p.add_argument("--no-store", action="store_true", help="--synthetic: do not write detectability.json")
    p.add_argument("--out", type=Path, help="output folder (default: runs/eval-<part>-<time>)")
    p.add_argument("--min-area", type=float,
                   help="re-estimate the threshold for this minimum defect area (pixels) from the "
                        "recipe's validation maps (with --synthetic too)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--no-overlays", action="store_true", help="do not write overlay images")
    p.add_argument("--no-maps", action="store_true", help="do not save raw anomaly maps")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:n] (deep detectors)")
    p.add_argument("--backend", choices=["auto", "torch", "onnxruntime"], default="auto",
                   help="inference backend where supported (auto: ONNX Runtime on the CPU where the recipe "
                        "has a current export, see station export)")
    p.set_defaults(func=run)


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive numbers separated by commas, got {text!r}")
    return values


def run(args: argparse.Namespace) -> int:
    if args.synthetic is not None:
        return run_synthetic(args)
    if args.data is None or args.recipe is None:
        raise SystemExit("error: station eval needs --data and --recipe (or --synthetic RECIPE)")
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


def run_synthetic(args: argparse.Namespace) -> int:
    """``station eval --synthetic RECIPE``: the detectability table, printed and stored."""
    import time

    from station.app.detectability import DetectabilitySettings, held_out_images, measure, score_for, store
    from station.cli.common import ProgressPrinter
    from station.core.datasets import Problems
    from station.core.recipe import load_recipe
    from station.detectors.runtime import load_inspector

    recipe = load_recipe(args.synthetic)
    problems = Problems()
    try:
        images = held_out_images(recipe, args.data, args.images, problems)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    for path, msg in problems:
        print(f"skipped {path}: {msg}")
    if args.min_area is not None:  # what the recipe would catch at another area (stored with that area)
        from station.core.teach import validation_estimator

        recipe.threshold = validation_estimator(recipe).estimate(args.min_area).threshold
        recipe.min_defect_area_px = float(args.min_area)
    chosen = {k: v for k, v in (("area_factors", args.area_factors), ("contrasts", args.contrasts)) if v}
    try:
        settings = DetectabilitySettings(per_cell=args.per_cell, max_images=args.images, seed=args.seed, **chosen)
        grid = settings.grid(recipe.min_defect_area_px)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    t0 = time.perf_counter()
    detector = load_inspector(recipe, device=args.device, backend=args.backend).detector
    print(f"detectability of {recipe.label} ({recipe.detector_kind}): {grid.n_samples} synthetic defects on "
          f"{len(images)} held-out good images")
    maps = measure(recipe, detector, images, settings, progress=ProgressPrinter(), batch_size=args.batch_size)
    table = score_for(maps, recipe)
    print()
    print(table.text())
    print(f"\ndefects placed in {maps.info.get('placed_in')}; {time.perf_counter() - t0:.1f} s in all "
          f"(pasting + inspecting {maps.seconds:.1f} s)")
    if not args.no_store:
        print(f"stored: {store(recipe, table)}")
    return 0
