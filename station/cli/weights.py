"""``station weights``: list, download and import backbone weights (and make seeded random ones for tests)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="backbone weights: list, download, import",
                       description="Manage the pretrained backbone weights deep detectors use. They live in "
                                   "$STATION_HOME/weights (default: the per-user data folder).")
    cmds = p.add_subparsers(dest="weights_command", metavar="<action>", required=True)

    ls = cmds.add_parser("list", help="show the weights in the store and torchvision's published ones")
    ls.set_defaults(func=run_list)

    dl = cmds.add_parser("download", help="download torchvision's ImageNet weights (hash-checked)")
    dl.add_argument("--backbone", default="wide_resnet50_2", help="backbone (default wide_resnet50_2)")
    dl.add_argument("--name", default="imagenet",
                    help="torchvision weights name, e.g. IMAGENET1K_V1 (default: the paper's)")
    dl.set_defaults(func=run_download)

    im = cmds.add_parser("import", help="import a weights file (for PCs without internet)",
                         description="Copy a weights file into the store. torchvision's files are verified "
                                     "against their published hash; any other state dict (custom, "
                                     "fine-tuned, random) needs --allow-custom.")
    im.add_argument("file", type=Path)
    im.add_argument("--allow-custom", action="store_true",
                    help="accept a state dict that is not one of torchvision's published files")
    im.add_argument("--backbone", help="the backbone the file is for (default: inferred from its shapes)")
    im.set_defaults(func=run_import)

    rnd = cmds.add_parser("random", help="write seeded RANDOM weights as a state dict (tests/CI only)",
                          description="Write torchvision's random initialisation of a backbone from a fixed "
                                      "seed as a torchvision-format state dict. Not pretrained: for tests, "
                                      "CI and comparisons with other implementations only.")
    rnd.add_argument("out", type=Path, help="output file (.pth)")
    rnd.add_argument("--backbone", default="wide_resnet50_2")
    rnd.add_argument("--seed", type=int, default=0)
    rnd.set_defaults(func=run_random)


def run_list(args: argparse.Namespace) -> int:
    from station.weights import BACKBONES, WeightsStore, published_weights

    store = WeightsStore()
    print(f"weights store: {store.root}")
    print("torchvision (ImageNet):")
    for backbone in BACKBONES:
        for w in published_weights(backbone):
            found = store.find_published(w)
            where = f"present ({found.path})" if found else "not downloaded"
            default = " [default]" if w.name == BACKBONES[backbone] else ""
            print(f"  {backbone:<16} {w.name:<14}{default:<10} {where}")
    custom = store.custom()
    print("custom (imported with --allow-custom):" if custom else "custom: none")
    for w in custom:
        print(f"  {w.backbone:<16} {w.name:<30} sha256 {w.sha256[:16]}  use: weights=custom:{w.sha256[:16]}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from station.weights import WeightsStore, find_published

    store = WeightsStore()
    published = find_published(args.backbone, args.name)
    found = store.find_published(published)
    if found is None:
        found = store.download(published)
    print(f"{published.label}: {found.path} (sha256 {found.sha256[:16]}..., verified)")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from station.weights import WeightsStore

    found = WeightsStore().import_file(args.file, allow_custom=args.allow_custom, backbone=args.backbone)
    print(f"imported {args.file} as {found.backbone} {found.source} weights: {found.path}")
    print(f"sha256 {found.sha256}")
    if found.source == "custom":
        print(f"use it with: -p backbone={found.backbone} -p weights=custom:{found.sha256[:16]}")
    return 0


def run_random(args: argparse.Namespace) -> int:
    import torch

    from station.weights import random_state_dict

    state = random_state_dict(args.backbone, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, args.out)
    print(f"wrote RANDOM {args.backbone} weights (seed {args.seed}, not pretrained) to {args.out}")
    return 0
