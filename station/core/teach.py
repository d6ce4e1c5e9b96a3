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

from station.core.detector import Detector, DetectorFactory
from station.core.frame_stats import input_profile
from station.core.geometry import (
    Geometry,
    choose_geometry,
    predict_in_geometry,
    size_notice,
    split_geometry_params,
    to_working,
)
from station.core.inspection import preprocess
from station.core.progress import CancelToken, ProgressCallback, checkpoint, report
from station.core.recipe import VALIDATION_PREFIX, Recipe
from station.core.threshold import ThresholdEstimate, ThresholdEstimator

VALIDATION_MAP_SIDE = 256  # stored validation maps are reduced to this longer side
DEFAULT_VALIDATION_FRACTION = 0.1
DEFAULT_MIN_AREA_FRACTION = 0.001  # a default minimum defect area: 0.1 % of the inspected area


class TeachError(ValueError):
    """The images or parameters given to teach cannot be used; the message says why and what to do."""


def default_min_defect_area(shape: tuple[int, int]) -> float:
    return max(1.0, round(shape[0] * shape[1] * DEFAULT_MIN_AREA_FRACTION))


def typical_shape(shapes: Sequence[tuple[int, ...]]) -> tuple[int, int]:
    """The median ``(h, w)`` of a set of image shapes (of one size: that size)."""
    hw = np.array([s[:2] for s in shapes], dtype=np.float64)
    return int(round(np.median(hw[:, 0]))), int(round(np.median(hw[:, 1])))


@dataclass
class TeachResult:
    recipe: Recipe
    detector: Detector
    estimator: ThresholdEstimator
    estimate: ThresholdEstimate
    validation_maps: list[np.ndarray] = field(repr=False)
    notes: list[str] = field(default_factory=list)  # for the user: e.g. how images of mixed sizes were fitted


def predict_maps(
    detector: Detector,
    images: Sequence[np.ndarray],
    batch_size: int = 8,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    stage: str = "scoring",
    geometry: Geometry | None = None,
) -> tuple[list[np.ndarray], list[float]]:
    """Anomaly maps (at each image's own size) and image scores of ``images`` in batches, with
    progress and cancel points."""
    geometry = geometry or Geometry()
    maps: list[np.ndarray] = []
    scores: list[float] = []
    for start in range(0, len(images), batch_size):
        checkpoint(cancel)
        m, sc = predict_in_geometry(detector.predict, images[start:start + batch_size], geometry)
        maps.extend(m)
        scores.extend(sc)
        report(progress, stage, len(maps), len(images))
    return maps, scores


def teach(
    name: str,
    train_images: Sequence[np.ndarray],
    validation_images: Sequence[np.ndarray],
    factory: DetectorFactory,
    detector_params: dict[str, Any] | None = None,
    min_defect_area_px: float | None = None,
    preprocessing: dict[str, Any] | None = None,
    pixel_size_mm: float | None = None,
    training_info: dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> TeachResult:
    """Teach a part. Images are raw (camera/file) images of any size; the recipe's preprocessing
    (ROI, colour mode) is applied here, then the working geometry (see :mod:`station.core.geometry`:
    ``detector_params`` may carry ``fit``, ``work_size``, ``tile_overlap``). ``factory`` builds the
    detector and says what its registry entry declares (``station.detectors.runtime.teach_detector``
    gives one by name). Nothing is saved: the caller decides (``save_recipe``)."""
    if not train_images:
        raise TeachError("teaching needs at least one good training image")
    if not validation_images:
        raise TeachError("teaching needs anomaly-free validation images to estimate the threshold")
    info = factory
    geometry_options, detector_params = split_geometry_params(detector_params)
    pre = {"color_mode": info.color_mode, "roi": None, **(preprocessing or {})}
    pre.pop("geometry", None)  # chosen anew below, for these images
    train = [preprocess(im, pre) for im in train_images]
    val = [preprocess(im, pre) for im in validation_images]
    shapes = [im.shape[:2] for im in train + val]
    shape = typical_shape(shapes)
    if min_defect_area_px is None:
        min_defect_area_px = default_min_defect_area(shape)

    detector = factory.create(detector_params)
    geometry = choose_geometry(info.geometry, _size_setting(detector, detector_params, info.geometry.size_param),
                               shapes, geometry_options, info.title)
    pre["geometry"] = geometry.to_dict()
    notes = [n for n in [size_notice(shapes, geometry)] if n]
    work = to_working(train, geometry)
    if len(work) != len(train):
        notes.append(f"{len(train)} training images give {len(work)} tiles of {geometry.size[1]}x{geometry.size[0]}")
    t0 = time.perf_counter()
    fit_stats = detector.fit(work, progress=progress, cancel=cancel) or {}
    fit_s = time.perf_counter() - t0
    del work
    checkpoint(cancel)
    maps, scores = predict_maps(detector, val, progress=progress, cancel=cancel, stage="validating",
                                geometry=geometry)
    # The threshold is estimated on the validation maps reduced to VALIDATION_MAP_SIDE (areas scaled
    # back to original pixels): the same maps the recipe stores, so a later re-tune from the recipe
    # gives exactly the threshold teaching would have given, and the slider stays fast.
    small = [reduce_validation_map(m, VALIDATION_MAP_SIDE, peaks=geometry.fit == "tiles") for m in maps]
    estimator = ThresholdEstimator(small, image_shapes=[m.shape for m in maps])
    estimate = estimator.estimate(min_defect_area_px)

    state = dict(detector.get_state())
    for i, m in enumerate(small):
        state[f"{VALIDATION_PREFIX}{i:04d}"] = m
    recipe = Recipe(
        name=name,
        detector_kind=factory.kind,
        detector_config=detector.get_config(),
        threshold=estimate.threshold,
        min_defect_area_px=float(min_defect_area_px),
        preprocessing=pre,
        pixel_size_mm=pixel_size_mm,
        validation={
            "n_images": len(val),
            "image_shape": list(shape),
            "image_shapes": [list(m.shape) for m in maps],
            "scores": scores,
            "map_max": [float(m.max()) for m in maps],
            "estimate": estimate.to_dict(),
        },
        training={"n_images": len(train), "fit_seconds": round(fit_s, 3), **fit_stats,
                  **({"notes": notes} if notes else {}), **(training_info or {})},
        weights=getattr(detector, "weights_info", None),
        # the frames the recipe was taught on, for the live input and drift watch (station.live)
        input_profile=input_profile([*train_images, *validation_images], pre.get("roi")),
        state=state,
    )
    return TeachResult(recipe, detector, estimator, estimate, maps, notes)


def _size_setting(detector: Detector, params: dict[str, Any], name: str | None) -> dict[str, Any]:
    """``{name: value}`` of the detector's declared size parameter (given, resolved on the instance,
    or its default), before it is fitted."""
    import inspect

    if name is None:
        return {}
    value = params.get(name, getattr(detector, name, None))
    if value is None:
        default = inspect.signature(type(detector)).parameters.get(name)
        value = None if default is None or default.default is inspect.Parameter.empty else default.default
    return {} if value is None else {name: value}


def reduce_validation_map(m: np.ndarray, side: int, peaks: bool = False) -> np.ndarray:
    """``m`` with its longer side reduced to at most ``side``: by area averaging, or -- ``peaks``, for
    tiled recipes, whose large frames are reduced by 8x and more -- by the maximum of each block, so
    the threshold estimated on the stored map is never below what the full-resolution map needs."""
    if max(m.shape) <= side:
        return np.ascontiguousarray(m, dtype=np.float32)
    if peaks:
        k = -(-max(m.shape) // side)
        h, w = -(-m.shape[0] // k) * k, -(-m.shape[1] // k) * k
        padded = np.pad(m.astype(np.float32), ((0, h - m.shape[0]), (0, w - m.shape[1])), mode="edge")
        return np.ascontiguousarray(padded.reshape(h // k, k, w // k, k).max(axis=(1, 3)))
    f = side / max(m.shape)
    size = (max(1, round(m.shape[1] * f)), max(1, round(m.shape[0] * f)))
    return cv2.resize(m.astype(np.float32), size, interpolation=cv2.INTER_AREA)


def validation_estimator(recipe: Recipe) -> ThresholdEstimator:
    """A threshold estimator over the validation maps stored in the recipe (areas in original pixels)."""
    maps = recipe.validation_maps()
    if not maps:
        raise ValueError(f"recipe {recipe.label} holds no validation maps; teach it again to re-tune the area")
    shapes = recipe.validation.get("image_shapes")
    if not shapes or len(shapes) != len(maps):
        shapes = [recipe.validation.get("image_shape") or maps[0].shape] * len(maps)
    return ThresholdEstimator(maps, image_shapes=[tuple(s) for s in shapes])
