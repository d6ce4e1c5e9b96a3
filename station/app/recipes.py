"""The recipes of the models folder, as the window lists them, and re-tuning one with an audit trail.

Opening a recipe for re-tuning and saving the re-tuned version read and write all of its arrays
(tens of MB for a deep detector): the window calls :func:`open_for_retune` and :func:`retune_recipe`
on a worker, never on its own thread."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from station.app.audit import AuditLog
from station.core.recipe import (
    Recipe,
    exports_of,
    load_recipe,
    resolve_recipe_dir,
    save_recipe,
    version_number,
    versions,
)
from station.core.teach import validation_estimator
from station.core.threshold import ThresholdEstimator

_PART_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class RecipeEntry:
    part: str
    version: int
    path: Path  # the version folder

    @property
    def label(self) -> str:
        return f"{self.part} v{self.version}"


def list_recipes(models_dir: str | Path) -> list[RecipeEntry]:
    """Every saved version in ``models_dir``, by part name, newest version first."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    out: list[RecipeEntry] = []
    for part in sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                       key=lambda p: p.name.lower()):
        out.extend(RecipeEntry(part.name, n, path) for n, path in reversed(versions(part)))
    return out


def recipe_label(path: str | Path) -> str:
    """"demo v3" for a recipe folder (a version, or a part: its newest version), without loading it."""
    p = Path(path)
    try:
        p = resolve_recipe_dir(p)
    except Exception:  # noqa: BLE001 - a label only; loading reports the real problem
        return p.name
    number = version_number(p)
    return f"{p.parent.name} v{number}" if number is not None else p.name


def check_part_name(name: str) -> str | None:
    """Why ``name`` cannot be a part (folder) name, or ``None`` if it can."""
    if not name:
        return "enter a name for the part"
    if not _PART_NAME.match(name):
        return ("use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit "
                "(the name becomes a folder)")
    return None


def next_version(models_dir: str | Path, part: str) -> int:
    found = versions(Path(models_dir) / part)
    return found[-1][0] + 1 if found else 1


@dataclass(frozen=True)
class RetuneSource:
    """A saved recipe opened for re-tuning: the recipe, the threshold estimator over its stored
    validation maps, those maps and the image shape their areas are counted in."""

    recipe: Recipe
    estimator: ThresholdEstimator
    maps: list[np.ndarray]
    shape: tuple[int, ...]

    @property
    def summary(self) -> str:
        r = self.recipe
        return (f"{r.label}: {r.detector_kind}, threshold {r.threshold:.5g} for {r.min_defect_area_px:g} px, "
                f"{len(self.estimator)} validation images")


def open_for_retune(path: str | Path) -> RetuneSource:
    """Load the recipe at ``path`` with what re-tuning it needs. Raises ``RecipeError`` for a broken
    recipe and ``ValueError`` for one without validation maps (each a one-line message)."""
    recipe = load_recipe(path)
    estimator = validation_estimator(recipe)
    maps = recipe.validation_maps()
    shape = tuple(recipe.validation.get("image_shape") or maps[0].shape)
    return RetuneSource(recipe, estimator, maps, shape)


def record_tuning(audit: AuditLog, target: str, old_threshold: float, new_threshold: float,
                  old_area: float, new_area: float, role: str = "engineer", note: str = "") -> None:
    """One audit entry per value that changed."""
    if new_area != old_area:
        audit.record("min_defect_area", target, old_area, new_area, role=role, note=note, unit="px")
    if new_threshold != old_threshold:
        audit.record("threshold", target, old_threshold, new_threshold, role=role, note=note)


def retune_recipe(recipe: Recipe, min_defect_area_px: float, audit: AuditLog | None = None,
                  role: str = "engineer") -> Recipe:
    """Re-estimate ``recipe``'s threshold for a new minimum defect area from its stored validation
    maps and save the result as the part's next version (the old version stays). Returns the saved
    recipe; ``recipe`` itself is not changed."""
    if recipe.path is None:
        raise ValueError("the recipe was never saved; save it before re-tuning")
    est = validation_estimator(recipe).estimate(min_defect_area_px)
    kept = {k: getattr(recipe, k) for k in Recipe.__dataclass_fields__
            if k not in ("path", "version", "created", "station_version")}
    new = Recipe(**kept)
    new.threshold = est.threshold
    new.min_defect_area_px = float(min_defect_area_px)
    new.validation = {**recipe.validation, "estimate": est.to_dict()}
    note = (f"retuned from v{recipe.version}: threshold {recipe.threshold:.6g} -> {est.threshold:.6g}, "
            f"min area {recipe.min_defect_area_px:g} -> {min_defect_area_px:g} px")
    new.notes = (recipe.notes + "\n" if recipe.notes else "") + note
    save_recipe(new, recipe.path.parent, copies=exports_of(recipe))
    if audit is not None:
        record_tuning(audit, new.label, recipe.threshold, new.threshold, recipe.min_defect_area_px,
                      new.min_defect_area_px, role=role, note=f"from {recipe.label}")
    return new
