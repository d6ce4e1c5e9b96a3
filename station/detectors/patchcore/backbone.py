"""The feature extractor: a torchvision ResNet cut after ``layer3``, ready for fast inference.

PatchCore only reads ``layer2`` and ``layer3``, so ``layer4`` and the classifier are never built. For
inference each batch norm is folded into the convolution before it (exact up to float rounding: one
pass over the activations less per layer), and the network runs in channels-last layout, which
oneDNN (CPU) and cuDNN (GPU) execute fastest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torchvision
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from station.weights.state import UNUSED_PREFIXES

# ImageNet statistics the torchvision weights were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LAYERS = ("layer2", "layer3")


class FeatureExtractor(nn.Module):
    """``uint8`` images ``(B, H, W, 3)`` in, ImageNet-normalised, -> ``layer2`` and ``layer3`` features.

    Taking ``uint8`` NHWC input keeps conversion and normalisation inside the network (and inside the
    ONNX graph), so callers only resize; the permuted tensor is already channels-last.
    """

    def __init__(self, backbone: str, state_dict: Mapping[str, Any], fold_batchnorm: bool = True) -> None:
        super().__init__()
        with torch.device("meta"):  # no memory or random init for parameters about to be replaced
            net = getattr(torchvision.models, backbone)()
        state = {k: v for k, v in state_dict.items() if not k.startswith(UNUSED_PREFIXES)}
        net.layer4 = nn.Identity()
        net.fc = nn.Identity()
        missing, unexpected = net.load_state_dict(state, strict=False, assign=True)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:  # the weights store checks this first; a bug if it happens here
            raise ValueError(f"backbone weights do not fit {backbone}: missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]}")
        for module in net.modules():  # buffers the state dict may lack (num_batches_tracked) stay meta
            for name, buf in list(module.named_buffers(recurse=False)):
                if buf.is_meta:
                    module.register_buffer(name, torch.zeros(buf.shape, dtype=buf.dtype))
        net.float().eval()
        if fold_batchnorm:
            _fold_batchnorms(net)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3 = net.layer1, net.layer2, net.layer3
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("inv_std", 1.0 / std, persistent=False)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    @property
    def channels(self) -> tuple[int, int]:
        return _out_channels(self.layer2), _out_channels(self.layer3)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float()
        return (x - self.mean) * self.inv_std

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.normalise(images).contiguous(memory_format=torch.channels_last)
        x = self.layer1(self.stem(x))
        f2 = self.layer2(x)
        return f2, self.layer3(f2)


def _out_channels(layer: nn.Sequential) -> int:
    last = layer[-1]
    conv = getattr(last, "conv3", None) or last.conv2
    return int(conv.out_channels)


def _fold_batchnorms(net: nn.Module) -> None:
    """Fold every ``conv -> bn`` pair of a torchvision ResNet into the conv (inference only)."""
    net.conv1 = fuse_conv_bn_eval(net.conv1, net.bn1)
    net.bn1 = nn.Identity()
    for layer in (net.layer1, net.layer2, net.layer3):
        for block in layer:
            for i in (1, 2, 3):
                conv, bn = getattr(block, f"conv{i}", None), getattr(block, f"bn{i}", None)
                if conv is not None and isinstance(bn, nn.BatchNorm2d):
                    setattr(block, f"conv{i}", fuse_conv_bn_eval(conv, bn))
                    setattr(block, f"bn{i}", nn.Identity())
            ds = block.downsample
            if isinstance(ds, nn.Sequential) and len(ds) == 2 and isinstance(ds[1], nn.BatchNorm2d):
                block.downsample = nn.Sequential(fuse_conv_bn_eval(ds[0], ds[1]))
