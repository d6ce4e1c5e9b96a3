"""Test-only support for the live tests: a tiny per-pixel mean/deviation detector and a demo recipe.

The real demo recipe uses the variation model (station/detectors/variation.py); these tests must
not depend on another developer's detector, so they register their own small one under the kind
``test-meanstd``. Subprocess tests put this folder on PYTHONPATH and call :func:`register`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from station.detectors.base import _REGISTRY, DetectorInfo, Prediction
from station.detectors.base import register as register_detector
from station.detectors.runtime import teach_detector

KIND = "test-meanstd"


class MeanStdDetector:
    """Per-pixel mean and deviation of blurred, reduced gray images; the map is the z-score."""

    kind: ClassVar[str] = KIND

    def __init__(self, scale: int = 4, min_std: float = 3.0) -> None:
        self.scale = int(scale)
        self.min_std = float(min_std)
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def _reduce(self, image: np.ndarray) -> np.ndarray:
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        small = cv2.resize(gray, (max(1, w // self.scale), max(1, h // self.scale)), interpolation=cv2.INTER_AREA)
        return small.astype(np.float32)

    def fit(self, images: Sequence[np.ndarray], progress=None, cancel=None) -> dict[str, Any]:
        stack = np.stack([self._reduce(im) for im in images])
        self.mean = stack.mean(axis=0)
        self.std = np.maximum(stack.std(axis=0), self.min_std)
        return {"n_fit": len(images)}

    def predict(self, images: Sequence[np.ndarray]) -> Prediction:
        assert self.mean is not None and self.std is not None, "not fitted"
        maps = []
        for im in images:
            small = self._reduce(im)
            if small.shape != self.mean.shape:
                raise ValueError(f"image size {im.shape[1]}x{im.shape[0]} differs from the taught size")
            z = np.abs(small - self.mean) / self.std
            maps.append(cv2.resize(z, (im.shape[1], im.shape[0]), interpolation=cv2.INTER_LINEAR))
        arr = np.stack(maps).astype(np.float32)
        return Prediction(arr, arr.reshape(len(arr), -1).max(axis=1))

    def get_config(self) -> dict[str, Any]:
        return {"scale": self.scale, "min_std": self.min_std}

    def get_state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_state(cls, config: dict[str, Any], state: dict[str, np.ndarray], **runtime: Any) -> MeanStdDetector:
        det = cls(**config)
        det.mean, det.std = state["mean"], state["std"]
        return det


def register() -> None:
    if KIND not in _REGISTRY:
        register_detector(DetectorInfo(kind=KIND, target="test_live_support:MeanStdDetector",
                                       title="Test mean/std", summary="test only"))


def teach_recipe(images_train: list[np.ndarray], images_val: list[np.ndarray], folder: Path, name: str = "demo",
                 min_defect_area_px: float | None = None) -> Path:
    """Teach and save a recipe with the test detector; returns the part folder."""
    from station.core.recipe import save_recipe


    register()
    result = teach_detector(name, images_train, images_val, KIND, min_defect_area_px=min_defect_area_px)
    save_recipe(result.recipe, folder)
    return folder


def teach_demo_recipe(folder: Path, n_train: int = 30, n_val: int = 10, seed: int = 0) -> Path:
    """The synthetic demo part taught with the test detector."""
    from station.acquisition.synthetic import SyntheticPart

    part = SyntheticPart(seed=seed)
    images = part.good_images(n_train + n_val, start=100_000)
    return teach_recipe(images[:n_train], images[n_train:], folder, min_defect_area_px=20)
