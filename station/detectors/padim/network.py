"""The PaDiM inference network: ``uint8`` images -> anomaly maps and image scores, one ``nn.Module``.

Everything from the ``uint8`` input to the smoothed map runs inside this module, so the same graph
serves torch (CPU or GPU) and, exported once, ONNX Runtime:

1. the backbone's stride-8 and stride-16 features (PatchCore's ``FeatureExtractor`` and its taps);
2. of each tap only the randomly chosen channels, upsampled (bilinear) to the first tap's grid and
   concatenated -- choosing before upsampling keeps the upsampling to the channels that are used;
3. at every grid position the Mahalanobis distance to that position's Gaussian, with the inverse
   covariances precomputed at fit time: one batched matrix product over all positions;
4. distances bilinearly upsampled to the input size and smoothed by a Gaussian (sigma 4); the image
   score is the map's maximum (as the paper and anomalib).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from station.detectors.patchcore.backbone import FeatureExtractor
from station.detectors.patchcore.network import GaussianBlur


class ChannelSelection(nn.Module):
    """The chosen channels of the taps, on the first tap's grid: ``(B, D, h, w)``.

    ``channels`` index the taps' channels concatenated in order (sorted), so the output keeps that
    order whichever tap a channel comes from."""

    def __init__(self, tap_channels: tuple[int, ...], channels: torch.Tensor) -> None:
        super().__init__()
        channels = torch.as_tensor(channels, dtype=torch.long)
        total = sum(tap_channels)
        if channels.ndim != 1 or len(channels) == 0 or int(channels.min()) < 0 or int(channels.max()) >= total:
            raise ValueError(f"channel indices must lie in [0, {total}) for taps of {tap_channels} channels")
        if bool((channels[1:] <= channels[:-1]).any()):
            raise ValueError("channel indices must be sorted and distinct")
        self.tap_channels = tuple(int(c) for c in tap_channels)
        offset = 0
        self.per_tap: list[int] = []
        for i, c in enumerate(self.tap_channels):
            mine = channels[(channels >= offset) & (channels < offset + c)] - offset
            self.register_buffer(f"index{i}", mine.contiguous(), persistent=False)
            self.per_tap.append(int(len(mine)))
            offset += c
        self.dim = int(len(channels))

    def forward(self, taps: tuple[torch.Tensor, ...]) -> torch.Tensor:
        grid = (int(taps[0].shape[-2]), int(taps[0].shape[-1]))
        parts = []
        for i, f in enumerate(taps):
            if self.per_tap[i] == 0:
                continue
            f = f.float()
            if self.per_tap[i] < self.tap_channels[i]:
                f = torch.index_select(f, 1, getattr(self, f"index{i}"))
            if f.shape[-2:] != grid:
                f = F.interpolate(f, size=grid, mode="bilinear", align_corners=False)
            parts.append(f)
        return torch.cat(parts, 1) if len(parts) > 1 else parts[0]


class Mahalanobis(nn.Module):
    """Distances of features ``(B, D, h, w)`` to per-position Gaussians -> ``(B, h, w)``.

    ``mean`` is ``(h, w, D)`` and ``inverse_covariance`` ``(h, w, D, D)``. The distance is
    ``sqrt(q^T S q)`` with ``q = x - mu``, computed for all positions at once as ``(S q) . q`` with
    one batched product ``(P, D, D) @ (P, D, B)`` -- at batch 1 a matrix-vector product per position,
    so its cost is reading the inverse covariances once per batch.
    """

    def __init__(self, mean: torch.Tensor, inverse_covariance: torch.Tensor) -> None:
        super().__init__()
        h, w, d = (int(s) for s in mean.shape)
        if tuple(inverse_covariance.shape) != (h, w, d, d):
            raise ValueError(f"inverse covariances {tuple(inverse_covariance.shape)} do not fit means "
                             f"{tuple(mean.shape)}")
        self.grid = (h, w)
        self.register_buffer("mean", mean.float().reshape(h * w, d, 1).contiguous())
        self.register_buffer("inverse_covariance", inverse_covariance.float().reshape(h * w, d, d).contiguous())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        b, d, h, w = features.shape
        if (h, w) != self.grid:
            raise ValueError(f"features on a {h}x{w} grid, but the Gaussians were learned on "
                             f"{self.grid[0]}x{self.grid[1]}")
        q = features.permute(2, 3, 1, 0).reshape(h * w, d, b) - self.mean  # (P, D, B)
        sq = torch.matmul(self.inverse_covariance, q)  # (P, D, B)
        dist = (sq * q).sum(1).clamp_min(0.0).sqrt()  # (P, B); rounding can dip below 0 at ~0
        return dist.t().reshape(b, h, w)


class PaDiMNet(nn.Module):
    """``uint8`` images ``(B, H, W, 3)`` -> anomaly maps ``(B, H, W)`` and image scores ``(B,)``."""

    def __init__(self, extractor: FeatureExtractor, selection: ChannelSelection, sigma: float = 4.0) -> None:
        super().__init__()
        self.extractor = extractor
        self.selection = selection
        self.blur = GaussianBlur(sigma)
        self.gaussians: Mahalanobis | None = None

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The chosen features ``(B, D, h, w)`` (for fitting)."""
        return self.selection(self.extractor(images)).contiguous()

    def set_gaussians(self, mean: torch.Tensor, inverse_covariance: torch.Tensor) -> None:
        self.gaussians = Mahalanobis(mean, inverse_covariance).to(mean.device)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.gaussians is None:
            raise RuntimeError("PaDiM has no Gaussians yet; fit it first")
        size = (int(images.shape[1]), int(images.shape[2]))
        dist = self.gaussians(self.features(images)).unsqueeze(1)
        maps = F.interpolate(dist, size=size, mode="bilinear", align_corners=False)
        maps = self.blur(maps).squeeze(1)
        return maps, maps.flatten(1).amax(1)
