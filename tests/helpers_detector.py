"""A minimal detector for testing the core pipeline without the real detectors: per-pixel mean and
standard deviation of the training images, map = |x - mean| / (std + 1). Registered as
"test-zscore" by the tests that use it."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from station.core.images import convert_color
from station.core.progress import checkpoint, report
from station.detectors.base import DetectorInfo, Prediction, register


class ZScoreDetector:
    kind = "test-zscore"

    def __init__(self, floor: float = 1.0) -> None:
        self.floor = float(floor)
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    def fit(self, images, progress=None, cancel=None) -> dict[str, Any]:
        stack = []
        for i, im in enumerate(images):
            checkpoint(cancel)
            stack.append(convert_color(im, "gray").astype(np.float32))
            report(progress, "fitting", i + 1, len(images))
        arr = np.stack(stack)
        self.mean, self.std = arr.mean(0), arr.std(0)
        return {"n": len(stack)}

    def predict(self, images) -> Prediction:
        # smoothed so single noisy pixels do not form regions
        maps = np.stack([cv2.GaussianBlur(np.abs(convert_color(im, "gray").astype(np.float32) - self.mean)
                                          / (self.std + self.floor), (0, 0), 2.0)
                         for im in images]).astype(np.float32)
        return Prediction(maps, maps.reshape(len(maps), -1).max(1))

    def get_config(self) -> dict[str, Any]:
        return {"floor": self.floor}

    def get_state(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_state(cls, config, state, **runtime):
        d = cls(**config)
        d.mean, d.std = state["mean"], state["std"]
        return d


def register_test_detector() -> None:
    register(DetectorInfo("test-zscore", "helpers_detector:ZScoreDetector", "test", "test only", "gray"))
