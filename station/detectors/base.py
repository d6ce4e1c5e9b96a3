"""The ``Detector`` protocol and the registry that finds detectors by name.

A detector learns from good images only. It turns images into anomaly maps at the images' own
resolution plus one score per image; the core does everything after that (regions, threshold,
verdict, metrics). Its state is plain data -- a JSON-able config and a dict of numpy arrays -- so a
recipe stores it without pickles.

Detector modules are imported lazily: asking for the variation model never imports torch.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from station.core.geometry import FITS, GeometrySpec
from station.core.images import ColorMode
from station.core.progress import CancelToken, ProgressCallback


@dataclass
class Prediction:
    """``anomaly_maps``: ``(N, H, W)`` float32 at the input images' resolution (higher = more
    anomalous); ``scores``: ``(N,)`` image-level anomaly scores."""

    anomaly_maps: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


@runtime_checkable
class Detector(Protocol):
    """What every detector provides. Images are ``uint8`` RGB ``(H, W, 3)`` or gray ``(H, W)``, all of
    one size within a call; the detector converts to its own colour mode and input size."""

    kind: ClassVar[str]

    def fit(
        self,
        images: Sequence[np.ndarray],
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> dict[str, Any]:
        """Learn from good images. Reports progress, stops with ``Cancelled`` at cancel points.
        Returns JSON-able statistics of the fit (time, sizes)."""
        ...

    def predict(self, images: Sequence[np.ndarray]) -> Prediction:
        """Anomaly maps and scores for a batch of images."""
        ...

    def get_config(self) -> dict[str, Any]:
        """The parameters needed to rebuild this detector (JSON-able)."""
        ...

    def get_state(self) -> dict[str, np.ndarray]:
        """The learned tensors, as numpy arrays (saved to safetensors/npz by the recipe)."""
        ...

    @classmethod
    def from_state(cls, config: dict[str, Any], state: dict[str, np.ndarray], **runtime: Any) -> Detector:
        """Rebuild a fitted detector. ``runtime`` carries machine-specific options (e.g. ``device``)."""
        ...


@runtime_checkable
class SupportsOnnx(Protocol):
    """Optional: detectors whose network can run through ONNX Runtime.

    ``export_onnx`` writes the ONNX file(s) of the fitted detector into ``directory`` and returns their
    paths; ``from_state(..., backend="onnxruntime", onnx_dir=directory)`` then runs inference through
    them (``backend="torch"`` is the default everywhere).
    """

    def export_onnx(self, directory: Path) -> list[Path]: ...


@dataclass(frozen=True)
class DetectorInfo:
    kind: str
    target: str  # "module:Class", imported on first use
    title: str
    summary: str  # one line for the teach-in wizard: what the detector suits
    color_mode: ColorMode = "rgb"
    geometry: GeometrySpec = GeometrySpec()  # how images of any size reach it (station.core.geometry)


_REGISTRY: dict[str, DetectorInfo] = {}


def register(info: DetectorInfo) -> None:
    _REGISTRY[info.kind] = info


class UnknownDetectorError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; show it plainly
        return str(self.args[0])


def detector_info(kind: str) -> DetectorInfo:
    try:
        return _REGISTRY[kind]
    except KeyError:
        names = sorted(_REGISTRY)
        close = difflib.get_close_matches(kind, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownDetectorError(
            f"unknown detector {kind!r}.{hint} Available: {', '.join(names)}") from None


def available_detectors() -> list[DetectorInfo]:
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def detector_class(kind: str) -> type[Detector]:
    info = detector_info(kind)
    module_name, _, class_name = info.target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)


def create_detector(kind: str, **params: Any) -> Detector:
    """A new, unfitted detector of the named kind; unknown parameters raise ``TypeError``."""
    return detector_class(kind)(**params)


register(DetectorInfo(
    kind="variation",
    target="station.detectors.variation:VariationModel",
    title="Variation model",
    summary="Per-pixel mean and deviation after alignment. Fast, no GPU, no pretrained weights; "
            "for rigid parts under stable lighting.",
    geometry=GeometrySpec(why_not="it learns per-pixel statistics of the whole part, so one tile "
                                  "position would never match another"),
))
register(DetectorInfo(
    kind="patchcore",
    target="station.detectors.patchcore:PatchCore",
    title="PatchCore",
    summary="Pretrained CNN features with a nearest-neighbour memory bank. Best accuracy on most parts; "
            "needs ImageNet backbone weights, fastest on a GPU.",
    geometry=GeometrySpec(fits=FITS, size_param="input_size"),
))
register(DetectorInfo(
    kind="padim",
    target="station.detectors.padim:PaDiM",
    title="PaDiM",
    summary="Pretrained CNN features with one Gaussian per image position. One-pass teach (no coreset), "
            "fast on a CPU with a light backbone; needs ImageNet backbone weights.",
    geometry=GeometrySpec(fits=FITS, size_param="input_size"),
))
register(DetectorInfo(
    kind="autoencoder",
    target="station.detectors.autoencoder:SSIMAutoencoder",
    title="SSIM autoencoder",
    summary="Convolutional autoencoder trained on good parts with an SSIM loss. Needs no pretrained "
            "weights; slower to teach, best with a GPU.",
    color_mode="gray",
    geometry=GeometrySpec(fits=FITS, size_param="image_size"),
))
