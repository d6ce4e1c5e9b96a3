"""The feature extractor: a torchvision backbone cut after its stride-16 tap, ready for fast inference.

Interface (PatchCore and PaDiM use it alike)::

    extractor = FeatureExtractor("mobilenet_v2", state_dict)   # state_dict: from station.weights.load_weights
    f8, f16 = extractor(images)        # images: uint8 (B, H, W, 3) RGB; float32 (B, C8, H/8, W/8), (B, C16, H/16, W/16)
    extractor.channels                 # (C8, C16), e.g. (32, 96)
    extractor.taps                     # the station.weights.backbones.BackboneTaps it was built from

Which modules give the two feature maps is one table, ``station.weights.backbones.TAPS`` (ResNets:
``layer2``/``layer3``; MobileNetV2: ``features[6]``/``features[13]``; ...). Only the children of the
backbone up to the second tap are built (``layer4``, later blocks and the classifier never are), as
two stages: ``stage8`` (input -> stride-8 features) and ``stage16`` (-> stride-16 features).

For inference each batch norm is folded into the convolution before it (exact up to float rounding:
one pass over the activations less per layer), and the network runs in channels-last layout, which
oneDNN (CPU) and cuDNN (GPU) execute fastest -- also for the depthwise convolutions of the mobile
backbones (docs/benchmarks.md). Taking ``uint8`` NHWC input keeps conversion and ImageNet
normalisation inside the network, and so inside the ONNX graph: callers only resize.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torchvision
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from station.weights.backbones import TAPS, BackboneTaps

# ImageNet statistics the torchvision weights were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FeatureExtractor(nn.Module):
    """``uint8`` images ``(B, H, W, 3)`` in, ImageNet-normalised, -> stride-8 and stride-16 features."""

    def __init__(self, backbone: str, state_dict: Mapping[str, Any], fold_batchnorm: bool = True) -> None:
        super().__init__()
        if backbone not in TAPS:
            raise ValueError(f"unknown backbone {backbone!r}; use one of {', '.join(TAPS)}")
        self.taps: BackboneTaps = TAPS[backbone]
        with torch.device("meta"):  # no memory or random init for parameters about to be replaced
            net = getattr(torchvision.models, backbone)()
        container = net.get_submodule(self.taps.container) if self.taps.container else net
        children = dict(container.named_children())
        trunk = nn.Module()  # the modules that run, under their torchvision names (so the keys match)
        for name in self.taps.trunk:
            trunk.add_module(name, children[name])
        head = f"{self.taps.container}." if self.taps.container else ""
        state = {k[len(head):]: v for k, v in state_dict.items() if self.taps.uses(k)}
        missing, unexpected = trunk.load_state_dict(state, strict=False, assign=True)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:  # the weights store checks this first; a bug if it happens here
            raise ValueError(f"backbone weights do not fit {backbone}: missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]}")
        for module in trunk.modules():  # buffers the state dict may lack (num_batches_tracked) stay meta
            for name, buf in list(module.named_buffers(recurse=False)):
                if buf.is_meta:
                    module.register_buffer(name, torch.zeros(buf.shape, dtype=buf.dtype))
        trunk.float().eval()
        if fold_batchnorm:
            fold_batchnorms(trunk)
        cut = self.taps.trunk.index(self.taps.taps[0]) + 1
        self.stage8 = nn.Sequential(*(getattr(trunk, n) for n in self.taps.trunk[:cut]))
        self.stage16 = nn.Sequential(*(getattr(trunk, n) for n in self.taps.trunk[cut:]))
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("inv_std", 1.0 / std, persistent=False)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    @property
    def channels(self) -> tuple[int, int]:
        return self.taps.channels

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float()
        return (x - self.mean) * self.inv_std

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.normalise(images).contiguous(memory_format=torch.channels_last)
        f8 = self.stage8(x)
        return f8, self.stage16(f8)


def fold_batchnorms(module: nn.Module) -> None:
    """Fold every batch norm that directly follows a convolution into it (inference only), in place.

    Two shapes occur in torchvision backbones: consecutive children of an ``nn.Sequential`` (MobileNet's
    and EfficientNet's ``Conv2dNormActivation``, a ResNet's ``downsample``) and sibling attributes
    ``convN``/``bnN`` (ResNet's stem and blocks)."""
    for child in module.children():
        fold_batchnorms(child)
    names = [n for n, _ in module.named_children()]
    if isinstance(module, nn.Sequential):
        for a, b in zip(names, names[1:], strict=False):
            conv, bn = module._modules[a], module._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                module._modules[a] = fuse_conv_bn_eval(conv, bn)
                module._modules[b] = nn.Identity()
        return
    for name in names:
        if not name.startswith("conv"):
            continue
        conv, bn = getattr(module, name), getattr(module, "bn" + name[len("conv"):], None)
        if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
            setattr(module, name, fuse_conv_bn_eval(conv, bn))
            setattr(module, "bn" + name[len("conv"):], nn.Identity())
