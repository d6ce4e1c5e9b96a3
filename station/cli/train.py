"""``station train``: teach a part from a folder of good images (or an MVTec category's train/good)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from station.cli.common import ProgressPrinter, add_param_option, parse_roi


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="teach a part from good images and save a recipe",
                       description="Teach a part from good images only: fit the detector, estimate the "
                                   "threshold on held-out good images for a minimum defect area (MVTec AD "
                                   "paper, 4.3) and save a new recipe version.")
    p.add_argument("--data", required=True, type=Path, help="an MVTec AD category (uses train/good) or a folder of good images")
    p.add_argument("--detector", default="variation", help="detector kind (variation, patchcore, padim, autoencoder)")
    p.add_argument("--out", required=True, type=Path, help="the part's recipe folder, e.g. models/bottle")
    p.add_argument("--name", help="part name (default: the --out folder's name)")
    p.add_argument("--min-area", type=float, help="minimum defect area in pixels (default: 0.1 %% of the image)")
    p.add_argument("--min-area-mm2", type=float, help="minimum defect area in mm^2 (needs --pixel-size)")
    p.add_argument("--pixel-size", type=float, help="pixel size in mm, for areas in mm^2")
    p.add_argument("--validation-fraction", type=float, default=0.1,
                   help="share of good images held out for the threshold (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="seed for the validation split (default 0)")
    p.add_argument("--color", choices=["rgb", "gray"], help="colour mode (default: the detector's)")
    p.add_argument("--roi", type=parse_roi, help="inspect only this region: x,y,width,height")
    p.add_argument("--max-images", type=int, help="use at most this many good images")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:n] (deep detectors)")
    p.add_argument("--export-onnx", action="store_true",
                   help="also export the network for ONNX Runtime (PatchCore, PaDiM, autoencoder; see station export)")
    add_param_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from station.core.datasets import Problems, iter_images, open_dataset, split_validation
    from station.core.recipe import save_recipe
    from station.core.units import mm2_to_px
    from station.detectors.base import detector_info
    from station.detectors.runtime import teach_detector

    info = detector_info(args.detector)  # fail early on an unknown detector
    if args.min_area_mm2 is not None:
        if not args.pixel_size:
            raise SystemExit("error: --min-area-mm2 needs --pixel-size (mm per pixel)")
        args.min_area = mm2_to_px(args.min_area_mm2, args.pixel_size)
    params = dict(args.param)

    dataset = open_dataset(args.data)
    samples = dataset.train_good()
    if args.max_images:
        samples = samples[: args.max_images]
    train_s, val_s = split_validation(samples, args.validation_fraction, args.seed)
    if not val_s:
        raise SystemExit("error: need at least 2 good images (one is held out to estimate the threshold)")
    problems = Problems()
    train = [im for _, im in iter_images(train_s, "keep", problems)]
    val = [im for _, im in iter_images(val_s, "keep", problems)]
    for path, msg in problems:
        print(f"skipped {path}: {msg}")
    if not train or not val:
        raise SystemExit("error: not enough readable images to train and validate")
    print(f"teaching {args.detector} on {len(train)} images, {len(val)} held out for the threshold "
          f"({dataset.root})")
    pre = {"color_mode": args.color or info.color_mode, "roi": args.roi}
    t0 = time.perf_counter()
    result = teach_detector(
        args.name or args.out.name, train, val, args.detector, params, device=args.device,
        min_defect_area_px=args.min_area,
        preprocessing=pre, pixel_size_mm=args.pixel_size,
        training_info={"data": str(dataset.root), "validation_seed": args.seed,
                       "validation_fraction": args.validation_fraction, "max_images": args.max_images,
                       "skipped": [str(p) for p, _ in problems]},
        progress=ProgressPrinter())
    for note in result.notes:
        print(note)
    folder = save_recipe(result.recipe, args.out)
    if args.export_onnx:
        from station.cli.export import export_recipe
        from station.core.recipe import load_recipe

        exported = export_recipe(load_recipe(folder))
        print(f"ONNX export: {', '.join(exported['files'])} (max relative difference to torch "
              f"{exported['max_relative_difference']:.1e})")
    est = result.estimate
    print(json.dumps({
        "recipe": str(folder), "detector": args.detector, "threshold": round(est.threshold, 6),
        "min_defect_area_px": est.min_defect_area_px, "validation_images": len(val),
        "largest_validation_region_px": round(max(est.largest_area_px), 1),
        "fit_seconds": result.recipe.training.get("fit_seconds"),
        "total_seconds": round(time.perf_counter() - t0, 2)}, indent=2))
    return 0
