"""Structural similarity (SSIM) maps, as the training loss and as the anomaly map.

SSIM is computed per pixel over an 11x11 local window (Bergmann et al. 2019 use 11x11 patches).
The window is Gaussian with sigma 1.5 by default -- the weighting of Wang et al. (2004), which gives
smoother maps without the block edges of a flat window -- or uniform (``kind="uniform"``), the plain
patch mean of the paper's definition. Constants: ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` with the
dynamic range ``L = 1`` (images in [0, 1]). For anomaly maps the borders are reflect-padded, so the
map has the input's size; the training loss uses the unpadded ("valid") map, whose backward pass is
deterministic on CUDA. Colour images get one SSIM map per channel, averaged.

Everything here is plain tensor arithmetic (conv2d, pad), so it exports to ONNX unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

C1 = 0.01 ** 2
C2 = 0.03 ** 2
GAUSSIAN_SIGMA = 1.5
WINDOW_KINDS = ("gaussian", "uniform")


def window_1d(size: int, kind: str = "gaussian", sigma: float = GAUSSIAN_SIGMA) -> torch.Tensor:
    """A normalised 1-D window; the 2-D window is its outer product (both kinds are separable)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"the SSIM window must be an odd size >= 1; got {size}")
    if kind == "uniform":
        w = torch.ones(size, dtype=torch.float64)
    elif kind == "gaussian":
        x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
        w = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    else:
        raise ValueError(f"unknown SSIM window {kind!r}; use one of {', '.join(WINDOW_KINDS)}")
    return (w / w.sum()).to(torch.float32)


class SSIMMap(nn.Module):
    """``forward(x, y)`` -> ``(N, H, W)`` SSIM of ``x`` and ``y`` (``(N, C, H, W)`` in [0, 1]);
    ``padding="valid"`` gives ``(N, H - window + 1, W - window + 1)``."""

    def __init__(self, window: int = 11, kind: str = "gaussian", channels: int = 1,
                 padding: str = "reflect") -> None:
        super().__init__()
        if padding not in ("reflect", "valid"):
            raise ValueError(f"unknown SSIM padding {padding!r}; use 'reflect' or 'valid'")
        w = window_1d(window, kind)
        self.window = window
        self.channels = channels
        self.padding = padding
        # Depthwise, separable: a (k x 1) then a (1 x k) pass per channel and statistic.
        self.register_buffer("wy", w.view(1, 1, window, 1).repeat(5 * channels, 1, 1, 1), persistent=False)
        self.register_buffer("wx", w.view(1, 1, 1, window).repeat(5 * channels, 1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        stats = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (N, 5C, H, W)
        if self.padding == "reflect":
            pad = self.window // 2
            stats = F.pad(stats, (pad, pad, pad, pad), mode="reflect")
        groups = stats.shape[1]
        local = F.conv2d(F.conv2d(stats, self.wy, groups=groups), self.wx, groups=groups)
        c = self.channels
        mx, my, mxx, myy, mxy = (local[:, i * c:(i + 1) * c] for i in range(5))
        vx = mxx - mx * mx
        vy = myy - my * my
        cov = mxy - mx * my
        ssim = ((2 * mx * my + C1) * (2 * cov + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2))
        return ssim.mean(dim=1)


def ssim_loss(ssim_map: torch.Tensor) -> torch.Tensor:
    """The training loss: mean of ``1 - SSIM`` over the pixels (and the batch)."""
    return (1.0 - ssim_map).mean()
