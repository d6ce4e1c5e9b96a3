"""``station golden``: store known OK/NG parts in a recipe (a new version) and list them.
``station selftest --recipe <recipe>`` runs them (the ``golden:*`` check)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("golden", help="golden parts: known OK/NG images a recipe must judge right (self-test)",
                       description="Golden parts are known parts with the verdict each must get. The station "
                                   "inspects them at start, after a recipe or threshold change and with "
                                   "`station selftest --recipe`; a wrong verdict blocks inspection (or warns).")
    gsub = p.add_subparsers(dest="golden_command", metavar="<action>", required=True)
    add = gsub.add_parser("add", help="add image files as golden parts; saves a new recipe version (audited)")
    add.add_argument("recipe", type=Path, help="a part folder (newest version) or a version folder")
    add.add_argument("--ok", nargs="+", default=[], type=Path, metavar="IMAGE", help="parts that must be OK")
    add.add_argument("--ng", nargs="+", default=[], type=Path, metavar="IMAGE", help="parts that must be NG")
    add.add_argument("--on-failure", choices=("block", "warn"),
                     help="what a wrong verdict does to inspection (default: keep the recipe's; new: block)")
    add.set_defaults(func=run_add)
    ls = gsub.add_parser("list", help="the recipe's golden parts")
    ls.add_argument("recipe", type=Path)
    ls.set_defaults(func=run_list)


def run_add(args: argparse.Namespace) -> int:
    from station.app.audit import AuditLog
    from station.app.golden import store_golden_parts
    from station.app.paths import AppPaths
    from station.core.golden import GoldenError
    from station.core.recipe import load_recipe

    if not args.ok and not args.ng and args.on_failure is None:
        print("station golden add: give --ok and/or --ng images (or --on-failure)")
        return 2
    recipe = load_recipe(args.recipe)
    try:
        folder = store_golden_parts(recipe, recipe.path.parent, args.ok, args.ng, args.on_failure,
                                    audit=AuditLog(AppPaths.default().audit_log))
    except GoldenError as exc:
        print(f"station golden add: {exc}")
        return 2
    print(f"saved {folder}")
    return run_list(argparse.Namespace(recipe=folder))


def run_list(args: argparse.Namespace) -> int:
    from station.core.golden import golden_parts, on_failure, parts_summary
    from station.core.recipe import load_recipe

    recipe = load_recipe(args.recipe)
    parts = golden_parts(recipe)
    print(f"{recipe.label}: {parts_summary(parts)}; a wrong verdict: {on_failure(recipe)}")
    for part in parts:
        h, w = part.image.shape[:2]
        print(f"  {part.expected.value}  {part.name}  {w}x{h}  {part.note}")
    return 0
