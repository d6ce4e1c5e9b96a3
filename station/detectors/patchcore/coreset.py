"""Greedy k-center coreset selection (Roth et al. 2022, section 3.2 and Algorithm 1).

Distances are computed on a sparse random projection of the patch features to ``dim`` (128 in the
paper) dimensions (Johnson-Lindenstrauss: distances are roughly preserved). Each greedy step picks the
patch farthest from all centres chosen so far, then lowers every patch's distance-to-nearest-centre
by its distance to the new centre -- squared distances as ``|x|^2 - 2 x.c + |c|^2`` in float32,
without any ``N x dim`` temporary.

On the CPU most of those updates are skipped, exactly: a patch ``x`` whose nearest centre ``a`` lies
at least ``2 d(x, a)`` from the new centre ``c`` cannot come closer to ``c`` than to ``a``
(triangle inequality), so only the few patches near ``c`` are updated -- the selection is the same
as the brute-force loop's. On a GPU, where one brute-force step costs microseconds, the plain loop
runs there.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from station.core.devices import torch_threads_on_this_thread
from station.core.progress import CancelToken, ProgressCallback, checkpoint, report

CANCEL_EVERY = 32  # greedy steps between cancel checks / progress reports


def sparse_random_projection(n_features: int, n_components: int, seed: int) -> torch.Tensor:
    """A very sparse random projection matrix ``(n_features, n_components)`` (Li, Hastie and Church
    2006): entries ``+-sqrt(1 / (density * n_components))`` with density ``1 / sqrt(n_features)``,
    zero elsewhere; stored dense for fast matrix products."""
    rng = np.random.default_rng(seed)
    density = 1.0 / math.sqrt(n_features)
    mask = rng.random((n_features, n_components)) < density
    signs = rng.integers(0, 2, size=(n_features, n_components)) * 2 - 1
    scale = math.sqrt(1.0 / (density * n_components))
    return torch.from_numpy((mask * signs * scale).astype(np.float32))


def greedy_coreset(
    features_t: torch.Tensor,
    size: int,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    prune: bool | None = None,
) -> torch.Tensor:
    """Indices (in selection order) of ``size`` patches chosen greedily so that each new one is the
    farthest from all chosen so far; the first is drawn at random from ``seed``.

    ``features_t`` are the (projected) patch features *transposed*, ``(d, N)``, on the device the
    loop should run on (a row vector times that matrix streams memory far faster on the CPU than a
    matrix-vector product over ``(N, d)`` rows). They are centred in place. ``prune`` (default: on
    the CPU) skips updates the triangle inequality proves useless.
    """
    n = int(features_t.shape[1])
    if not 0 < size <= n:
        raise ValueError(f"coreset size must be in 1..{n}, got {size}")
    # centred (distances do not change): smaller norms, less cancellation in the expansion
    features_t.sub_(features_t.mean(1, keepdim=True))
    sq_norms = (features_t * features_t).sum(0)
    start = int(np.random.default_rng(seed).integers(n))
    if prune is None:
        prune = features_t.device.type == "cpu"
    if prune:
        # thousands of small, memory-bound steps: with several OpenMP threads each step waits for the
        # others to be scheduled, which on a busy 2-core machine made the bottle coreset 7x slower
        # (32 s instead of 4.6 s). One thread on this thread only: a live inspection keeps its own.
        with torch_threads_on_this_thread(1):
            selected = _greedy_pruned(features_t, sq_norms, size, start, progress, cancel)
    else:
        selected = _greedy_dense(features_t, sq_norms, size, start, progress, cancel)
    report(progress, "selecting coreset", size, size)
    return selected


def _greedy_dense(features_t, sq_norms, size, start, progress, cancel) -> torch.Tensor:
    n = int(features_t.shape[1])
    device = features_t.device
    min_dist = torch.full((n,), float("inf"), dtype=torch.float32, device=device)
    selected = torch.empty(size, dtype=torch.long, device=device)
    idx = torch.tensor(start, device=device)
    for step in range(size):
        selected[step] = idx
        if step == size - 1:
            break
        dist = torch.matmul(features_t[:, idx], features_t)
        dist.mul_(-2.0).add_(sq_norms).add_(sq_norms[idx])
        torch.minimum(min_dist, dist, out=min_dist)
        min_dist[idx] = 0.0  # exact zero despite rounding: a chosen centre is never chosen again
        idx = torch.argmax(min_dist)  # stays on the device: no synchronisation per step
        if step % CANCEL_EVERY == 0:
            checkpoint(cancel)
            report(progress, "selecting coreset", step + 1, size)
    return selected


# Above this share of candidate patches a step is cheaper as one dense pass than as a gather.
DENSE_SHARE = 0.25


def _greedy_pruned(features_t, sq_norms, size, start, progress, cancel) -> torch.Tensor:
    n = int(features_t.shape[1])
    rows = features_t.T.contiguous()  # (N, d): candidate patches are gathered as rows
    centres = torch.empty((size, rows.shape[1]), dtype=torch.float32)
    centre_sq = torch.empty(size, dtype=torch.float32)
    min_dist = torch.full((n,), float("inf"), dtype=torch.float32)  # squared, to the nearest centre
    nearest = torch.zeros(n, dtype=torch.long)  # which centre that is
    selected = torch.empty(size, dtype=torch.long)
    idx = start
    for step in range(size):
        selected[step] = idx
        if step == size - 1:
            break
        c = rows[idx]
        centres[step] = c
        centre_sq[step] = sq_norms[idx]
        if step == 0:
            cand = None
        else:
            # squared distances new centre -> earlier centres, looked up for each patch's nearest one;
            # d(c, a) >= 2 d(x, a)  <=>  d2(c, a) >= 4 d2(x, a): then x cannot get closer (no update)
            cc = (centre_sq[:step] - 2.0 * (centres[:step] @ c)).add_(sq_norms[idx])
            cand = torch.nonzero(cc.index_select(0, nearest) < 4.0 * min_dist).squeeze(1)
        if cand is None or cand.numel() > DENSE_SHARE * n:
            dist = torch.matmul(c, features_t).mul_(-2.0).add_(sq_norms).add_(sq_norms[idx])
            closer = dist < min_dist
            min_dist = torch.where(closer, dist, min_dist)
            nearest = torch.where(closer, step, nearest)
        elif cand.numel():
            dist = (rows.index_select(0, cand) @ c).mul_(-2.0).add_(sq_norms.index_select(0, cand)).add_(sq_norms[idx])
            closer = dist < min_dist.index_select(0, cand)
            upd = cand[closer]
            min_dist[upd] = dist[closer]
            nearest[upd] = step
        min_dist[idx] = 0.0
        idx = int(torch.argmax(min_dist))
        if step % CANCEL_EVERY == 0:
            checkpoint(cancel)
            report(progress, "selecting coreset", step + 1, size)
    return selected


def nearest_in_bank(bank: torch.Tensor, k: int, chunk_rows: int = 4096) -> torch.Tensor:
    """For each bank row, the indices of its ``k`` nearest bank rows, itself first -- the support set
    ``N_b(m*)`` of the paper's image-score reweighting, precomputed once at fit time."""
    m = int(bank.shape[0])
    k = max(1, min(k, m))
    bank = bank - bank.mean(0)
    sq = (bank * bank).sum(1)
    out = torch.empty((m, k), dtype=torch.long, device=bank.device)
    for start in range(0, m, chunk_rows):
        rows = bank[start:start + chunk_rows]
        d2 = sq[start:start + chunk_rows, None] - 2.0 * rows @ bank.T + sq[None, :]
        ar = torch.arange(start, start + rows.shape[0], device=bank.device)
        d2[ar - start, ar] = float("-inf")  # itself first, even with duplicate rows in the bank
        out[start:start + rows.shape[0]] = torch.topk(d2, k, dim=1, largest=False).indices
    return out
