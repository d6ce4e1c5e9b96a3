"""Teaching a part from good images only: fit the detector, estimate the threshold on held-out good
images for a minimum defect area, and assemble a :class:`~station.core.recipe.Recipe`.

The recipe keeps the validation maps (reduced in size), so the minimum defect area can be re-tuned
later -- in the wizard or from the CLI -- without the validation images.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from station.core.inspection import preprocess
from station.core.progress import CancelToken, ProgressCallback, checkpoint, report
from station.core.recipe import VALIDATION_PREFIX, Recipe
from station.core.threshold import ThresholdEstimate, ThresholdEstimator
from station.detectors.base import Detector, create_detector, detector_info

VALIDATION_MAP_SIDE = 256  # stored validation maps are reduced to this longer side
DEFAULT_VALIDATION_FRACTION = 0.1
DEFAULT_MIN_AREA_FRACTION = 0.001  # a default minimum defect area: 0.1 % of the inspected area


def default_min_defect_area(shape: tuple[int, int]) -> float:
    return max(1.0, round(shape[0] * shape[1] * DEFAULT_MIN_AREA_FRACTION))


@dataclass
class TeachResult:
    recipe: Recipe
    detector: Detector
    estimator: ThresholdEstimator
    estimate: ThresholdEstimate
    validation_maps: list[np.ndarray] = field(repr=False)


def predict_maps(
    detector: Detector,
    images: Sequence[np.ndarray],
    batch_size: int = 8,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    stage: str = "scoring",
) -> tuple[list[np.ndarray], list[float]]:
    """Anomaly maps and image scores of ``images`` in batches, with progress and cancel points."""
    maps: list[np.ndarray] = []
    scores: list[float] = []
    for start in range(0, len(images), batch_size):
        checkpoint(cancel)
        pred = detector.predict(images[start:start + batch_size])
        maps.extend(np.asarray(m, dtype=np.float32) for m in pred.anomaly_maps)
        scores.extend(float(s) for s in pred.scores)
        report(progress, stage, len(maps), len(images))
    return maps, scores


def teach(
    name: str,
    train_images: Sequence[np.ndarray],
    validation_images: Sequence[np.ndarray],
    detector_kind: str,
    detector_params: dict[str, Any] | None = None,
    min_defect_area_px: float | None = None,
    preprocessing: dict[str, Any] | None = None,
    pixel_size_mm: float | None = None,
    training_info: dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    runtime: dict[str, Any] | None = None,
) -> TeachResult:
    """Teach a part. Images are raw (camera/file) images; the recipe's preprocessing (ROI, colour
    mode) is applied here. Nothing is saved: the caller decides (``save_recipe``)."""
    if not train_images:
        raise ValueError("teaching needs at least one good training image")
    if not validation_images:
        raise ValueError("teaching needs anomaly-free validation images to estimate the threshold")
    info = detector_info(detector_kind)
    pre = {"color_mode": info.color_mode, "roi": None, **(preprocessing or {})}
    train = [preprocess(im, pre) for im in train_images]
    val = [preprocess(im, pre) for im in validation_images]
    shapes = {im.shape[:2] for im in train + val}
    if len(shapes) > 1:
        raise ValueError(f"all images must have one size after preprocessing; found {sorted(shapes)}")
    shape = train[0].shape[:2]
    if min_defect_area_px is None:
        min_defect_area_px = default_min_defect_area(shape)

    detector = create_detector(detector_kind, **(detector_params or {}), **(runtime or {}))
    t0 = time.perf_counter()
    fit_stats = detector.fit(train, progress=progress, cancel=cancel) or {}
    fit_s = time.perf_counter() - t0
    checkpoint(cancel)
    maps, scores = predict_maps(detector, val, progress=progress, cancel=cancel, stage="validating")
    # The threshold is estimated on the validation maps reduced to VALIDATION_MAP_SIDE (areas scaled
    # back to original pixels): the same maps the recipe stores, so a later re-tune from the recipe
    # gives exactly the threshold teaching would have given, and the slider stays fast.
    small = [reduce_validation_map(m, VALIDATION_MAP_SIDE) for m in maps]
    estimator = ThresholdEstimator(small, image_shapes=[m.shape for m in maps])
    estimate = estimator.estimate(min_defect_area_px)

    state = dict(detector.get_state())
    for i, m in enumerate(small):
        state[f"{VALIDATION_PREFIX}{i:04d}"] = m
    recipe = Recipe(
        name=name,
        detector_kind=detector_kind,
        detector_config=detector.get_config(),
        threshold=estimate.threshold,
        min_defect_area_px=float(min_defect_area_px),
        preprocessing=pre,
        pixel_size_mm=pixel_size_mm,
        validation={
            "n_images": len(val),
            "image_shape": list(shape),
            "scores": scores,
            "map_max": [float(m.max()) for m in maps],
            "estimate": estimate.to_dict(),
        },
        training={"n_images": len(train), "fit_seconds": round(fit_s, 3), **fit_stats,
                  **(training_info or {})},
        weights=getattr(detector, "weights_info", None),
        state=state,
    )
    return TeachResult(recipe, detector, estimator, estimate, maps)


def reduce_validation_map(m: np.ndarray, side: int) -> np.ndarray:
    if max(m.shape) <= side:
        return np.ascontiguousarray(m, dtype=np.float32)
    f = side / max(m.shape)
    size = (max(1, round(m.shape[1] * f)), max(1, round(m.shape[0] * f)))
    return cv2.resize(m.astype(np.float32), size, interpolation=cv2.INTER_AREA)


def validation_estimator(recipe: Recipe) -> ThresholdEstimator:
    """A threshold estimator over the validation maps stored in the recipe (areas in original pixels)."""
    maps = recipe.validation_maps()
    if not maps:
        raise ValueError(f"recipe {recipe.label} holds no validation maps; teach it again to re-tune the area")
    shape = tuple(recipe.validation.get("image_shape") or maps[0].shape)
    return ThresholdEstimator(maps, image_shapes=[shape] * len(maps))
