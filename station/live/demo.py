"""The embedded demo: teaching the synthetic washer (``synthetic://demo``) into a recipe.

The GUI teaches it on first start and ``station inspect --teach-demo`` on request, so a fresh
installation can show a full teach -> inspect cycle without a camera or a data set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from station.acquisition.synthetic import SyntheticPart
from station.core.progress import CancelToken, ProgressCallback
from station.core.recipe import Recipe, load_recipe, save_recipe, versions

DEMO_SOURCE = "synthetic://demo"
DEMO_DETECTOR = "variation"
TEACH_OFFSET = 100_000  # teaching parts come from another index range than the ones inspected live


def teach_demo(
    part_dir: str | Path,
    detector_kind: str = DEMO_DETECTOR,
    n_train: int = 40,
    n_validation: int = 20,
    seed: int = 0,
    size: int = 256,
    detector_params: dict[str, Any] | None = None,
    min_defect_area_px: float | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Recipe:
    """Teach the demo part from ``n_train`` good parts, estimate the threshold on ``n_validation``
    other good parts, and save the recipe as the next version under ``part_dir``."""
    from station.core.teach import teach

    part = SyntheticPart(seed=seed, size=size)
    images = part.good_images(n_train + n_validation, start=TEACH_OFFSET)
    result = teach("demo", images[:n_train], images[n_train:], detector_kind, detector_params=detector_params,
                   min_defect_area_px=min_defect_area_px, progress=progress, cancel=cancel,
                   training_info={"source": f"{DEMO_SOURCE}?seed={seed}&size={size}",
                                  "first_index": TEACH_OFFSET})
    save_recipe(result.recipe, part_dir)
    return result.recipe


def ensure_demo_recipe(part_dir: str | Path, **kwargs: Any) -> Recipe:
    """The newest demo recipe under ``part_dir``, teaching it first if there is none."""
    if versions(part_dir):
        return load_recipe(part_dir)
    return teach_demo(part_dir, **kwargs)
