"""The backbones the station knows, and where in each one the patch features are read ("taps").

One table, no torch: for every torchvision builder, the weights it defaults to and the two modules
whose outputs are the stride-8 and stride-16 feature maps that PatchCore (and PaDiM) read. The
feature extractor (``station.detectors.patchcore.backbone``) runs the children of ``container`` in
order and stops after the last tap, so nothing behind it is built, loaded or run; the weights store
checks only the parameters of those children (:meth:`BackboneTaps.uses`).

Why these taps (PatchCore's argument: mid-level features, generic enough for any part, with enough
resolution for small defects -- the *last* block of the stride-8 and of the stride-16 stage, as
``layer2``/``layer3`` of a ResNet):

- ResNet family: ``layer2`` (stride 8) and ``layer3`` (stride 16), the paper's choice.
- ``mobilenet_v2``: ``features[6]`` (end of the 32-channel stride-8 stage) and ``features[13]`` (end of
  the 96-channel stride-16 stage); measured against other taps on bottle with real ImageNet weights
  in docs/benchmarks.md.
- ``mobilenet_v3_large``: ``features[6]`` (end of the 40-channel stride-8 stage) and ``features[12]``
  (end of the 112-channel stride-16 stage), by the same rule; the modern light backbone torchvision
  publishes ImageNet weights for with the fewest multiply-adds to its taps.
- ``efficientnet_b0``: ``features[3]`` (40 ch, stride 8) and ``features[5]`` (112 ch, stride 16).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackboneTaps:
    """Where one torchvision backbone gives the features PatchCore reads.

    Attributes
    ----------
    name
        The torchvision builder (``torchvision.models.<name>``).
    default_weights
        The torchvision weights enum member ``weights="imagenet"`` means.
    container
        Dotted path of the module whose children run in sequence (``""``: the model itself).
    trunk
        Those children, in forward order, up to and including the second tap; nothing after them
        is built, loaded or run.
    taps
        The two children of ``trunk`` after which the stride-8 and the stride-16 features are read.
    channels
        Channels of the two tapped feature maps.
    family
        ``"resnet"``, ``"mobilenet"`` or ``"efficientnet"``.
    """

    name: str
    default_weights: str
    container: str
    trunk: tuple[str, ...]
    taps: tuple[str, str]
    channels: tuple[int, int]
    family: str
    strides: tuple[int, int] = (8, 16)

    def uses(self, key: str) -> bool:
        """Whether the state-dict entry ``key`` belongs to a module the extractor runs."""
        head = f"{self.container}." if self.container else ""
        return key.startswith(head) and key[len(head):].split(".", 1)[0] in self.trunk


def _resnet(name: str, channels: tuple[int, int]) -> BackboneTaps:
    trunk = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3")
    return BackboneTaps(name, "IMAGENET1K_V1", "", trunk, ("layer2", "layer3"), channels, "resnet")


def _sequential(name: str, stride8: int, stride16: int, channels: tuple[int, int], family: str) -> BackboneTaps:
    trunk = tuple(str(i) for i in range(stride16 + 1))
    return BackboneTaps(name, "IMAGENET1K_V1", "features", trunk, (str(stride8), str(stride16)), channels, family)


TAPS: dict[str, BackboneTaps] = {t.name: t for t in (
    _resnet("wide_resnet50_2", (512, 1024)),  # Roth et al. 2022 (and anomalib) use WideResNet-50-2
    _resnet("resnet18", (128, 256)),  # a light ResNet, used by many tests
    _resnet("resnet50", (512, 1024)),
    _sequential("mobilenet_v2", 6, 13, (32, 96), "mobilenet"),
    _sequential("mobilenet_v3_large", 6, 12, (40, 112), "mobilenet"),
    _sequential("efficientnet_b0", 3, 5, (40, 112), "efficientnet"),
)}


def backbone_taps(name: str) -> BackboneTaps:
    """The tap description of ``name``; ``KeyError`` for an unknown backbone (callers check first)."""
    return TAPS[name]
