"""The PatchCore inference network: images -> anomaly maps and image scores, one ``nn.Module``.

Everything from the ``uint8`` input to the smoothed anomaly map runs inside this module, so the same
graph serves torch (CPU or GPU) and, exported once, ONNX Runtime:

1. features (``backbone.FeatureExtractor``) and locally aware patch features (``embedding``);
2. the nearest memory-bank patch of every test patch by brute-force Euclidean distance as
   ``|a|^2 - 2 a.b + |b|^2`` -- one matrix product, in query chunks to bound memory;
3. the image score: the largest patch distance ``s*``, reweighted as in the paper (eq. 7) by how
   isolated its nearest bank patch ``m*`` is among ``m*``'s ``b`` nearest bank neighbours
   (precomputed at fit time);
4. patch distances bilinearly upsampled to the input size and smoothed by a Gaussian (sigma 4).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from station.detectors.patchcore.backbone import FeatureExtractor
from station.detectors.patchcore.embedding import PatchEmbedding


class GaussianBlur(nn.Module):
    """Separable Gaussian smoothing with reflected borders (as kornia's ``GaussianBlur2d`` in
    anomalib); the kernel spans ``+-round(4 sigma)`` pixels."""

    def __init__(self, sigma: float = 4.0) -> None:
        super().__init__()
        self.sigma = float(sigma)
        radius = int(4.0 * self.sigma + 0.5)
        x = torch.arange(-radius, radius + 1, dtype=torch.float64)
        k = torch.exp(-(x ** 2) / (2.0 * self.sigma ** 2))
        k = (k / k.sum()).float()
        self.radius = radius
        self.register_buffer("kernel", k, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sigma <= 0:
            return x
        h, w = int(x.shape[-2]), int(x.shape[-1])
        r = min(self.radius, h - 1, w - 1)  # reflect padding needs the pad below the size
        k = self.kernel[self.radius - r:self.radius + r + 1]
        if r != self.radius:
            k = k / k.sum()
        x = F.pad(x, (r, r, r, r), mode="reflect")
        x = F.conv2d(x, k.view(1, 1, 1, -1))
        return F.conv2d(x, k.view(1, 1, -1, 1))


class PatchScorer(nn.Module):
    """Nearest-neighbour patch distances against the memory bank, and the reweighted image score.

    Distances are translation invariant, so bank and queries are centred on the bank's mean first:
    with the small norms that leaves, ``|a|^2 - 2 a.b + |b|^2`` loses far less to cancellation. The
    distance to the nearest bank patch found that way is then recomputed exactly as ``|a - b|``.
    """

    def __init__(self, bank: torch.Tensor, support: torch.Tensor, chunk_elements: int = 1 << 24) -> None:
        super().__init__()
        bank = bank.float()
        centre = bank.mean(0)
        self.register_buffer("centre", centre.contiguous())
        self.register_buffer("bank", (bank - centre).contiguous())
        self.register_buffer("bank_sq", (self.bank * self.bank).sum(1))
        self.register_buffer("support", support.long().contiguous())
        # queries per distance block: bounds the (queries x bank) matrix; 0 disables chunking (export)
        self.chunk_rows = max(1, chunk_elements // max(1, int(bank.shape[0])))

    def nearest(self, q: torch.Tensor) -> torch.Tensor:
        """Index of the nearest bank row of each (centred) query row."""
        if self.chunk_rows <= 0 or q.shape[0] <= self.chunk_rows:
            return self._nearest(q)
        return torch.cat([self._nearest(q[i:i + self.chunk_rows])
                          for i in range(0, int(q.shape[0]), self.chunk_rows)])

    def _nearest(self, q: torch.Tensor) -> torch.Tensor:
        # |q|^2 is the same for every bank row, so the argmin needs only |b|^2 - 2 q.b
        d2 = torch.addmm(self.bank_sq.unsqueeze(0), q, self.bank.t(), beta=1.0, alpha=-2.0)
        return d2.argmin(1)

    def forward(self, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, D, h, w)`` patch features -> patch distances ``(B, h, w)`` and image scores ``(B,)``."""
        b, d, h, w = embedding.shape
        q = embedding.permute(0, 2, 3, 1).reshape(-1, d) - self.centre
        index = self.nearest(q)
        patch = (q - torch.index_select(self.bank, 0, index)).pow(2).sum(1).sqrt().view(b, h * w)
        s_star, i_star = patch.max(1)
        k = int(self.support.shape[1])
        if k <= 1:
            return patch.view(b, h, w), s_star
        q_star = torch.gather(q.view(b, h * w, d), 1, i_star.view(b, 1, 1).expand(b, 1, d))  # (b, 1, d)
        m_star = torch.gather(index.view(b, h * w), 1, i_star.view(b, 1)).view(b)
        neighbours = torch.index_select(self.support, 0, m_star).reshape(-1)  # N_b(m*), m* first
        feats = torch.index_select(self.bank, 0, neighbours).view(b, k, d)
        dist = (feats - q_star).pow(2).sum(2).sqrt()  # (b, k)
        weight = 1.0 - torch.softmax(dist, 1)[:, 0]
        return patch.view(b, h, w), weight * s_star


class PatchCoreNet(nn.Module):
    """``uint8`` images ``(B, H, W, 3)`` -> anomaly maps ``(B, H, W)`` and image scores ``(B,)``."""

    def __init__(self, extractor: FeatureExtractor, embedding: PatchEmbedding, sigma: float = 4.0) -> None:
        super().__init__()
        self.extractor = extractor
        self.embedding = embedding
        self.blur = GaussianBlur(sigma)
        self.scorer: PatchScorer | None = None
        self.autocast_half = False  # backbone in float16 (CUDA only); distances stay float32

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        if self.autocast_half and images.is_cuda:
            with torch.autocast("cuda", dtype=torch.float16):
                f2, f3 = self.extractor(images)
            f2, f3 = f2.float(), f3.float()
        else:
            f2, f3 = self.extractor(images)
        return self.embedding(f2, f3).contiguous()

    def set_bank(self, bank: torch.Tensor, support: torch.Tensor) -> None:
        self.scorer = PatchScorer(bank, support).to(bank.device)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.scorer is None:
            raise RuntimeError("PatchCore has no memory bank yet; fit it first")
        size = (int(images.shape[1]), int(images.shape[2]))
        patch, score = self.scorer(self.embed(images))
        maps = F.interpolate(patch.unsqueeze(1), size=size, mode="bilinear", align_corners=False)
        return self.blur(maps).squeeze(1), score


def feature_grid(input_hw: tuple[int, int]) -> tuple[int, int]:
    """``layer2``'s grid for an input size (stride 8 of a torchvision ResNet)."""
    h, w = input_hw
    for _ in range(3):  # conv1 (stride 2), maxpool (2), layer2 (2): each ceil((n - 1) / 2) + 1 for odd
        h, w = math.floor((h - 1) / 2) + 1, math.floor((w - 1) / 2) + 1
    return h, w
