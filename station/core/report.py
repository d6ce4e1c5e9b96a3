"""Writing an evaluation to disk: ``metrics.json``, ``metrics.csv`` (overall and per defect type),
``images.csv`` (one row per image), ROC and PRO curves as PNG, Figure-3 style overlays (JPEG), and the raw
anomaly maps as ``.npy`` so the metrics can be recomputed independently."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from station.core.datasets import Sample
from station.core.evaluation import EvaluationResult
from station.core.images import save_image
from station.core.inspection import InspectionResult
from station.core.overlay import render_overlay

METRIC_COLUMNS = ["n_images", "n_good", "n_defective", "image_roc_auc", "image_roc_auc_map_max",
                  "pixel_roc_auc", "au_pro", "region_overlap", "accuracy_good", "accuracy_defective",
                  "n_gt_regions"]


# Overlays are photographs of parts with a heatmap: JPEG at quality 90 is a fifth of PNG's size with
# no visible loss (bottle's 83 overlays: see docs/benchmarks.md); the raw maps carry the exact values.
OVERLAY_JPEG_QUALITY = 90


def _stem(sample: Sample) -> str:
    return f"{sample.label}_{sample.path.stem}"


def overlay_file(label: str, stem: str) -> str:
    """Where an image's overlay lies in a report folder (relative: the HTML report links it)."""
    return f"overlays/{label}/{stem}.jpg"


class ImageWriter:
    """``on_image`` callback for :func:`~station.core.evaluation.evaluate`: writes each image's overlay
    and raw map as it is scored, so nothing has to be kept or re-read."""

    def __init__(self, out_dir: Path, overlays: bool = True, maps: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.overlays = overlays
        self.maps = maps

    def __call__(self, sample: Sample, image: np.ndarray, result: InspectionResult,
                 mask: np.ndarray | None) -> None:
        if self.overlays:
            shown, regions = result.inspected(image)  # ``mask`` already covers what was inspected
            panel = render_overlay(shown, result.anomaly_map, result.threshold, regions, mask)
            save_image(self.out_dir / overlay_file(sample.label, sample.path.stem), panel, OVERLAY_JPEG_QUALITY)
        if self.maps:
            path = self.out_dir / "maps" / f"{_stem(sample)}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, result.anomaly_map.astype(np.float32))


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def metrics_table(result: EvaluationResult) -> str:
    """A plain-text table of the metrics, overall then per defect type."""
    cols = [("image AUC", "image_roc_auc"), ("pixel AUC", "pixel_roc_auc"), ("AU-PRO", "au_pro"),
            ("region ovl", "region_overlap"), ("acc good", "accuracy_good"),
            ("acc defect", "accuracy_defective"), ("images", "n_images")]
    rows = [["", *[c for c, _ in cols]]]
    for name, m in result.metrics.items():
        rows.append([name, *[_fmt(m.get(k)) for _, k in cols]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def write_report(result: EvaluationResult, out_dir: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write JSON, CSV and plots for ``result`` into ``out_dir``; returns the JSON path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    curves: dict[str, Any] = {"image_roc": {"fpr": result.image_roc[0].tolist(), "tpr": result.image_roc[1].tolist()}}
    if result.pixel is not None:
        curves["pixel_roc"] = {"fpr": result.pixel.fpr.tolist(), "tpr": result.pixel.tpr.tolist()}
        mask = result.pixel.fpr <= result.overall["fpr_limit"] + 1e-9
        curves["pro"] = {"fpr": result.pixel.fpr[mask].tolist(), "pro": result.pixel.pro[mask].tolist()}
    doc = {
        "category": result.category,
        "recipe": result.recipe,
        "threshold": result.threshold,
        "min_defect_area_px": result.min_defect_area_px,
        "metrics": result.metrics,
        "timing": result.timing,
        "problems": [{"path": str(p), "message": m} for p, m in result.problems],
        "images": [{k: v for k, v in vars(r).items()} for r in result.records],
        "curves": curves,
        **(extra or {}),
    }
    json_path = out / "metrics.json"
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, json_path)

    with open(out / "metrics.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["subset", *METRIC_COLUMNS])
        for name, m in result.metrics.items():
            w.writerow([name, *["" if m.get(k) is None else m.get(k) for k in METRIC_COLUMNS]])
    with open(out / "images.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "label", "score", "map_max", "verdict", "correct", "n_regions",
                    "largest_region_px", "mean_region_overlap", "map_file", "path"])
        for r in result.records:
            w.writerow([r.name, r.label, f"{r.score:.6g}", f"{r.map_max:.6g}", r.verdict, int(r.correct),
                        r.n_regions, f"{r.largest_region_px:.1f}",
                        f"{np.mean(r.overlaps):.4f}" if r.overlaps else "",
                        f"maps/{r.label}_{Path(r.path).stem}.npy", r.path])
    plot_curves(result, out)
    return json_path


def plot_curves(result: EvaluationResult, out: Path) -> None:
    """``roc.png`` (image and pixel ROC) and ``pro.png`` (PRO curve up to the FPR limit)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # the object API: no pyplot state, safe off the main thread

    m = result.overall
    fig = Figure(figsize=(6, 5), dpi=110)
    ax = fig.add_subplot()
    if len(result.image_roc[0]):
        ax.plot(result.image_roc[0], result.image_roc[1], label=f"image ROC (AUC {m['image_roc_auc']:.3f})")
    if result.pixel is not None:
        ax.plot(result.pixel.fpr, result.pixel.tpr, label=f"pixel ROC (AUC {m['pixel_roc_auc']:.3f})")
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate", xlim=(0, 1), ylim=(0, 1.01),
           title=f"{result.category}: ROC ({result.recipe})")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "roc.png")

    if result.pixel is not None:
        lim = m["fpr_limit"]
        fig = Figure(figsize=(6, 5), dpi=110)
        ax = fig.add_subplot()
        sel = result.pixel.fpr <= lim
        ax.plot(result.pixel.fpr[sel], result.pixel.pro[sel], label=f"PRO (AU-PRO@{lim:g} {m['au_pro']:.3f})")
        ax.set(xlabel="false-positive rate", ylabel="per-region overlap", xlim=(0, lim), ylim=(0, 1.01),
               title=f"{result.category}: PRO curve ({result.recipe})")
        ax.legend(loc="lower right")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "pro.png")
