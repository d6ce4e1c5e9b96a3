"""The MVTec AD paper's evaluation metrics, following the official evaluation code.

- image ROC AUC from one score per image;
- pixel ROC AUC pooled over all pixels of all test images of a category;
- the PRO curve and AU-PRO up to a false-positive rate (default 0.3), normalised to [0, 1]:
  ground-truth regions are the 8-connected components of each mask, each region counts equally,
  the false-positive rate runs over all defect-free pixels of all images;
- at a fixed threshold: the per-region overlap and the classification accuracy on good and on
  defective images (Tables 2 and 3 of the paper).

Ties are handled as the official code does: curve points are only kept where the score changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

EIGHT_CONNECTED = np.ones((3, 3), dtype=int)


def trapezoid(x: np.ndarray, y: np.ndarray, x_max: float | None = None) -> float:
    """Area under the piecewise-linear curve ``(x, y)`` (``x`` ascending) from ``x[0]`` to ``x_max``,
    interpolating ``y`` at ``x_max`` -- as the official MVTec evaluation code does."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    correction = 0.0
    if x_max is not None:
        if x_max not in x:
            ins = int(np.searchsorted(x, x_max))
            if 0 < ins < len(x):
                y_interp = y[ins - 1] + (y[ins] - y[ins - 1]) * (x_max - x[ins - 1]) / (x[ins] - x[ins - 1])
                correction = 0.5 * (y_interp + y[ins - 1]) * (x_max - x[ins - 1])
        mask = x <= x_max
        x, y = x[mask], y[mask]
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * (x[1:] - x[:-1])) + correction)


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` for ``labels`` True = anomalous; a point per distinct score, highest
    score first, starting at (0, 0)."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC needs both anomalous and anomaly-free samples")
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    lab = labels[order]
    tps = np.cumsum(lab, dtype=np.float64)
    fps = np.cumsum(~lab, dtype=np.float64)
    keep = np.append(np.diff(s) != 0, True)
    fpr = np.concatenate(([0.0], fps[keep] / n_neg))
    tpr = np.concatenate(([0.0], tps[keep] / n_pos))
    thr = np.concatenate(([np.inf], s[keep]))
    return fpr, tpr, thr


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    fpr, tpr, _ = roc_curve(scores, labels)
    return trapezoid(fpr, tpr)


@dataclass
class PixelCurves:
    """Pooled pixel-level curves of one category, from one sort of all scores."""

    fpr: np.ndarray  # over all defect-free pixels
    tpr: np.ndarray  # over all defect pixels (pixel ROC)
    pro: np.ndarray  # mean overlap over ground-truth regions (PRO curve)
    thresholds: np.ndarray
    n_regions: int

    def pixel_roc_auc(self) -> float:
        return trapezoid(self.fpr, self.tpr)

    def au_pro(self, fpr_limit: float = 0.3) -> float:
        """Normalised area under the PRO curve up to ``fpr_limit``."""
        return trapezoid(self.fpr, self.pro, x_max=fpr_limit) / fpr_limit

    def downsampled(self, max_points: int = 2000) -> PixelCurves:
        """A light copy for plots and JSON (every n-th point plus the ends)."""
        n = len(self.fpr)
        if n <= max_points:
            return self
        idx = np.unique(np.concatenate((np.linspace(0, n - 1, max_points).astype(int), [0, n - 1])))
        return PixelCurves(self.fpr[idx], self.tpr[idx], self.pro[idx], self.thresholds[idx], self.n_regions)


def pixel_curves(anomaly_maps: Sequence[np.ndarray], ground_truth: Sequence[np.ndarray]) -> PixelCurves:
    """Pixel ROC and PRO curves pooled over all images (maps and masks of equal shapes per image).

    Each defect pixel carries the weight ``1 / (size of its region * number of regions)`` for the PRO
    curve; each defect-free pixel ``1 / number of defect-free pixels`` for the false-positive rate.
    """
    if len(anomaly_maps) != len(ground_truth) or len(anomaly_maps) == 0:
        raise ValueError("need the same, non-zero number of anomaly maps and ground-truth masks")
    scores, region_weights, is_defect = [], [], []
    n_regions = 0
    for amap, gt in zip(anomaly_maps, ground_truth, strict=True):
        if amap.shape != gt.shape:
            raise ValueError(f"anomaly map {amap.shape} and ground truth {gt.shape} differ in shape")
        labeled, n = ndimage.label(gt, structure=EIGHT_CONNECTED)
        n_regions += n
        w = np.zeros(gt.shape, dtype=np.float64)
        if n:
            sizes = np.bincount(labeled.ravel(), minlength=n + 1).astype(np.float64)
            inv = np.zeros(n + 1)
            inv[1:] = 1.0 / sizes[1:]
            w = inv[labeled]
        scores.append(np.asarray(amap, dtype=np.float32).ravel())
        region_weights.append(w.ravel())
        is_defect.append(np.asarray(gt, dtype=bool).ravel())
    s = np.concatenate(scores)
    d = np.concatenate(is_defect)
    w = np.concatenate(region_weights)
    del scores, region_weights, is_defect
    n_def = int(d.sum())
    n_ok = d.size - n_def
    if n_ok == 0:
        raise ValueError("no defect-free pixels: the false-positive rate is undefined")
    # One argsort of every pixel is slow (tens of seconds for a category at full resolution). The
    # defect-free pixels need no weights, so they take numpy's fast SIMD sort; only the few defect
    # pixels are arg-sorted; a stable arg-sort of the two sorted runs then merges them in linear time.
    ok_desc = np.sort(s[~d])[::-1]
    d_idx = np.flatnonzero(d)
    d_order = d_idx[np.argsort(-s[d_idx], kind="stable")]
    s = np.concatenate((ok_desc, s[d_order]))
    w = np.concatenate((np.zeros(n_ok), w[d_order]))
    d = np.concatenate((np.zeros(n_ok, bool), np.ones(n_def, bool)))
    del ok_desc, d_idx, d_order
    order = np.argsort(-s, kind="stable")
    s = s[order]
    d = d[order]
    w = w[order]
    del order
    keep = np.append(np.diff(s) != 0, True)
    # A point per distinct score: for a category at full resolution nearly every pixel (bottle: 67 M),
    # so each curve is 0.5 GB. They are written straight into their final arrays (the leading 0 or
    # inf in place) through one reused cumulative-sum buffer, and each input is dropped once used:
    # the same values as before, with a lower peak (bottle: 4.3 -> 3.5 GB, docs/benchmarks.md).
    m = int(keep.sum())

    def curve(first: float) -> np.ndarray:
        out = np.empty(m + 1)
        out[0] = first
        return out

    thr = curve(np.inf)
    thr[1:] = s[keep]
    del s
    buf = np.empty(d.size)
    fpr = curve(0.0)
    np.compress(keep, np.cumsum(~d, dtype=np.float64, out=buf), out=fpr[1:])
    fpr[1:] /= n_ok
    tpr = curve(0.0)
    if n_def:
        np.compress(keep, np.cumsum(d, dtype=np.float64, out=buf), out=tpr[1:])
        tpr[1:] /= n_def
    else:
        tpr[1:] = 0.0
    del d, buf
    pro = curve(0.0)
    if n_regions:
        np.compress(keep, np.cumsum(w, out=w), out=pro[1:])
        pro[1:] /= n_regions
    else:
        pro[1:] = 0.0
    del w, keep
    for c in (fpr, tpr, pro):
        np.clip(c, 0, 1, out=c)
    return PixelCurves(fpr=fpr, tpr=tpr, pro=pro, thresholds=thr, n_regions=n_regions)


def region_overlaps(prediction: np.ndarray, ground_truth: np.ndarray) -> list[float]:
    """Per ground-truth region (8-connected): the fraction of its pixels that ``prediction`` covers."""
    labeled, n = ndimage.label(ground_truth, structure=EIGHT_CONNECTED)
    if n == 0:
        return []
    sizes = np.bincount(labeled.ravel(), minlength=n + 1)
    hits = np.bincount(labeled.ravel(), weights=np.asarray(prediction, dtype=bool).ravel(), minlength=n + 1)
    return (hits[1:] / sizes[1:]).tolist()


def classification_accuracy(is_anomalous: np.ndarray, predicted_ng: np.ndarray) -> tuple[float, float]:
    """``(accuracy on good images, accuracy on defective images)``; NaN where there are none."""
    a = np.asarray(is_anomalous, dtype=bool)
    p = np.asarray(predicted_ng, dtype=bool)
    good = float(np.mean(~p[~a])) if (~a).any() else float("nan")
    bad = float(np.mean(p[a])) if a.any() else float("nan")
    return good, bad
