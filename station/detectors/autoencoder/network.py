"""The convolutional autoencoder of Bergmann et al. (VISAPP 2019), Table 1.

Encoder for a 128x128 input (channels ``c`` = 32 by default, latent dimension ``d`` = 100)::

    conv 4x4/2 -> c      64x64          conv 4x4/2 -> 2c     16x16
    conv 4x4/2 -> c      32x32          conv 3x3/1 -> 2c     16x16
    conv 3x3/1 -> c      32x32          conv 4x4/2 -> 4c      8x8
                                        conv 3x3/1 -> 2c      8x8
                                        conv 3x3/1 -> c       8x8
                                        conv 8x8/1 -> d       1x1   (linear: the latent code)

The decoder mirrors it with transposed convolutions for the up-sampling layers. Every layer but
the latent code and the output is followed by LeakyReLU(0.2); the output passes a sigmoid because
the images are scaled to [0, 1]. For larger inputs (the MVTec AD paper's 256x256 object images)
one more 4x4/2 convolution is added per doubling at the input end, and one more transposed
convolution at the output end, so the 8x8 bottleneck stays the same. A 64x64 input (one stride-2
layer fewer at each end) is accepted for tests and very small parts; it is not the paper's network.
"""

from __future__ import annotations

import math

import torch
from torch import nn

BASE_SIZE = 128  # the input size of the paper's Table 1 network
LEAKY_SLOPE = 0.2


def extra_layers(input_size: int) -> int:
    """How many stride-2 layers an input of ``input_size`` needs beyond the 128x128 network's
    (-1 for 64x64)."""
    k = math.log2(input_size / BASE_SIZE) if input_size > 0 else -2
    if k < -1 or k != int(k):
        raise ValueError(f"the autoencoder takes square inputs of 64 or 128 * 2^k pixels (128, 256, 512, ...); "
                         f"got {input_size}")
    return int(k)


def _conv(cin: int, cout: int, k: int, s: int, p: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, s, p), nn.LeakyReLU(LEAKY_SLOPE)]


def _up(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.LeakyReLU(LEAKY_SLOPE)]


class ConvAutoencoder(nn.Module):
    """Input and output: ``(N, channels, S, S)`` float in [0, 1], ``S`` = 64 or ``128 * 2^k``."""

    def __init__(self, input_size: int = 128, channels: int = 1, latent_dim: int = 100, width: int = 32) -> None:
        super().__init__()
        n_extra = extra_layers(input_size)
        c = width
        self.input_size = input_size
        self.channels = channels
        enc: list[nn.Module] = []
        cin = channels
        for _ in range(2 + n_extra):  # Table 1: two 4x4/2 layers down to 32x32
            enc += _conv(cin, c, 4, 2, 1)
            cin = c
        enc += _conv(cin, c, 3, 1, 1)
        enc += _conv(c, 2 * c, 4, 2, 1)
        enc += _conv(2 * c, 2 * c, 3, 1, 1)
        enc += _conv(2 * c, 4 * c, 4, 2, 1)
        enc += _conv(4 * c, 2 * c, 3, 1, 1)
        enc += _conv(2 * c, c, 3, 1, 1)
        enc.append(nn.Conv2d(c, latent_dim, 8, 1, 0))
        self.encoder = nn.Sequential(*enc)

        dec: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, c, 8, 1, 0), nn.LeakyReLU(LEAKY_SLOPE)]
        dec += _conv(c, 2 * c, 3, 1, 1)
        dec += _conv(2 * c, 4 * c, 3, 1, 1)
        dec += _up(4 * c, 2 * c)
        dec += _conv(2 * c, 2 * c, 3, 1, 1)
        dec += _up(2 * c, c)
        dec += _conv(c, c, 3, 1, 1)
        for _ in range(1 + n_extra):  # Table 1: one 4x4/2 layer to 64x64, then the output layer
            dec += _up(c, c)
        dec += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Sigmoid()]
        self.decoder = nn.Sequential(*dec)
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        """He initialisation for LeakyReLU(0.2), unit gain for the linear latent code and the output,
        zero biases. The paper does not state its initialisation; PyTorch's default shrinks the
        signal about threefold in variance per layer, so after 18 layers the output does not depend
        on the input at all and training sits on a plateau (the mean image) for thousands of steps."""
        layers = [m for m in self.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        linear = {self.encoder[-1], layers[-1]}
        for layer in layers:
            kh, kw = layer.kernel_size
            if isinstance(layer, nn.Conv2d):
                fan_in = layer.in_channels * kh * kw
            elif layer is self.decoder[0]:
                fan_in = layer.in_channels  # from the 1x1 code: one weight per input channel and pixel
            else:  # a stride-s transposed convolution feeds each output from (k/s)^2 taps per channel
                fan_in = layer.in_channels * (kh // layer.stride[0]) * (kw // layer.stride[1])
            gain = 1.0 if layer in linear else math.sqrt(2.0 / (1.0 + LEAKY_SLOPE ** 2))
            nn.init.normal_(layer.weight, 0.0, gain / math.sqrt(fan_in))
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    @torch.no_grad()
    def init_output_level(self, mean: torch.Tensor | list[float]) -> None:
        """Start the output at the training images' mean grey level (per channel) instead of 0.5:
        SSIM barely rewards getting the brightness right, so without this the first part of
        training is spent finding it."""
        m = torch.as_tensor(mean, dtype=torch.float32).clamp(0.02, 0.98)
        last = self.decoder[-2]
        last.bias.copy_(torch.log(m / (1 - m)).to(last.bias))


class AnomalyMapNet(nn.Module):
    """The inference graph: image batch -> anomaly map at the network's resolution, ``(N, S, S)``.

    ``metric="ssim"``: ``1 - SSIM`` over the SSIM window (reflect-padded borders); ``metric="l2"``:
    the per-pixel squared difference, averaged over the colour channels. This is also what is
    exported to ONNX, so both backends share all pre- and post-processing.
    """

    def __init__(self, autoencoder: ConvAutoencoder, metric: str, ssim: nn.Module) -> None:
        super().__init__()
        if metric not in ("ssim", "l2"):
            raise ValueError(f"unknown anomaly map {metric!r}; use 'ssim' or 'l2'")
        self.autoencoder = autoencoder
        self.metric = metric
        self.ssim = ssim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.autoencoder(x)
        if self.metric == "ssim":
            return 1.0 - self.ssim(x, r)
        return ((x - r) ** 2).mean(dim=1)
