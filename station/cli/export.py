"""``station export``: write a recipe's network as ONNX for ONNX Runtime (next to the recipe version)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ONNX_SUBDIR = "onnx"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a recipe's detector to ONNX (for --backend onnxruntime)",
                       description="Write the recipe's fitted network as ONNX into <version>/onnx/ (or --out) "
                                   "and check that ONNX Runtime reproduces the torch anomaly maps.")
    p.add_argument("recipe", type=Path, help="a part folder (newest version) or a version folder")
    p.add_argument("--out", type=Path, help="output folder (default: <recipe version>/onnx)")
    p.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime vs torch check")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from station.core.recipe import load_recipe

    result = export_recipe(load_recipe(args.recipe), out=args.out, check=not args.no_verify)
    print(json.dumps(result, indent=2))
    return 0


def export_recipe(recipe, out: Path | None = None, check: bool = True) -> dict:
    """Export the recipe's network as ONNX (default: ``<version>/onnx``) and, with ``check``, verify
    that ONNX Runtime reproduces torch's maps. Returns what was written."""
    from station.core.inspection import detector_from_recipe
    from station.core.recipe import RecipeError
    from station.detectors.base import detector_class

    if not callable(getattr(detector_class(recipe.detector_kind), "export_onnx", None)):
        raise RecipeError(f"{recipe.label}: the {recipe.detector_kind} detector has no ONNX export")
    detector = detector_from_recipe(recipe, device="cpu")
    out = out or (recipe.path / ONNX_SUBDIR)
    files = detector.export_onnx(out)
    result = {"recipe": str(recipe.path), "files": [str(f) for f in files]}
    if check:
        result["max_relative_difference"] = verify(recipe, detector, out)
    return result


def verify(recipe, detector, onnx_dir: Path, tolerance: float = 1e-3) -> float:
    """Score one synthetic image with torch and with ONNX Runtime; raise if the maps disagree."""
    import numpy as np

    from station.core.inspection import detector_from_recipe
    from station.core.recipe import RecipeError

    shape = tuple(recipe.validation.get("image_shape") or (256, 256))
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    ort_detector = detector_from_recipe(recipe, device="cpu", backend="onnxruntime", onnx_dir=onnx_dir)
    a = detector.predict([image]).anomaly_maps[0]
    b = ort_detector.predict([image]).anomaly_maps[0]
    rel = float(np.abs(a - b).max() / max(float(np.abs(a).max()), 1e-12))
    if rel > tolerance:
        raise RecipeError(f"the ONNX export in {onnx_dir} disagrees with torch (max relative difference "
                          f"{rel:.2e} > {tolerance:g}); do not use it")
    return rel
