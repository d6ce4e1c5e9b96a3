"""The registry that finds detectors by name, and what each declares it can do.

The ``Detector`` protocol itself lives in the core (``station.core.detector``), which works with any
detector it is handed; this package holds the detectors and builds them by name
(``station.detectors.runtime``). Detector modules are imported lazily: asking for the variation model
never imports torch.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any

from station.core.detector import Detector, DetectorError, Prediction, SupportsOnnx
from station.core.geometry import FITS, GeometrySpec
from station.core.images import ColorMode

__all__ = ["Detector", "DetectorError", "DetectorInfo", "Prediction", "SupportsOnnx", "available_detectors",
           "create_detector", "detector_class", "detector_info", "register"]


RUNTIME_OPTIONS = ("device", "backend", "onnx_dir", "threads", "allow_download", "inference_batch")
"""Every machine option a detector may declare: where and how it runs, never what it learned. They are
keyword arguments of the constructor and of ``from_state`` and never stored in a recipe."""


@dataclass(frozen=True)
class DetectorInfo:
    """What the station knows about a detector without importing it: its name, where it lives, and
    what it can do. Callers ask these fields -- never the class's signatures -- whether a detector
    takes a device, exports to ONNX or has an int8 model (``station.detectors.runtime`` acts on them).
    """

    kind: str
    target: str  # "module:Class", imported on first use
    title: str
    summary: str  # one line for the teach-in wizard: what the detector suits
    color_mode: ColorMode = "rgb"
    geometry: GeometrySpec = GeometrySpec()  # how images of any size reach it (station.core.geometry)
    # the machine options (a subset of RUNTIME_OPTIONS) its constructor and from_state accept;
    # "device" means it runs on torch and is given the device the station picked
    runtime: tuple[str, ...] = ()
    onnx: bool = False  # export_onnx() and from_state(backend="onnxruntime", onnx_dir=...)
    # export_onnx(int8_calibration=...) also writes an int8 model; a recipe version whose config says
    # onnx_precision="int8" inspects only with it, through ONNX Runtime on the CPU
    int8: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.runtime) - set(RUNTIME_OPTIONS)
        if unknown:
            raise ValueError(f"detector {self.kind!r} declares unknown runtime options {sorted(unknown)}")
        if (self.onnx or self.int8) and not {"backend", "onnx_dir"} <= set(self.runtime):
            raise ValueError(f"detector {self.kind!r} exports to ONNX, so it must take 'backend' and 'onnx_dir'")

    @property
    def uses_device(self) -> bool:
        """Whether it runs on torch and takes the compute device the station picks."""
        return "device" in self.runtime


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
            "for rigid parts, fixtured or lying freely at any angle.",
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
    runtime=("device", "backend", "onnx_dir", "threads", "allow_download"),
    onnx=True,
    int8=True,
))
register(DetectorInfo(
    kind="padim",
    target="station.detectors.padim:PaDiM",
    title="PaDiM",
    summary="Pretrained CNN features with one Gaussian per image position. One-pass teach (no coreset), "
            "fast on a CPU with a light backbone; needs ImageNet backbone weights.",
    geometry=GeometrySpec(fits=FITS, size_param="input_size"),
    runtime=("device", "backend", "onnx_dir", "threads", "allow_download"),
    onnx=True,
))
register(DetectorInfo(
    kind="autoencoder",
    target="station.detectors.autoencoder:SSIMAutoencoder",
    title="SSIM autoencoder",
    summary="Convolutional autoencoder trained on good parts with an SSIM loss. Needs no pretrained "
            "weights; slower to teach, best with a GPU.",
    color_mode="gray",
    geometry=GeometrySpec(fits=FITS, size_param="image_size"),
    runtime=("device", "backend", "onnx_dir", "inference_batch"),
    onnx=True,
))
