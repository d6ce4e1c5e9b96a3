"""Scoring an MVTec AD category with a recipe and computing the paper's metrics.

:func:`evaluate` runs the inspector over the test images (skipping unreadable files, keeping images
without a ground-truth mask for the image-level metrics only) and returns an
:class:`EvaluationResult`; :mod:`station.core.report` writes it to disk (JSON, CSV, plots, overlays,
the raw anomaly maps for independent re-computation).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from station.core.datasets import MVTecCategory, Problems, Sample, iter_images, load_ground_truth
from station.core.geometry import GeometryError
from station.core.inspection import InspectionResult, Inspector
from station.core.metrics import (
    PixelCurves,
    classification_accuracy,
    pixel_curves,
    region_overlaps,
    roc_auc,
    roc_curve,
)
from station.core.progress import CancelToken, ProgressCallback, checkpoint, report
from station.core.regions import defect_mask

FPR_LIMIT = 0.3


@dataclass
class ImageRecord:
    """The outcome for one test image."""

    name: str
    path: str
    label: str
    is_anomalous: bool
    score: float
    map_max: float
    verdict: str
    n_regions: int
    largest_region_px: float
    has_ground_truth: bool
    overlaps: list[float] = field(default_factory=list)  # per ground-truth region, at the threshold

    @property
    def correct(self) -> bool:
        return (self.verdict == "NG") == self.is_anomalous


@dataclass
class EvaluationResult:
    category: str
    recipe: str
    threshold: float
    min_defect_area_px: float
    records: list[ImageRecord]
    metrics: dict[str, Any]  # "overall" and one entry per defect type
    image_roc: tuple[np.ndarray, np.ndarray]
    pixel: PixelCurves | None
    problems: Problems
    timing: dict[str, float]
    maps: Sequence[np.ndarray] = field(default_factory=list, repr=False)  # a list, or an ArraySpool (review)
    masks: Sequence[np.ndarray | None] = field(default_factory=list, repr=False)

    @property
    def overall(self) -> dict[str, Any]:
        return self.metrics["overall"]


ImageCallback = Callable[[Sample, np.ndarray, InspectionResult, "np.ndarray | None"], None]


def evaluate(
    inspector: Inspector,
    category: MVTecCategory,
    batch_size: int = 4,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    on_image: ImageCallback | None = None,
    fpr_limit: float = FPR_LIMIT,
) -> EvaluationResult:
    """Inspect every test image of ``category`` and compute all metrics.

    ``on_image(sample, image, result, mask)`` is called for each image as it is scored (``mask``: the
    ground truth over what was inspected, i.e. cropped to a region of interest; the report
    writer uses it for overlays, the GUI for live updates). Images of any size are scored at their
    own resolution (the recipe's geometry maps the maps back), so the pixel metrics compare against
    the masks as they are; an image of a size the recipe cannot serve is left out and reported.
    """
    problems = category.problems
    samples = category.test()
    records: list[ImageRecord] = []
    maps: list[np.ndarray] = []
    masks: list[np.ndarray | None] = []
    t0 = time.perf_counter()
    batch: list[tuple[Sample, np.ndarray]] = []

    def flush() -> None:
        try:
            results = inspector.inspect_batch([im for _, im in batch])
        except GeometryError as exc:  # a size this recipe cannot serve: those images are left out, said why
            for sample, _ in batch:
                problems.add(sample.path, f"not inspected: {exc}")
            batch.clear()
            return
        for (sample, image), res in zip(batch, results, strict=True):
            amap = res.anomaly_map
            # with a region of interest the map covers only it: so do the pixel metrics
            gt = load_ground_truth(sample, image.shape[:2], problems)
            if gt is not None:
                gt = res.inspected(gt)[0]
            overlaps: list[float] = []
            if gt is not None and sample.is_anomalous:
                overlaps = region_overlaps(defect_mask(amap, res.threshold, res.min_defect_area_px), gt)
            records.append(ImageRecord(
                name=sample.name, path=str(sample.path), label=sample.label, is_anomalous=sample.is_anomalous,
                score=res.score, map_max=res.map_max, verdict=res.verdict.value, n_regions=len(res.regions),
                largest_region_px=res.regions[0].area_px if res.regions else 0.0,
                has_ground_truth=gt is not None, overlaps=overlaps))
            maps.append(amap)
            masks.append(gt)
            if on_image is not None:
                on_image(sample, image, res, gt)
        report(progress, "evaluating", len(records), len(samples))
        batch.clear()

    # iter_images skips unreadable files; shapes may differ between images, so batches break there
    for sample, image in iter_images(samples, "keep", problems):
        checkpoint(cancel)
        if batch and batch[0][1].shape != image.shape:
            flush()
        batch.append((sample, image))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    if not records:
        raise ValueError(f"{category.root}: no readable test images")
    t_score = time.perf_counter() - t0

    checkpoint(cancel)
    report(progress, "metrics", 0, 1)
    t1 = time.perf_counter()
    metrics, image_curve, pix = compute_metrics(records, maps, masks, fpr_limit)
    t_metrics = time.perf_counter() - t1
    report(progress, "metrics", 1, 1)
    return EvaluationResult(
        category=category.name, recipe=inspector.recipe.label, threshold=inspector.threshold,
        min_defect_area_px=inspector.min_defect_area_px, records=records, metrics=metrics,
        image_roc=image_curve, pixel=pix, problems=problems,
        timing={"scoring_s": round(t_score, 3), "metrics_s": round(t_metrics, 3),
                "ms_per_image": round(1000 * t_score / len(records), 2)},
        maps=maps, masks=masks)


def compute_metrics(
    records: list[ImageRecord],
    maps: list[np.ndarray],
    masks: list[np.ndarray | None],
    fpr_limit: float = FPR_LIMIT,
) -> tuple[dict[str, Any], tuple[np.ndarray, np.ndarray], PixelCurves | None]:
    """All metrics, overall and per defect type (each type against all good images)."""
    labels = sorted({r.label for r in records if r.is_anomalous})
    out: dict[str, Any] = {}
    overall, image_curve, pix = _metrics_for(records, maps, masks, fpr_limit, keep_curves=True)
    out["overall"] = overall
    for label in labels:
        idx = [i for i, r in enumerate(records) if r.label == label or not r.is_anomalous]
        out[label], _, _ = _metrics_for([records[i] for i in idx], [maps[i] for i in idx],
                                        [masks[i] for i in idx], fpr_limit, keep_curves=False)
    return out, image_curve, pix


def _metrics_for(records, maps, masks, fpr_limit, keep_curves):
    is_anom = np.array([r.is_anomalous for r in records])
    scores = np.array([r.score for r in records])
    map_max = np.array([r.map_max for r in records])
    predicted_ng = np.array([r.verdict == "NG" for r in records])
    good_acc, bad_acc = classification_accuracy(is_anom, predicted_ng)
    overlaps = [o for r in records for o in r.overlaps]
    m: dict[str, Any] = {
        "n_images": len(records),
        "n_good": int((~is_anom).sum()),
        "n_defective": int(is_anom.sum()),
        "image_roc_auc": None,
        "image_roc_auc_map_max": None,
        "pixel_roc_auc": None,
        "au_pro": None,
        "fpr_limit": fpr_limit,
        "region_overlap": float(np.mean(overlaps)) if overlaps else None,
        "n_gt_regions": len(overlaps),
        "accuracy_good": None if np.isnan(good_acc) else good_acc,
        "accuracy_defective": None if np.isnan(bad_acc) else bad_acc,
    }
    image_curve = (np.zeros(0), np.zeros(0))
    if is_anom.any() and (~is_anom).any():
        m["image_roc_auc"] = roc_auc(scores, is_anom)
        m["image_roc_auc_map_max"] = roc_auc(map_max, is_anom)
        if keep_curves:
            fpr, tpr, _ = roc_curve(scores, is_anom)
            image_curve = (fpr, tpr)
    with_gt = [i for i, mk in enumerate(masks) if mk is not None]
    m["n_images_pixel_metrics"] = len(with_gt)
    pix = None
    if with_gt and any(masks[i].any() for i in with_gt):
        pix = pixel_curves([maps[i] for i in with_gt], [masks[i] for i in with_gt])
        m["pixel_roc_auc"] = pix.pixel_roc_auc()
        m["au_pro"] = pix.au_pro(fpr_limit)
        if keep_curves:
            pix = pix.downsampled(4000)
        else:
            pix = None
    return m, image_curve, pix
