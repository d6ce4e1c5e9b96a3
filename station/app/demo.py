"""The embedded default: the synthetic demo part, taught on first start so a new station inspects
something within a minute, without a camera or a data set.

The demo recipe is taught with the variation model on good parts rendered from the same lot the
``synthetic://demo`` source shows (seed 0), but from an index range the live stream does not reach
for days at 30 frames/s, so the station never inspects the parts it was taught on.
"""

from __future__ import annotations

import logging
from pathlib import Path

from station.app.audit import AuditLog
from station.app.sample_pool import SamplePool
from station.core.progress import CancelToken, ProgressCallback, checkpoint, report
from station.core.recipe import RecipeError, load_recipe, save_recipe, versions
from station.detectors.runtime import teach_detector

log = logging.getLogger(__name__)

DEMO_PART = "demo"
DEMO_DETECTOR = "variation"
DEMO_SEED = 0
DEMO_SIZE = 256  # the source's default size
DEMO_FIRST_INDEX = 100_000_000
# The part's light and texture vary from part to part: 40 training parts left 3.4 % of new good parts
# rejected, 120 (with 60 held out) 0.6-1.1 % over 1100 parts, none of 294 defective ones missed, for
# about 1.5 s more teaching on first start (3 s in all on 2 cores).
DEMO_TRAIN = 120
DEMO_VALIDATION = 60
DEMO_PIXEL_SIZE_MM = 0.2  # the washer is 40 mm across, 200 pixels at the default size
DEMO_MIN_AREA_PX = 30.0  # 1.2 mm^2: the smallest demo defects (a pit of ~5 px radius) still count
# The washer sits in a fixture (it moves a pixel or two and turns about a degree) and is rigid: the
# variation model's local optical-flow alignment buys nothing here but costs two thirds of the time
# per frame, and a +-3 degree rotation search is plenty. Same recall and false-NG rate on the demo
# stream, about 3x faster (measured in the window's benchmark, tools/gui_bench.py).
DEMO_PARAMS = {"variation": {"local_alignment": False, "max_rotation_deg": 3.0}}


def find_demo_recipe(models_dir: str | Path) -> Path | None:
    """The newest demo recipe version that loads, or ``None``."""
    for _, folder in reversed(versions(Path(models_dir) / DEMO_PART)):
        try:
            load_recipe(folder)
            return folder
        except RecipeError as exc:
            log.warning("demo recipe %s unusable: %s", folder, exc)
    return None


def teach_demo_recipe(
    models_dir: str | Path,
    detector_kind: str = DEMO_DETECTOR,
    n_train: int = DEMO_TRAIN,
    n_validation: int = DEMO_VALIDATION,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    audit: AuditLog | None = None,
    part: str = DEMO_PART,
) -> Path:
    """Teach the demo part and save it as a new version of ``models_dir/part``; returns the folder."""
    from station.acquisition.synthetic import SyntheticPart

    log.info("teaching the demo part with %s into %s", detector_kind, Path(models_dir) / part)
    synthetic = SyntheticPart(seed=DEMO_SEED, size=DEMO_SIZE)
    images = []
    total = n_train + n_validation
    for i in range(total):
        checkpoint(cancel)
        images.append(synthetic.render(DEMO_FIRST_INDEX + i).image)
        report(progress, "rendering demo parts", i + 1, total)
    result = teach_detector(
        part, images[:n_train], images[n_train:], detector_kind, DEMO_PARAMS.get(detector_kind),
        min_defect_area_px=DEMO_MIN_AREA_PX, pixel_size_mm=DEMO_PIXEL_SIZE_MM,
        training_info={"source": f"synthetic://demo?seed={DEMO_SEED}&size={DEMO_SIZE}",
                       "first_index": DEMO_FIRST_INDEX},
        progress=progress, cancel=cancel)
    checkpoint(cancel)  # a cancel during the last step must not save
    result.recipe.notes = "The synthetic demo part, taught automatically on first start."
    folder = save_recipe(result.recipe, Path(models_dir) / part)
    try:  # so the demo can be re-taught from the line like a taught part (station.app.reteach)
        SamplePool(folder.parent).record_rendered(DEMO_SEED, DEMO_SIZE, range(DEMO_FIRST_INDEX, DEMO_FIRST_INDEX + total))
    except (OSError, ValueError) as exc:
        log.warning("the demo part's samples were not recorded for re-teaching: %s", exc)
    if audit is not None:
        audit.record("recipe.created", result.recipe.label, None, str(folder), role="system",
                     note="demo part taught on first start", threshold=result.recipe.threshold,
                     min_defect_area_px=result.recipe.min_defect_area_px)
    log.info("demo recipe taught: %s (threshold %.4g)", folder, result.recipe.threshold)
    return folder


def ensure_demo_recipe(
    models_dir: str | Path,
    detector_kind: str = DEMO_DETECTOR,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    audit: AuditLog | None = None,
) -> Path:
    """The demo recipe's folder, teaching it first if there is none (or none that loads)."""
    found = find_demo_recipe(models_dir)
    if found is not None:
        return found
    return teach_demo_recipe(models_dir, detector_kind, progress=progress, cancel=cancel, audit=audit)
