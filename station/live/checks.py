"""Does a recipe fit a source? Checked before live inspection switches to it, and the plain-language
cause and fix of frames that fail or drop -- so a line never runs on with every frame an error.

Qt-free. :func:`recipe_needs` reads only ``recipe.json`` (no model state), so a check is instant.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from station.core.geometry import NATIVE, Geometry, GeometryError
from station.core.recipe import RECIPE_FILE, Recipe, RecipeError, resolve_recipe_dir


@dataclass(frozen=True)
class RecipeNeeds:
    """What a recipe needs of the images it inspects."""

    label: str
    color_mode: str  # "rgb" or "gray"
    roi: tuple[int, int, int, int] | None
    image_shape: tuple[int, int] | None  # (H, W) taught on, after the region of interest
    taught_from: str  # where its samples came from (a folder, a camera URI), "" if unknown
    geometry: dict[str, Any] | None = None  # the working geometry (core.geometry): which sizes it serves

    @classmethod
    def of(cls, recipe: Recipe) -> RecipeNeeds:
        return cls._from_meta(recipe.label, recipe.preprocessing, recipe.validation, recipe.training)

    @classmethod
    def _from_meta(cls, label: str, pre: dict[str, Any], validation: dict[str, Any],
                   training: dict[str, Any]) -> RecipeNeeds:
        roi = pre.get("roi")
        shape = validation.get("image_shape")
        source = training.get("source") or training.get("data") or ""
        return cls(label, str(pre.get("color_mode", "rgb")), tuple(int(v) for v in roi) if roi else None,  # type: ignore[arg-type]
                   (int(shape[0]), int(shape[1])) if shape else None, str(source), pre.get("geometry"))


def recipe_needs(path: str | Path) -> RecipeNeeds:
    """:class:`RecipeNeeds` of the recipe at ``path`` from its ``recipe.json`` alone.

    Raises
    ------
    RecipeError
        If there is no readable recipe there.
    """
    folder = resolve_recipe_dir(path)
    try:
        meta = json.loads((folder / RECIPE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RecipeError(f"{folder / RECIPE_FILE}: unreadable ({exc})") from exc
    m = re.match(r"^v(\d+)$", folder.name)
    label = f"{meta.get('name', folder.parent.name)} v{int(m.group(1))}" if m else folder.name
    return RecipeNeeds._from_meta(label, meta.get("preprocessing") or {}, meta.get("validation") or {},
                                  meta.get("training") or {})


def check_frame(needs: RecipeNeeds, image: np.ndarray) -> list[str]:
    """The reasons why ``image`` (a frame of the source) cannot be inspected with the recipe as taught,
    in plain words; empty when it fits."""
    h, w = image.shape[:2]
    problems: list[str] = []
    if needs.roi:
        x, y, rw, rh = needs.roi
        if x + rw > w or y + rh > h:
            problems.append(f"the recipe inspects the region {rw}x{rh} at ({x}, {y}), which lies outside the "
                            f"{w}x{h} images of this source")
        size = (rh, rw)
    else:
        size = (h, w)
    geometry = _geometry(needs)
    if geometry is not None and not problems:  # the recipe's working geometry decides which sizes it serves
        try:
            geometry.check(size, needs.label)
        except GeometryError as exc:
            problems.append(str(exc))
    elif needs.image_shape and size != needs.image_shape and not problems:
        th, tw = needs.image_shape
        what = "region of interest" if needs.roi else "images"
        problems.append(f"the source delivers {w}x{h} images but {needs.label} was taught on {tw}x{th} {what}")
    if needs.color_mode == "rgb" and image.ndim == 2:
        problems.append(f"{needs.label} was taught on colour images; this source delivers gray ones")
    return problems


def _geometry(needs: RecipeNeeds) -> Geometry | None:
    """The recipe's working geometry when it adapts image sizes; ``None`` for images that go to the
    detector unchanged (recipes taught before the geometry layer), which need the taught size."""
    if not needs.geometry:
        return None
    try:
        geometry = Geometry.from_dict(needs.geometry)
    except GeometryError:
        return None
    return None if geometry.fit == NATIVE else geometry


# --- why frames fail, in plain words --------------------------------------------------------------
_SIZE = re.compile(r"(\d+)x(\d+).*(?:taught|model was|differs from the taught)", re.IGNORECASE)


def explain_failure(error: str, source_uri: str, recipe_label: str) -> tuple[str, str]:
    """``(cause, fix)`` for frames that fail with ``error``, for the operator and the engineer."""
    e = error.lower()
    if "region of interest" in e and "outside" in e:
        return (f"The recipe {recipe_label} inspects a region that lies outside this source's images.",
                "Choose the recipe taught for this camera, or switch back to the source it was taught with.")
    if _SIZE.search(error) or "taught size" in e or "size" in e and "taught" in e:
        return (f"The images of {source_uri} are not the size {recipe_label} was taught on.",
                "Choose the recipe taught for this camera (Recipe), or switch to the source it was taught "
                "with (Source); an engineer can also teach this part again on this camera.")
    if "channel" in e or "colour" in e or "color" in e:
        return (f"The images of {source_uri} have another colour format than {recipe_label} was taught on.",
                "Choose a recipe taught on this camera, or set the camera's pixel format to the taught one.")
    if "memory" in e:
        return ("The computer ran out of memory while inspecting.",
                "Close other programs, or use a lighter recipe (e.g. the variation model or int8).")
    return (f"Frames cannot be inspected with {recipe_label}: {error}",
            "Check the recipe and the camera; Details has the full message.")


def explain_drops(share: float, inspected_fps: float, camera_fps: float | None) -> tuple[str, str]:
    """``(cause, fix)`` when more than a share of frames is dropped."""
    rate = f" ({inspected_fps:.1f} of {camera_fps:.1f} frames/s)" if camera_fps else ""
    return (f"Inspection is slower than the camera: {share:.0%} of the frames were not inspected{rate}.",
            "Lower the camera's frame rate or use a trigger, or use a faster recipe or device; a part "
            "that passes while a frame is dropped is not inspected.")
