"""What the core needs of a detector: the ``Detector`` protocol and its ``Prediction``.

A detector learns from good images only. It turns images into anomaly maps at the images' own
resolution plus one score per image; the core does everything after that (regions, threshold,
verdict, metrics). Its state is plain data -- a JSON-able config and a dict of numpy arrays -- so a
recipe stores it without pickles. The core is handed detectors; it never builds one by name (that is
``station.detectors``, a layer above).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from station.core.geometry import GeometrySpec
from station.core.images import ColorMode
from station.core.progress import CancelToken, ProgressCallback


class DetectorError(Exception):
    """A detector cannot be rebuilt from the state it is given: a missing or malformed array, an
    unknown parameter, an ONNX export of other weights. The message names what is wrong and what to
    do, in one line; where a recipe is loaded (``station.detectors.runtime``) it becomes a
    ``RecipeError`` with the same message, so a detector knows nothing of recipes."""


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


@runtime_checkable
class DetectorFactory(Protocol):
    """How the core gets a new detector to teach, without knowing any by name: what its registry
    entry declares (``kind``, ``title``, ``color_mode``, ``geometry``) and ``create(params)``, which
    builds an unfitted one (``station.detectors.runtime.NewDetector``)."""

    kind: str
    title: str
    color_mode: ColorMode
    geometry: GeometrySpec

    def create(self, params: dict[str, Any]) -> Detector: ...
