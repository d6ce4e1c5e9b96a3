"""Detectability of a saved or just-taught recipe: which held-out good images, where defects go, the
grid, and storing the table beside the recipe. The measuring itself is ``station.core.detectability``.

Used by ``station eval --synthetic``, the teach-in wizard's threshold page and Review.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from station.core.datasets import Problems, iter_images, open_dataset, split_validation
from station.core.detectability import (
    DEFAULT_AREA_FACTORS,
    DEFAULT_CONTRASTS,
    DetectabilityGrid,
    DetectabilityMaps,
    DetectabilityTable,
    compute_maps,
    roi_mask,
    save_detectability,
)
from station.core.inspection import Inspector
from station.core.progress import CancelToken, ProgressCallback
from station.core.recipe import Recipe
from station.core.synthetic_defects import KINDS

DEFAULT_IMAGES = 8  # held-out images used; the wizard and the CLI stay within ~2 minutes on bottle
DEFAULT_PER_CELL = 4


@dataclass(frozen=True)
class DetectabilitySettings:
    """The grid around a recipe's minimum area, and how many held-out images to use."""

    area_factors: tuple[float, ...] = DEFAULT_AREA_FACTORS
    contrasts: tuple[float, ...] = DEFAULT_CONTRASTS
    kinds: tuple[str, ...] = KINDS
    per_cell: int = DEFAULT_PER_CELL
    max_images: int = DEFAULT_IMAGES
    seed: int = 0

    def grid(self, min_defect_area_px: float) -> DetectabilityGrid:
        return DetectabilityGrid.around(min_defect_area_px, self.area_factors, contrasts=tuple(self.contrasts),
                                        kinds=tuple(self.kinds), per_cell=self.per_cell, seed=self.seed)


def spread(items: Sequence[Any], limit: int | None) -> list[Any]:
    """At most ``limit`` of ``items``, evenly spread over them (first and last included)."""
    items = list(items)
    if not limit or len(items) <= limit:
        return items
    return [items[round(i * (len(items) - 1) / max(1, limit - 1))] for i in range(limit)]


def held_out_images(recipe: Recipe, data: str | Path | None = None, limit: int | None = DEFAULT_IMAGES,
                    problems: Problems | None = None) -> list[np.ndarray]:
    """Good images the recipe has not learned from: the ones it held out for its threshold, read
    again from the folder it was taught from (as ``station train`` records it: the same split, the
    same seed) -- or, for another folder ``data``, all of its good images (``train/good`` of an MVTec
    category). At most ``limit`` of them, evenly spread. Raises ``ValueError`` when no folder is
    known or no image is left."""
    training = recipe.training or {}
    taught_from = training.get("data")
    source = data or taught_from
    if not source:
        raise ValueError(f"recipe {recipe.label} does not record the folder it was taught from; "
                         "name the good images with --data")
    dataset = open_dataset(source)
    samples = dataset.train_good()
    if taught_from and Path(source).resolve() == Path(taught_from).resolve():
        if training.get("max_images"):
            samples = samples[: int(training["max_images"])]
        _, samples = split_validation(samples, float(training.get("validation_fraction", 0.1)),
                                      int(training.get("validation_seed", 0)))
    if not samples:
        raise ValueError(f"{source}: no held-out good images (need at least 2 good images)")
    samples = spread(samples, limit)
    images = [im for _, im in iter_images(samples, "keep", problems)]
    if not images:
        raise ValueError(f"{source}: none of the good images could be read")
    return images


def placement_mask(recipe: Recipe, detector: Any, image_shape: tuple[int, ...]) -> tuple[np.ndarray, str]:
    """Where synthetic defects go, in the raw image's pixels, and what that is in words: the
    detector's part mask where it has one (the variation model's), inside the region of interest,
    else the region of interest, else the whole image."""
    roi = recipe.preprocessing.get("roi")
    allowed = roi_mask(image_shape, roi)
    part = detector.part_mask() if hasattr(detector, "part_mask") else None
    if part is not None and part.any():
        ys, xs = np.nonzero(allowed)
        y0, x0, h, w = ys.min(), xs.min(), ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        inside = cv2.resize(part.astype(np.uint8), (int(w), int(h)), interpolation=cv2.INTER_NEAREST) > 0
        allowed[y0:y0 + h, x0:x0 + w] &= inside
        if allowed.any():
            return allowed, "the part mask"
        allowed = roi_mask(image_shape, roi)
    return allowed, "the region of interest" if roi else "the whole image"


def measure(recipe: Recipe, detector: Any, images: Sequence[np.ndarray],
            settings: DetectabilitySettings | None = None, progress: ProgressCallback | None = None,
            cancel: CancelToken | None = None, batch_size: int = 8) -> DetectabilityMaps:
    """Paste the grid around ``recipe``'s minimum area onto ``images`` and keep the maps of
    ``detector`` (the recipe's fitted detector) for re-scoring."""
    settings = settings or DetectabilitySettings()
    grid = settings.grid(recipe.min_defect_area_px)
    allowed, where = placement_mask(recipe, detector, images[0].shape)
    info = {"recipe": recipe.label, "detector": recipe.detector_kind, "placed_in": where}
    return compute_maps(Inspector(recipe, detector), images, grid, allowed, batch_size=batch_size,
                        progress=progress, cancel=cancel, info=info)


def score_for(maps: DetectabilityMaps, recipe: Recipe, threshold: float | None = None,
              min_defect_area_px: float | None = None) -> DetectabilityTable:
    """The table at the recipe's threshold and area (or those given)."""
    return maps.score(recipe.threshold if threshold is None else threshold,
                      recipe.min_defect_area_px if min_defect_area_px is None else min_defect_area_px,
                      recipe.pixel_size_mm)


def store(recipe: Recipe, table: DetectabilityTable) -> Path:
    """Keep ``table`` in ``recipe``'s saved version folder."""
    if recipe.path is None:
        raise ValueError(f"recipe {recipe.label} is not saved; save it before storing its detectability")
    return save_detectability(recipe.path, table)
