"""Scoring a data set for the review mode: an MVTec AD category (with ground truth and metrics) or
any folder of images (verdicts and scores only), with a saved recipe or one taught first from the
category's ``train/good``. Qt-free; the window runs :func:`run_review` on a worker."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from station.app.audit import AuditLog
from station.core.datasets import (
    DatasetError,
    ImageFolder,
    MVTecCategory,
    Problems,
    Sample,
    iter_images,
    open_dataset,
    split_validation,
)
from station.core.detectability import DetectabilityError, DetectabilityTable, load_detectability
from station.core.evaluation import EvaluationResult, ImageCallback, evaluate
from station.core.images import load_image
from station.core.inspection import InspectionResult
from station.core.progress import CancelToken, ProgressCallback, checkpoint
from station.core.recipe import Recipe, load_recipe, save_recipe
from station.core.report import ImageWriter, overlay_file, write_report
from station.core.report_html import write_html_report
from station.core.spool import spooled
from station.detectors.runtime import load_inspector, teach_detector

log = logging.getLogger(__name__)


class SubsetCategory:
    """An MVTec category showing at most ``per_type`` test images of each defect type (and of the good
    ones): a quick look at a large category. Behaves as the category for :func:`evaluate`."""

    def __init__(self, category: MVTecCategory, per_type: int) -> None:
        self.category = category
        self.per_type = int(per_type)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.category, name)

    def test(self) -> list[Sample]:
        out: list[Sample] = []
        counts: dict[str, int] = {}
        for s in self.category.test():
            if counts.get(s.label, 0) < self.per_type:
                out.append(s)
                counts[s.label] = counts.get(s.label, 0) + 1
        return out


class UnlabelledFolder:
    """Any folder of images scored like a category; without labels every image counts as "good", so
    only verdicts and scores mean something (the review shows no metrics for it)."""

    def __init__(self, folder: ImageFolder, limit: int = 0) -> None:
        self.folder = folder
        self.limit = int(limit)
        self.problems = Problems()
        self.root = folder.root
        self.name = folder.name

    def test(self) -> list[Sample]:
        samples = self.folder.samples()
        return samples[: self.limit] if self.limit else samples


@dataclass
class ReviewRequest:
    data: Path
    recipe_path: Path | None = None  # None: teach from the category's train/good first
    detector_kind: str = "variation"  # for teaching first
    models_dir: Path | None = None  # where a recipe taught first is saved
    max_per_type: int = 0  # 0: all test images
    max_train: int = 0  # 0: all of train/good
    batch_size: int = 4
    device: str | None = None


@dataclass
class ReviewOutcome:
    result: EvaluationResult
    recipe: Recipe
    labelled: bool  # False for a plain folder: no ground truth, no metrics
    data: Path
    taught: Path | None = None  # the recipe folder taught first, if any
    samples: list[Sample] = field(default_factory=list)
    detectability: DetectabilityTable | None = None  # stored with the recipe (station eval --synthetic, wizard)
    detectability_note: str = ""  # why there is none, or what is wrong with the stored one


def teach_from_category(category: MVTecCategory, kind: str, models_dir: Path, max_train: int = 0,
                        progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
                        audit: AuditLog | None = None, device: str | None = "auto") -> Path:
    """Teach ``kind`` on the category's ``train/good`` (10 % held out) and save it under
    ``models_dir/<category>``; returns the version folder."""
    samples = category.train_good()
    if max_train:
        samples = samples[:max_train]
    train_s, val_s = split_validation(samples, 0.1, seed=0)
    if not val_s:
        raise DatasetError(f"{category.root}: need at least 2 good training images")
    problems = Problems()
    train = [im for _, im in iter_images(train_s, "keep", problems)]
    checkpoint(cancel)
    val = [im for _, im in iter_images(val_s, "keep", problems)]
    result = teach_detector(category.name, train, val, kind, device=device,
                            training_info={"data": str(category.root), "validation_seed": 0,
                                           "skipped": [str(p) for p, _ in problems]},
                            progress=progress, cancel=cancel)
    checkpoint(cancel)
    folder = save_recipe(result.recipe, models_dir / category.name)
    if audit is not None:
        audit.record("recipe.created", result.recipe.label, None, str(folder), role="engineer",
                     note=f"taught in review from {category.root}/train/good ({len(train)} images)",
                     threshold=result.recipe.threshold, min_defect_area_px=result.recipe.min_defect_area_px)
    return folder


def run_review(request: ReviewRequest, progress: ProgressCallback | None = None,
               cancel: CancelToken | None = None, on_image: ImageCallback | None = None,
               audit: AuditLog | None = None) -> ReviewOutcome:
    """Open the data, teach first if asked, score every (or a few per type) test image."""
    dataset = open_dataset(request.data)
    labelled = isinstance(dataset, MVTecCategory)
    taught = None
    recipe_path = request.recipe_path
    if recipe_path is None:
        if not labelled:
            raise DatasetError(f"{request.data}: teaching first needs an MVTec AD category (train/good); "
                               "choose a recipe for a plain folder")
        if request.models_dir is None:
            raise ValueError("a models folder is needed to save the recipe taught first")
        taught = teach_from_category(dataset, request.detector_kind, request.models_dir, request.max_train,
                                     progress, cancel, audit, device=request.device)
        recipe_path = taught
    recipe = load_recipe(recipe_path)
    inspector = load_inspector(recipe, device=request.device)
    if labelled:
        category = SubsetCategory(dataset, request.max_per_type) if request.max_per_type else dataset
    else:
        category = UnlabelledFolder(dataset, request.max_per_type)
    samples = category.test()
    result = evaluate(inspector, category, batch_size=request.batch_size, progress=progress, cancel=cancel,
                      on_image=on_image)
    # the review keeps every map and mask while its results are on screen: in a temporary file, not in
    # memory (bottle: 340 MB), read back one at a time for the detail view and the report
    result.maps, result.masks = spooled(result.maps), spooled(result.masks)
    try:
        table, note = load_detectability(recipe.path), ""
    except DetectabilityError as exc:
        table, note = None, str(exc)
    if table is None and not note:
        note = (f"not measured for {recipe.label}: station eval --synthetic {recipe.path} (or Measure on the "
                "teach-in wizard's threshold page)")
    return ReviewOutcome(result, recipe, labelled, Path(request.data), taught, samples, table, note)


def inspection_of(outcome: ReviewOutcome, index: int) -> tuple[np.ndarray, InspectionResult, np.ndarray | None]:
    """The image, its inspection result and ground truth for record ``index`` (re-read from disk;
    regions recomputed from the stored map at the evaluation's threshold), all in the image's
    coordinates: with a region of interest the map covers that part, and the regions and ground
    truth (stored cropped to it, as the metrics use it) are placed where they lie in the image."""
    res = outcome.result
    rec = res.records[index]
    image = load_image(rec.path, "rgb")
    inspection = InspectionResult.from_map(res.maps[index], rec.score, res.threshold, res.min_defect_area_px,
                                           outcome.recipe.preprocessing.get("roi"))
    mask = res.masks[index]
    return image, inspection, None if mask is None else inspection.in_image(mask, image.shape)


def export_report(outcome: ReviewOutcome, out_dir: str | Path, progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None, raw_maps: bool = False) -> Path:
    """The report of a review in ``out_dir``: ``report.html`` to read (:mod:`station.core.report_html`),
    ``metrics.json``, CSVs and ROC/PRO plots (:func:`write_report`), a Figure-3 overlay per image
    (:class:`ImageWriter`, the same files as ``station eval``) and, with ``raw_maps``, every anomaly map
    in one compressed ``maps.npz`` (they are most of a report's size). Returns the HTML path."""
    from station.core.progress import report

    out = Path(out_dir)
    writer = ImageWriter(out, maps=False)
    records = outcome.result.records
    overlays: dict[int, str] = {}
    for i, rec in enumerate(records):
        checkpoint(cancel)
        try:
            image, inspection, mask = inspection_of(outcome, i)
        except Exception as exc:  # an image deleted since scoring: the report goes on without it
            log.warning("overlay for %s skipped: %s", rec.path, exc)
            continue
        sample = Sample(Path(rec.path), rec.label)
        # the writer takes the ground truth over what was inspected, as evaluate() hands it over
        writer(sample, image, inspection, None if mask is None else inspection.inspected(mask)[0])
        overlays[id(rec)] = overlay_file(rec.label, sample.path.stem)
        report(progress, "writing overlays", i + 1, len(records))
    if raw_maps:
        report(progress, "compressing the raw maps", 0, 1)
        checkpoint(cancel)
        np.savez_compressed(out / "maps.npz", **{f"{r.label}_{Path(r.path).stem}": m.astype(np.float32)
                                                   for r, m in zip(records, outcome.result.maps, strict=True)})
    extra = {"data": str(outcome.data), "recipe_path": str(outcome.recipe.path), "labelled": outcome.labelled}
    write_report(outcome.result, out, extra=extra)
    return write_html_report(outcome.result, out, lambda rec: overlays.get(id(rec)), extra, outcome.labelled,
                             detectability=outcome.detectability)
