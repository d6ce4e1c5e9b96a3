"""``station inspect-image``: inspect image files with a recipe (OK/NG, regions, optional overlay)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect-image", help="inspect image files with a recipe",
                       description="Inspect one or more image files; prints one JSON line per image. "
                                   "Exit status 0 if all are OK, 1 if any is NG, 2 on errors.")
    p.add_argument("recipe", type=Path, help="a part folder (newest version) or a version folder")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--overlay", type=Path, help="folder to write overlay images into")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:n] (deep detectors)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from station.core.images import ImageLoadError, load_image, save_image
    from station.core.overlay import render_overlay
    from station.core.recipe import load_recipe
    from station.detectors.runtime import load_inspector

    recipe = load_recipe(args.recipe)
    inspector = load_inspector(recipe, device=args.device)
    any_ng, errors = False, 0
    for path in args.images:
        try:
            image = load_image(path)
        except ImageLoadError as exc:
            print(json.dumps({"image": str(path), "error": str(exc)}))
            errors += 1
            continue
        try:
            result = inspector.inspect(image)
        except ValueError as exc:  # e.g. an image smaller than the recipe's region of interest
            print(json.dumps({"image": str(path), "error": str(exc)}))
            errors += 1
            continue
        any_ng |= result.is_ng
        print(json.dumps({"image": str(path), "recipe": recipe.label, **result.to_dict(recipe.pixel_size_mm)}))
        if args.overlay:
            shown, regions = result.inspected(image)
            save_image(args.overlay / f"{path.stem}_overlay.png",
                       render_overlay(shown, result.anomaly_map, result.threshold, regions))
    return 2 if errors else (1 if any_ng else 0)

