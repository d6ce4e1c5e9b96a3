"""Which backbones the station knows and where their published ImageNet weights come from.

The published weights are torchvision's: their URLs and the hash prefixes checked on download come
from torchvision's weight enums (``torchvision.models.get_model_weights``), the same code path that
``torchvision.models.wide_resnet50_2(weights=...)`` uses. The file name of each published file
carries the first hex digits of its SHA-256 (``wide_resnet50_2-95faca4d.pth``); torch.hub checks a
download against that prefix, and so does ``station weights import``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from station.weights.backbones import TAPS
from station.weights.errors import WeightsError

# Backbones PatchCore can use: the torchvision builder's name -> the weights "imagenet" means
# (the paper's for WideResNet-50-2); where their features are tapped: ``backbones.TAPS``.
BACKBONES: dict[str, str] = {name: t.default_weights for name, t in TAPS.items()}

_HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")  # as torch.hub's HASH_REGEX


@dataclass(frozen=True)
class PublishedWeights:
    """One of torchvision's published weight files for a backbone."""

    backbone: str
    name: str  # the enum member, e.g. "IMAGENET1K_V1"
    url: str

    @property
    def file(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def hash_prefix(self) -> str:
        m = _HASH_IN_NAME.search(self.file)
        return m.group(1) if m else ""

    @property
    def label(self) -> str:
        return f"{self.backbone} {self.name} (torchvision)"

    def to_dict(self) -> dict[str, Any]:
        return {"backbone": self.backbone, "name": self.name, "url": self.url, "file": self.file,
                "hash_prefix": self.hash_prefix}


def check_backbone(backbone: str) -> str:
    if backbone not in BACKBONES:
        raise WeightsError(f"unknown backbone {backbone!r}; available: {', '.join(sorted(BACKBONES))}")
    return backbone


def published_weights(backbone: str) -> list[PublishedWeights]:
    """torchvision's published weights for ``backbone``, from its weight enum."""
    from torchvision.models import get_model_weights

    check_backbone(backbone)
    return [PublishedWeights(backbone, w.name, w.url) for w in get_model_weights(backbone)]


def find_published(backbone: str, name: str | None = None) -> PublishedWeights:
    """The published weights called ``name`` (``"IMAGENET1K_V1"`` or the full enum name
    ``"Wide_ResNet50_2_Weights.IMAGENET1K_V1"``); ``None`` or ``"imagenet"`` -> the paper's."""
    if name is None or name.lower() in ("imagenet", "default", "pretrained"):
        name = BACKBONES[check_backbone(backbone)]
    short = name.rsplit(".", 1)[-1].upper()
    options = published_weights(backbone)
    for w in options:
        if w.name == short:
            return w
    raise WeightsError(f"torchvision publishes no weights {name!r} for {backbone}; available: "
                       f"{', '.join(w.name for w in options)}")


def all_published() -> list[PublishedWeights]:
    return [w for b in BACKBONES for w in published_weights(b)]


def published_by_file(file_name: str) -> PublishedWeights | None:
    """The published weights whose torchvision file is called ``file_name``, if any."""
    for w in all_published():
        if w.file == file_name:
            return w
    return None


def published_by_sha256(sha256: str) -> PublishedWeights | None:
    """The published weights whose hash prefix ``sha256`` starts with (a renamed torchvision file)."""
    for w in all_published():
        if w.hash_prefix and sha256.startswith(w.hash_prefix):
            return w
    return None
