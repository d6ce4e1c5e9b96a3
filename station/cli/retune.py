"""``station retune``: change a recipe's minimum defect area and re-estimate its threshold from the
validation maps stored in the recipe; saves a new recipe version."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retune", help="set a new minimum defect area; re-estimates the threshold (new version)")
    p.add_argument("recipe", type=Path, help="a part folder (newest version) or a version folder")
    p.add_argument("--min-area", type=float, required=True, help="minimum defect area in pixels")
    p.add_argument("--dry-run", action="store_true", help="print the new threshold, save nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from station.core.recipe import exports_of, load_recipe, save_recipe
    from station.core.teach import validation_estimator

    recipe = load_recipe(args.recipe)
    exports = exports_of(recipe)  # before the save below moves recipe.path on
    est = validation_estimator(recipe).estimate(args.min_area)
    print(f"{recipe.label}: minimum area {recipe.min_defect_area_px:g} -> {args.min_area:g} px, "
          f"threshold {recipe.threshold:.6g} -> {est.threshold:.6g}")
    if args.dry_run:
        return 0
    old = (recipe.threshold, recipe.min_defect_area_px)
    recipe.threshold, recipe.min_defect_area_px = est.threshold, float(args.min_area)
    recipe.validation = {**recipe.validation, "estimate": est.to_dict()}
    recipe.notes = (recipe.notes + "\n" if recipe.notes else "") + \
        f"retuned from v{recipe.version}: threshold {old[0]:.6g} -> {est.threshold:.6g}, " \
        f"min area {old[1]:g} -> {args.min_area:g} px"
    folder = save_recipe(recipe, recipe.path.parent, copies=exports)
    print(f"saved {folder}")
    return 0
