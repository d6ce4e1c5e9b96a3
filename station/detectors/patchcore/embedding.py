"""Locally aware patch features (Roth et al. 2022, section 3.1) from ``layer2`` and ``layer3``.

Two layouts:

``"paper"`` (default)
    As the authors' code (amazon-science/patchcore-inspection): each layer's 3x3 neighbourhood
    (zero padded) is unfolded into a ``C*9`` vector and adaptive-average-pooled to 1024 values
    ("pre-projection"); the two layers' vectors are stacked and pooled again to the final dimension
    (1024 by default); ``layer3`` is bilinearly upsampled to ``layer2``'s grid. Both poolings are fixed
    linear maps, and the composite map from one layer's 3x3 neighbourhood to the output is a
    convolution whose weights are computed once here -- usually a cheap grouped one (for
    WideResNet-50-2 and 1024 dimensions: a centre-weighted 3x3 mean per ``layer2`` channel and a 3x3
    mean over pairs of ``layer3`` channels). Bilinear upsampling commutes with the per-pixel channel
    map, so ``layer3`` is reduced on its own, smaller grid before it is upsampled.
``"concat"``
    As anomalib 2.x: 3x3 average pooling of each layer, ``layer3`` upsampled, the channels
    concatenated (512 + 1024 = 1536 dimensions for WideResNet-50-2), no projection.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import sparse
from torch import nn

LAYOUTS = ("paper", "concat")
PRE_PROJECTION_DIM = 1024  # the reference code's default "pretrain_embed_dimension"


def adaptive_pool_matrix(n_in: int, n_out: int) -> sparse.csr_matrix:
    """``(n_out, n_in)`` matrix of ``torch.nn.functional.adaptive_avg_pool1d`` (same windows)."""
    rows, cols, vals = [], [], []
    for i in range(n_out):
        start = (i * n_in) // n_out
        end = -((-(i + 1) * n_in) // n_out)  # ceil
        rows.extend([i] * (end - start))
        cols.extend(range(start, end))
        vals.extend([1.0 / (end - start)] * (end - start))
    return sparse.csr_matrix((vals, (rows, cols)), shape=(n_out, n_in), dtype=np.float64)


def paper_projection(channels: tuple[int, ...], dim: int, pre_dim: int = PRE_PROJECTION_DIM) -> list[sparse.csr_matrix]:
    """Per layer, the ``(dim, C*9)`` map from its unfolded 3x3 neighbourhood to the final feature."""
    aggregate = adaptive_pool_matrix(pre_dim * len(channels), dim)
    out = []
    for i, c in enumerate(channels):
        block = aggregate[:, i * pre_dim:(i + 1) * pre_dim]
        out.append((block @ adaptive_pool_matrix(c * 9, pre_dim)).tocsr())
    return out


class NeighbourhoodProjection(nn.Module):
    """One layer's share of the paper layout: a (grouped) 3x3 convolution over the output rows
    ``[first, first + rows)`` that this layer contributes to."""

    def __init__(self, matrix: sparse.csr_matrix, channels: int) -> None:
        super().__init__()
        nonzero_rows = np.flatnonzero(np.diff(matrix.indptr))
        self.first = int(nonzero_rows[0])
        last = int(nonzero_rows[-1])
        sub = matrix[self.first:last + 1].toarray().reshape(-1, channels, 3, 3)
        rows = sub.shape[0]
        self.groups = _largest_grouping(sub)
        per_in, per_out = channels // self.groups, rows // self.groups
        weight = np.zeros((rows, per_in, 3, 3), dtype=np.float32)
        for r in range(rows):
            g = r // per_out
            weight[r] = sub[r, g * per_in:(g + 1) * per_in]
        self.rows = rows
        self.register_buffer("weight", torch.from_numpy(weight), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, padding=1, groups=self.groups)


def _largest_grouping(sub: np.ndarray) -> int:
    """The most groups ``g`` such that output block ``j`` reads only input-channel block ``j``."""
    rows, channels = sub.shape[:2]
    uses = np.abs(sub).reshape(rows, channels, 9).sum(2) > 0
    g = math.gcd(rows, channels)
    for groups in sorted((d for d in range(1, g + 1) if g % d == 0), reverse=True):
        per_in, per_out = channels // groups, rows // groups
        block = np.repeat(np.arange(groups), per_out)[:, None] == np.repeat(np.arange(groups), per_in)[None, :]
        if not (uses & ~block).any():
            return groups
    return 1


class PatchEmbedding(nn.Module):
    """``(layer2, layer3)`` features -> ``(B, dim, h2, w2)`` patch features on ``layer2``'s grid."""

    def __init__(self, channels: tuple[int, int], layout: str = "paper", dim: int = 1024) -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"unknown feature layout {layout!r}; use one of {', '.join(LAYOUTS)}")
        self.layout = layout
        if layout == "concat":
            self.dim = sum(channels)
            self.concat_split = channels[0]
            self.projections = nn.ModuleList()
            return
        if dim < 1:
            raise ValueError("the feature dimension must be positive")
        self.dim = int(dim)
        self.projections = nn.ModuleList(
            NeighbourhoodProjection(m, c) for m, c in zip(paper_projection(channels, self.dim), channels, strict=True))
        spans = [(p.first, p.first + p.rows) for p in self.projections]
        # Usually each layer owns a contiguous block of rows and the blocks tile the output exactly.
        self.disjoint = spans[0][0] == 0 and spans[-1][1] == self.dim and all(
            a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))

    @property
    def split(self) -> int | None:
        """Features ``[0, split)`` come from ``layer2`` alone and the rest from ``layer3`` alone (then
        :meth:`parts` keeps the ``layer3`` block on its coarse grid); ``None`` if blocks overlap."""
        if self.layout == "concat":
            return int(self.concat_split)
        return self.projections[0].rows if self.disjoint else None

    def parts(self, f2: torch.Tensor, f3: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(fine, coarse)``: the ``layer2`` block on ``layer2``'s grid and the ``layer3`` block on
        ``layer3``'s own grid, so that the full feature is ``cat(fine, upsample(coarse))``. Linear maps
        of the features (distances' dot products) can then be taken on the coarse grid, 4x cheaper,
        and upsampled after. Overlapping blocks: ``(full, None)``."""
        if self.layout == "concat":
            return F.avg_pool2d(f2, 3, 1, 1), F.avg_pool2d(f3, 3, 1, 1)
        if not self.disjoint:
            return self(f2, f3), None
        return self.projections[0](f2), self.projections[1](f3)

    def forward(self, f2: torch.Tensor, f3: torch.Tensor) -> torch.Tensor:
        if self.split is not None:
            fine, coarse = self.parts(f2, f3)
            return torch.cat((fine, upsample_to(coarse, fine)), 1)
        size = (int(f2.shape[-2]), int(f2.shape[-1]))
        out = None  # overlapping row blocks: pad each to the full dimension and add
        for proj, f in zip(self.projections, (f2, f3), strict=True):
            p = proj(f)
            if p.shape[-2:] != f2.shape[-2:]:
                p = F.interpolate(p, size=size, mode="bilinear", align_corners=False)
            p = F.pad(p, (0, 0, 0, 0, proj.first, self.dim - proj.first - proj.rows))
            out = p if out is None else out + p
        return out


def upsample_to(coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
    """Bilinear upsampling of ``coarse`` to ``fine``'s grid (align_corners=False, as everywhere here)."""
    if coarse.shape[-2:] == fine.shape[-2:]:
        return coarse
    return F.interpolate(coarse, size=(int(fine.shape[-2]), int(fine.shape[-1])), mode="bilinear",
                         align_corners=False)
