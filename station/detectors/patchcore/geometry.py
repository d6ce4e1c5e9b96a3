"""Input geometry: images of any size -> the network's input size, and anomaly maps back.

``resize`` then an optional centre ``crop`` (the paper: 256 then 224; anomalib's default and the
station's: 256, no crop, so defects at the border stay visible). Resizing is antialiased bilinear by
default -- what the authors' code (PIL via torchvision) and anomalib (torchvision, ``antialias=True``)
do; ``"area"`` (OpenCV's pixel-area averaging) is the alternative. Maps come back at each image's own
resolution; with a crop, the part of the image the network never saw gets the map's minimum, so it
can never be reported as a defect -- and cannot be inspected either (documented in the parameters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

INTERPOLATIONS = ("bilinear", "area")


def as_size(value: int | Sequence[int] | None, name: str) -> tuple[int, int] | None:
    """``256`` or ``[h, w]`` -> ``(h, w)``; ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        size = (int(value), int(value))
    else:
        vals = [int(v) for v in value]
        if len(vals) != 2:
            raise ValueError(f"{name} must be one number or [height, width], got {value!r}")
        size = (vals[0], vals[1])
    if min(size) < 32:
        raise ValueError(f"{name} must be at least 32 pixels, got {value!r}")
    return size


@dataclass(frozen=True)
class InputGeometry:
    resize: tuple[int, int]  # (h, w) every image is resized to
    crop: tuple[int, int] | None = None  # (h, w) centre crop of the resized image, or None
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"unknown interpolation {self.interpolation!r}; use one of {', '.join(INTERPOLATIONS)}")
        if self.crop and (self.crop[0] > self.resize[0] or self.crop[1] > self.resize[1]):
            raise ValueError(f"crop {self.crop} is larger than the resized image {self.resize}")

    @property
    def network_size(self) -> tuple[int, int]:
        return self.crop or self.resize

    def _crop_origin(self) -> tuple[int, int]:
        if not self.crop:
            return 0, 0
        # as torchvision's CenterCrop
        return int(round((self.resize[0] - self.crop[0]) / 2.0)), int(round((self.resize[1] - self.crop[1]) / 2.0))

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """A ``uint8`` RGB (or gray) image -> ``uint8`` RGB ``(h, w, 3)`` at the network size."""
        if image.dtype != np.uint8:
            raise ValueError(f"PatchCore expects uint8 images, got {image.dtype}")
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        elif image.ndim == 3 and image.shape[2] == 4:
            image = image[:, :, :3]
        elif image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"PatchCore expects (H, W) or (H, W, 3) images, got shape {image.shape}")
        h, w = self.resize
        if image.shape[:2] != (h, w):
            image = _resize(image, (h, w), self.interpolation)
        if self.crop:
            top, left = self._crop_origin()
            image = image[top:top + self.crop[0], left:left + self.crop[1]]
        return np.ascontiguousarray(image)

    def prepare_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([self.prepare(im) for im in images])

    def restore(self, anomaly_map: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """A map at the network size -> ``float32`` at the original image ``shape`` ``(H, W)``."""
        m = np.asarray(anomaly_map, dtype=np.float32)
        if self.crop:
            full = np.full(self.resize, float(m.min()), dtype=np.float32)
            top, left = self._crop_origin()
            full[top:top + self.crop[0], left:left + self.crop[1]] = m
            m = full
        if m.shape != tuple(shape):
            m = cv2.resize(m, (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_LINEAR)
        return m


def _resize(image: np.ndarray, size: tuple[int, int], interpolation: str) -> np.ndarray:
    h, w = size
    if interpolation == "area":
        shrinking = image.shape[0] >= h and image.shape[1] >= w
        return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    import torch
    import torch.nn.functional as F

    # torch's uint8 antialiased bilinear: PIL's filter (within one grey level), a fast CPU kernel
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0)
    out = F.interpolate(t, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return out[0].permute(1, 2, 0).numpy()
