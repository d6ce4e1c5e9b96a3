"""``station export``: write a recipe's network as ONNX for ONNX Runtime (next to the recipe version)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

CALIBRATION_IMAGES = 32  # good images that set the int8 activation ranges: 16 to 64 measured alike


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a recipe's detector to ONNX (for --backend onnxruntime)",
                       description="Write the recipe's fitted network as ONNX into <version>/onnx/ (or --out) "
                                   "and check that ONNX Runtime reproduces the torch anomaly maps. With --int8 "
                                   "(PatchCore) save instead a new recipe version that inspects on the CPU with an "
                                   "int8 backbone (about twice as fast), calibrated on the part's good images, its "
                                   "threshold estimated again on its own maps of the held-out good images.")
    p.add_argument("recipe", type=Path, help="a part folder (newest version) or a version folder")
    p.add_argument("--out", type=Path, help="output folder (default: <recipe version>/onnx)")
    p.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime vs torch check")
    p.add_argument("--int8", action="store_true", help="save an int8 CPU version of a PatchCore recipe (see above)")
    p.add_argument("--calibration-data", type=Path,
                   help="for --int8 when the recipe was not taught from a folder still here: good images of the "
                        "part not used for teaching (a folder or MVTec category); part calibrates, the rest "
                        "sets the threshold")
    p.add_argument("--calibration-images", type=int, default=CALIBRATION_IMAGES,
                   help=f"how many good images set the int8 ranges (default {CALIBRATION_IMAGES})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from station.core.recipe import load_recipe
    from station.detectors.runtime import ONNX_SUBDIR

    recipe = load_recipe(args.recipe)
    if args.int8:
        from station.app.int8_recipe import make_int8_version

        calibration, validation = int8_images(recipe, args.calibration_data, args.calibration_images)
        folder, result = make_int8_version(recipe, calibration, validation)
        if not args.no_verify:
            result["max_relative_difference_float32"] = verify(load_recipe(folder), None, folder / ONNX_SUBDIR,
                                                                onnx_precision="float32")
    else:
        result = export_recipe(recipe, out=args.out, check=not args.no_verify)
    print(json.dumps(result, indent=2))
    return 0


def export_recipe(recipe, out: Path | None = None, check: bool = True) -> dict:
    """Export the recipe's network as ONNX (default: ``<version>/onnx``) and, with ``check``, verify
    that ONNX Runtime reproduces torch's maps. Returns what was written."""
    from station.core.recipe import RecipeError
    from station.detectors.base import detector_info
    from station.detectors.runtime import ONNX_SUBDIR, detector_from_recipe

    if not detector_info(recipe.detector_kind).onnx:
        raise RecipeError(f"{recipe.label}: the {recipe.detector_kind} detector has no ONNX export")
    if recipe.detector_config.get("onnx_precision") == "int8":  # re-exporting would drop its int8 model
        raise RecipeError(f"{recipe.label} is an int8 version with its export made when it was saved; make a "
                          f"new int8 version from the float32 recipe instead (station export --int8)")
    detector = detector_from_recipe(recipe, device="cpu")
    out = out or (recipe.path / ONNX_SUBDIR)
    files = detector.export_onnx(out)
    result = {"recipe": str(recipe.path), "files": [str(f) for f in files]}
    if check:
        result["max_relative_difference"] = verify(recipe, detector, out)
    return result


def verify(recipe, detector, onnx_dir: Path, tolerance: float = 1e-3, **runtime) -> float:
    """Score one synthetic image with torch (``detector``, or the recipe's) and with ONNX Runtime
    (``runtime``: e.g. ``onnx_precision="float32"`` to check an int8 version's float32 model); raise
    if the maps disagree."""
    import numpy as np

    from station.core.recipe import RecipeError
    from station.detectors.runtime import detector_from_recipe

    shape = tuple(recipe.validation.get("image_shape") or (256, 256))
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    if detector is None:
        detector = detector_from_recipe(recipe, device="cpu", backend="torch", **runtime)
    ort_detector = detector_from_recipe(recipe, device="cpu", backend="onnxruntime", onnx_dir=onnx_dir, **runtime)
    a = detector.predict([image]).anomaly_maps[0]
    b = ort_detector.predict([image]).anomaly_maps[0]
    rel = float(np.abs(a - b).max() / max(float(np.abs(a).max()), 1e-12))
    if rel > tolerance:
        raise RecipeError(f"the ONNX export in {onnx_dir} disagrees with torch (max relative difference "
                          f"{rel:.2e} > {tolerance:g}); do not use it")
    return rel


def int8_images(recipe, source: Path | None, n: int) -> tuple[list, list]:
    """Raw good images for an int8 version: ``n`` to calibrate on and the held-out ones to estimate its
    threshold on. From the folder the recipe was taught from, split again exactly as ``station train``
    did (calibration from the training part, the threshold from the recipe's own validation images);
    else from ``source``, good images not used for teaching (``n`` of them calibrate, all of them
    validate: calibration sets ranges, not the threshold, so sharing images costs nothing)."""
    from station.core.datasets import Problems, iter_images, open_dataset, split_validation
    from station.core.recipe import RecipeError
    from station.detectors.patchcore.quantize import calibration_sample

    if n < 1:
        raise RecipeError("--calibration-images must be at least 1")
    problems = Problems()

    def load(items) -> list:  # as station train reads them; the recipe's preprocessing comes later
        return [im for _, im in iter_images(items, "keep", problems)]

    training = recipe.training or {}
    if source is None:
        data = training.get("data")
        if not data or not Path(data).is_dir():
            raise RecipeError(f"the images {recipe.label} was taught from are not here ({data or 'not recorded'}); "
                              f"pass good images of the part not used for teaching with --calibration-data <folder>")
        samples = open_dataset(Path(data)).train_good()[: training.get("max_images") or None]
        train, val = split_validation(samples, training.get("validation_fraction", 0.1),
                                      training.get("validation_seed", 0))
        if len(val) != recipe.validation.get("n_images"):
            raise RecipeError(f"{data} no longer splits into the {recipe.validation.get('n_images')} validation "
                              f"images {recipe.label} was taught with; pass good images not used for teaching "
                              f"with --calibration-data <folder>")
        calibration, validation = load(calibration_sample(train, n)), load(val)
    else:
        samples = open_dataset(source).train_good()
        validation = load(samples)
        calibration = load(calibration_sample(samples, n))
    for path, msg in problems:
        print(f"skipped {path}: {msg}")
    if not calibration or not validation:
        raise RecipeError("no readable good images for the int8 version")
    return calibration, validation
