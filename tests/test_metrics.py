"""Metrics against hand-computed cases and an independent rank-based computation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata

from station.core.metrics import (
    classification_accuracy,
    pixel_curves,
    region_overlaps,
    roc_auc,
    roc_curve,
    trapezoid,
)


def mann_whitney_auc(scores, labels):
    """AUC as the probability that a random defect scores above a random good (ties count 1/2)."""
    scores, labels = np.asarray(scores, float).ravel(), np.asarray(labels, bool).ravel()
    ranks = rankdata(scores)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    return (ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def test_roc_auc_hand_computed():
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert roc_auc([1, 1, 0], [1, 0, 0]) == pytest.approx(0.75)  # one tie counts one half
    assert roc_auc([3, 2, 1], [1, 1, 0]) == pytest.approx(1.0)
    assert roc_auc([1, 2, 3], [1, 1, 0]) == pytest.approx(0.0)


def test_roc_curve_points_and_errors():
    fpr, tpr, thr = roc_curve([0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])
    assert thr[0] == np.inf
    with pytest.raises(ValueError, match="both"):
        roc_curve([1, 2], [1, 1])


def test_roc_auc_matches_rank_statistic(rng):
    scores = np.round(rng.normal(size=500), 1)  # many ties
    labels = rng.random(500) < 0.3
    scores[labels] += 0.5
    assert roc_auc(scores, labels) == pytest.approx(mann_whitney_auc(scores, labels), abs=1e-12)


def test_trapezoid_interpolates_at_x_max():
    assert trapezoid([0, 0.5, 1], [0, 1, 1]) == pytest.approx(0.75)
    assert trapezoid([0, 0.5, 1], [0, 1, 1], x_max=0.75) == pytest.approx(0.5)
    assert trapezoid([0, 0.5, 1], [0, 1, 1], x_max=0.5) == pytest.approx(0.25)


def hand_case():
    maps = [np.array([[0.9, 0.2, 0.5, 0.1]]), np.array([[0.3, 0.4, 0.0, 0.6]])]
    gts = [np.array([[1, 1, 0, 0]], bool), np.array([[0, 0, 0, 1]], bool)]
    return maps, gts


def test_pixel_roc_and_pro_hand_computed():
    # Sorted descending: .9 (def, region A, w=1/2), .6 (def, region B, w=1), .5 ok, .4 ok, .3 ok,
    # .2 (def, region A), .1 ok, .0 ok. Five ok pixels, two regions, three defect pixels.
    curves = pixel_curves(*hand_case())
    assert curves.n_regions == 2
    np.testing.assert_allclose(curves.fpr, [0, 0, 0, .2, .4, .6, .6, .8, 1])
    np.testing.assert_allclose(curves.pro, [0, .25, .75, .75, .75, .75, 1, 1, 1])
    np.testing.assert_allclose(curves.tpr, [0, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3, 1, 1, 1])
    assert curves.pixel_roc_auc() == pytest.approx(0.8)  # 12 of 15 (defect, ok) pairs ordered right
    assert curves.au_pro(0.3) == pytest.approx(0.75)  # flat at 0.75 from fpr 0 to 0.3
    assert curves.au_pro(1.0) == pytest.approx(0.6 * 0.75 + 0.4 * 1.0)


def test_pro_weights_regions_equally_regardless_of_size():
    gt = np.zeros((10, 10), bool)
    gt[0:6, 0:6] = True  # a big region, found
    gt[9, 9] = True  # a one-pixel region, missed
    amap = np.where(gt, 1.0, 0.0)
    amap[9, 9] = -1.0  # the small region scores below every ok pixel
    curves = pixel_curves([amap], [gt])
    # at fpr 0 the big region is fully covered and the small one not: PRO 0.5
    assert curves.pro[np.searchsorted(curves.fpr, 0, side="right") - 1] == pytest.approx(0.5)
    assert curves.au_pro(0.3) == pytest.approx(0.5)


def test_pixel_auc_matches_rank_statistic_on_random_maps(rng):
    maps, gts = [], []
    for _ in range(5):
        gt = np.zeros((32, 32), bool)
        y, x = rng.integers(0, 24, 2)
        gt[y:y + 6, x:x + 8] = True
        m = rng.normal(size=(32, 32)).astype(np.float32) + 1.2 * gt
        maps.append(m)
        gts.append(gt)
    curves = pixel_curves(maps, gts)
    expected = mann_whitney_auc(np.concatenate([m.ravel() for m in maps]), np.concatenate([g.ravel() for g in gts]))
    assert curves.pixel_roc_auc() == pytest.approx(expected, abs=1e-9)


def test_pixel_curves_eight_connectivity_counts_diagonal_as_one_region():
    gt = np.zeros((4, 4), bool)
    gt[0, 0] = gt[1, 1] = True
    assert pixel_curves([np.zeros((4, 4))], [gt]).n_regions == 1


def test_pixel_curves_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        pixel_curves([np.zeros((4, 4))], [np.zeros((4, 5), bool)])


def test_region_overlaps():
    gt = np.zeros((6, 6), bool)
    gt[0:2, 0:2] = True  # 4 px
    gt[4:6, 4:6] = True  # 4 px
    pred = np.zeros_like(gt)
    pred[0, 0:2] = True
    assert region_overlaps(pred, gt) == [0.5, 0.0]
    assert region_overlaps(pred, np.zeros_like(gt)) == []


def test_classification_accuracy():
    good, bad = classification_accuracy([0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 0])
    assert good == pytest.approx(0.75)
    assert bad == pytest.approx(0.5)
    good, bad = classification_accuracy([0, 0], [0, 1])
    assert np.isnan(bad)
