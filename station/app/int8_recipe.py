"""An int8 version of a taught PatchCore recipe, for CPUs.

The int8 backbone (``quantize.py``) is about twice as fast on a CPU, but its anomaly maps are not the
float32 maps: quantization noise adds to every nearest-neighbour distance, so the maps sit higher
(on bottle with seeded random weights about 29 % on good images) while their ranking barely moves
(image ROC AUC -0.5 point, pixel -0.1). A threshold estimated on float32 maps is therefore wrong
for the int8 model. So int8 is never switched on at run time: it is a **new recipe version** whose
threshold is estimated again, by the paper's procedure, on the int8 model's own maps of the same
held-out good images, and which inspects only with that model (``PatchCore.from_state``).

Making a version is recipe-level work (a new version folder, its threshold, its export attached), so
it lives here, at the level that saves recipes, not inside the detector; the detector only exports
and quantizes (``detectors/patchcore/quantize.py``).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from station.core.geometry import Geometry, to_working
from station.core.golden import golden_state
from station.core.inspection import preprocess
from station.core.progress import CancelToken, ProgressCallback, checkpoint
from station.core.recipe import VALIDATION_PREFIX, Recipe, RecipeError, save_recipe
from station.core.teach import VALIDATION_MAP_SIDE, predict_maps, reduce_validation_map
from station.core.threshold import ThresholdEstimator
from station.detectors.runtime import ONNX_SUBDIR, build_detector, detector_from_recipe


def make_int8_version(recipe: Recipe, calibration: Sequence[np.ndarray], validation: Sequence[np.ndarray],
                      progress: ProgressCallback | None = None,
                      cancel: CancelToken | None = None) -> tuple[Path, dict[str, Any]]:
    """Save the int8 version of the float32 PatchCore ``recipe`` as the part's next version.

    Parameters
    ----------
    calibration
        Raw good images of the part that set the int8 activation ranges (a few dozen).
    validation
        Raw anomaly-free images held out from teaching -- the recipe's own validation images where
        they can be had -- on which the int8 model's threshold is estimated for the recipe's minimum
        defect area.

    Returns
    -------
    The new version folder (with its ONNX export) and a summary: thresholds, how the int8 maps
    compare with float32's on the validation images, the quantization record.
    """
    if recipe.detector_kind != "patchcore":
        raise RecipeError(f"{recipe.label}: only PatchCore recipes have an int8 version")
    if recipe.detector_config.get("onnx_precision") == "int8":
        raise RecipeError(f"{recipe.label} is already an int8 version; make int8 versions from a float32 one")
    if recipe.path is None:
        raise RecipeError("save the recipe before making its int8 version")
    if not calibration or not validation:
        raise RecipeError("an int8 version needs good images to calibrate on and held-out good images to "
                          "estimate its threshold on")
    from station.detectors.patchcore.quantize import QuantizationError, map_agreement

    pre = recipe.preprocessing
    geometry = Geometry.from_dict(pre.get("geometry"))  # calibrate and validate as the recipe inspects
    cal = to_working([preprocess(im, pre) for im in calibration], geometry)
    val = [preprocess(im, pre) for im in validation]
    torch_detector = detector_from_recipe(recipe, device="cpu", backend="torch")
    work = Path(tempfile.mkdtemp(prefix=".int8-", dir=recipe.path.parent))
    try:
        onnx_dir = work / ONNX_SUBDIR
        try:
            torch_detector.export_onnx(onnx_dir, int8_calibration=cal)
        except QuantizationError as exc:
            raise RecipeError(f"{recipe.label}: no int8 model could be made ({exc}); inspect with the float32 "
                              f"version") from exc
        checkpoint(cancel)
        int8_config = {**recipe.detector_config, "onnx_precision": "int8"}
        runtime = {"device": "cpu", "backend": "onnxruntime", "onnx_dir": onnx_dir}
        i8 = build_detector(recipe.detector_kind, int8_config, recipe.detector_state(), **runtime)
        f32 = build_detector(recipe.detector_kind, recipe.detector_config, recipe.detector_state(), **runtime)
        maps, scores = predict_maps(i8, val, progress=progress, cancel=cancel, stage="validating int8",
                                    geometry=geometry)
        ref_maps, ref_scores = predict_maps(f32, val, progress=progress, cancel=cancel, stage="validating float32",
                                            geometry=geometry)
        small = [reduce_validation_map(m, VALIDATION_MAP_SIDE, peaks=geometry.fit == "tiles") for m in maps]
        estimate = ThresholdEstimator(small, image_shapes=[m.shape for m in maps]).estimate(recipe.min_defect_area_px)
        agreement = map_agreement(np.stack(ref_maps), np.stack(maps), np.asarray(ref_scores), np.asarray(scores))
        state = {**recipe.detector_state(), **golden_state(recipe)}  # the golden parts go along (recipe.golden too)
        state.update({f"{VALIDATION_PREFIX}{i:04d}": m for i, m in enumerate(small)})
        manifest = _read_manifest(onnx_dir)
        new = dataclasses.replace(
            recipe, detector_config=int8_config, threshold=estimate.threshold, state=state, version=0, path=None,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            validation={"n_images": len(val), "image_shape": list(val[0].shape[:2]), "scores": scores,
                        "map_max": [float(m.max()) for m in maps], "estimate": estimate.to_dict(),
                        "int8_vs_float32": agreement},
            training={**recipe.training, "int8": {"from_version": recipe.version, **manifest.get("int8", {})}},
            notes=(recipe.notes + "\n" if recipe.notes else "") + f"int8 version of v{recipe.version}",
        )
        checkpoint(cancel)
        folder = save_recipe(new, recipe.path.parent, attach={ONNX_SUBDIR: onnx_dir})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return folder, {"recipe": str(folder), "from": str(recipe.path), "threshold_float32": recipe.threshold,
                    "threshold_int8": estimate.threshold, "min_defect_area_px": recipe.min_defect_area_px,
                    "validation_images": len(val), "calibration_images": len(cal), "int8_vs_float32": agreement,
                    "quantization": manifest.get("int8", {})}


def _read_manifest(onnx_dir: Path) -> dict[str, Any]:
    from station.detectors.patchcore.onnx_backend import read_manifest

    return read_manifest(onnx_dir) or {}
