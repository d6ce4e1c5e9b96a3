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
from station.detectors.patchcore.embedding import PatchEmbedding, upsample_to


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
    nearest bank patch needs only ``|b|^2 - 2 a.b``; its distance is then recomputed exactly as
    ``|a - b|``. When the features split into a ``layer2`` block and a ``layer3`` block (see
    ``PatchEmbedding.split``), the ``layer3`` dot products are taken on ``layer3``'s 4x smaller grid
    and bilinearly upsampled -- the same numbers, since upsampling is linear, for a quarter of the
    work on that block.
    """

    def __init__(self, bank: torch.Tensor, support: torch.Tensor, split: int | None = None,
                 chunk_elements: int = 1 << 24) -> None:
        super().__init__()
        bank = bank.float()
        centre = bank.mean(0)
        bank = (bank - centre).contiguous()
        self.register_buffer("centre", centre.contiguous())
        self.register_buffer("bank", bank)
        self.register_buffer("bank_sq", (bank * bank).sum(1).unsqueeze(0))  # (1, M)
        self.register_buffer("support", support.long().contiguous())
        self.split = split if split and 0 < split < bank.shape[1] else None
        if self.split is not None:
            self.register_buffer("bank_fine", bank[:, :self.split].contiguous())
            self.register_buffer("bank_coarse", bank[:, self.split:].contiguous())
        # bounds the (bank x queries) block; 0 disables chunking (ONNX export: one graph for any batch)
        self.chunk_elements = chunk_elements

    def nearest(self, fine: torch.Tensor, coarse: torch.Tensor | None) -> torch.Tensor:
        """Index of the nearest bank row of every patch, ``(B * h * w,)`` in (image, y, x) order."""
        b, _, h, w = fine.shape
        per_chunk = max(1, self.chunk_elements // max(1, int(self.bank.shape[0]) * h * w))
        if self.chunk_elements <= 0 or b <= per_chunk:
            return self._nearest(fine, coarse)
        return torch.cat([self._nearest(fine[i:i + per_chunk], None if coarse is None else coarse[i:i + per_chunk])
                          for i in range(0, b, per_chunk)])

    def _nearest(self, fine: torch.Tensor, coarse: torch.Tensor | None) -> torch.Tensor:
        # (patches x bank) blocks, reduced along the contiguous bank axis
        b, _, h, w = fine.shape
        m = int(self.bank.shape[0])
        if coarse is None:
            q = fine.permute(0, 2, 3, 1).reshape(-1, fine.shape[1]) - self.centre
            return torch.addmm(self.bank_sq, q, self.bank.t(), alpha=-2.0).argmin(1)
        split = int(self.split)
        q = fine.permute(0, 2, 3, 1).reshape(-1, split) - self.centre[:split]
        d = torch.addmm(self.bank_sq, q, self.bank_fine.t(), alpha=-2.0)  # (B*h*w, M)
        hc, wc = int(coarse.shape[-2]), int(coarse.shape[-1])
        r = coarse.permute(0, 2, 3, 1).reshape(-1, coarse.shape[1]) - self.centre[split:]
        g = torch.mm(r, self.bank_coarse.t()).view(b, hc, wc, m)  # the layer3 block on its own grid
        if (h, w) == (2 * hc, 2 * wc):
            g = upsample2x_nhwc(g)
        else:
            g = F.interpolate(g.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=False)
            g = g.permute(0, 2, 3, 1)
        return (d - 2.0 * g.reshape(b * h * w, m)).argmin(1)

    def forward(self, fine: torch.Tensor, coarse: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch features -> patch distances ``(B, h, w)`` and image scores ``(B,)``; with ``coarse``
        the features are ``cat(fine, upsample(coarse))``."""
        index = self.nearest(fine, coarse)
        full = fine if coarse is None else torch.cat((fine, upsample_to(coarse, fine)), 1)
        b, d, h, w = full.shape
        q = full.permute(0, 2, 3, 1).reshape(-1, d) - self.centre
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


def upsample2x_nhwc(x: torch.Tensor) -> torch.Tensor:
    """``F.interpolate(scale_factor=2, mode="bilinear", align_corners=False)`` on the two middle axes of
    a ``(B, H, W, C)`` tensor, with whole rows of ``C`` values moved at once (no transposes): output
    ``2i`` is ``0.75 x[i] + 0.25 x[i-1]``, output ``2i+1`` is ``0.75 x[i] + 0.25 x[i+1]``, edges clamped."""
    for dim in (1, 2):
        n = int(x.shape[dim])
        prev = torch.cat((x.narrow(dim, 0, 1), x.narrow(dim, 0, n - 1)), dim) if n > 1 else x
        nxt = torch.cat((x.narrow(dim, 1, n - 1), x.narrow(dim, n - 1, 1)), dim) if n > 1 else x
        even = x * 0.75 + prev * 0.25
        odd = x * 0.75 + nxt * 0.25
        x = torch.stack((even, odd), dim + 1).flatten(dim, dim + 1)
    return x


class PatchCoreNet(nn.Module):
    """``uint8`` images ``(B, H, W, 3)`` -> anomaly maps ``(B, H, W)`` and image scores ``(B,)``."""

    def __init__(self, extractor: FeatureExtractor, embedding: PatchEmbedding, sigma: float = 4.0) -> None:
        super().__init__()
        self.extractor = extractor
        self.embedding = embedding
        self.blur = GaussianBlur(sigma)
        self.scorer: PatchScorer | None = None
        # backbone in float16 (CUDA only) or bfloat16 (CPU or CUDA); distances always stay float32
        self.backbone_dtype: torch.dtype | None = None

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = self.backbone_dtype
        if dtype is not None and (images.is_cuda or dtype == torch.bfloat16):
            with torch.autocast(images.device.type, dtype=dtype):
                f2, f3 = self.extractor(images)
            return f2.float(), f3.float()
        return self.extractor(images)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Full patch features ``(B, D, h, w)`` (for fitting)."""
        return self.embedding(*self.features(images)).contiguous()

    def set_bank(self, bank: torch.Tensor, support: torch.Tensor) -> None:
        self.scorer = PatchScorer(bank, support, self.embedding.split).to(bank.device)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.scorer is None:
            raise RuntimeError("PatchCore has no memory bank yet; fit it first")
        size = (int(images.shape[1]), int(images.shape[2]))
        fine, coarse = self.embedding.parts(*self.features(images))
        patch, score = self.scorer(fine, coarse)
        maps = F.interpolate(patch.unsqueeze(1), size=size, mode="bilinear", align_corners=False)
        return self.blur(maps).squeeze(1), score


def feature_grid(input_hw: tuple[int, int]) -> tuple[int, int]:
    """The stride-8 tap's grid for an input size (every backbone in ``backbones.TAPS``)."""
    h, w = input_hw
    # three stride-2 steps with odd kernels padded by half (a ResNet's conv1, maxpool and layer2; a
    # MobileNet's or EfficientNet's first three strided convolutions): each floor((n - 1) / 2) + 1
    for _ in range(3):
        h, w = math.floor((h - 1) / 2) + 1, math.floor((w - 1) / 2) + 1
    return h, w
