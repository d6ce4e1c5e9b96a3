"""Reading and writing images, with clear errors instead of crashes.

Convention used throughout the station: an image is a ``numpy.uint8`` array, either ``(H, W)``
grayscale or ``(H, W, 3)`` **RGB** (OpenCV's BGR order never leaves this module and the camera
converters).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp")

ColorMode = Literal["rgb", "gray", "keep"]


class ImageLoadError(Exception):
    """An image file is missing, unreadable, truncated or not an image."""


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Scale a 16-bit or float image to ``uint8`` (full-scale for integers, 0..1 for floats)."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    raise ImageLoadError(f"unsupported pixel type {image.dtype}")


def convert_color(image: np.ndarray, mode: ColorMode) -> np.ndarray:
    """Convert an RGB/gray/RGBA ``uint8`` image to the requested colour mode."""
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if mode == "keep":
        return np.ascontiguousarray(image)
    if mode == "gray":
        return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if mode == "rgb":
        return np.ascontiguousarray(image) if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    raise ValueError(f"unknown colour mode {mode!r}; use 'rgb', 'gray' or 'keep'")


def load_image(path: str | os.PathLike[str], mode: ColorMode = "keep") -> np.ndarray:
    """Read an image file as ``uint8`` RGB or gray.

    Raises
    ------
    ImageLoadError
        With the file name and the reason, if the file is missing, empty, truncated or not an image.
    """
    p = Path(path)
    if not p.exists():
        raise ImageLoadError(f"{p}: file not found")
    if not p.is_file():
        raise ImageLoadError(f"{p}: not a file")
    try:
        data = np.fromfile(p, dtype=np.uint8)  # fromfile + imdecode also handles non-ASCII paths on Windows
    except OSError as exc:
        raise ImageLoadError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    if data.size == 0:
        raise ImageLoadError(f"{p}: file is empty")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ImageLoadError(f"{p}: not a readable image (corrupt or truncated?)")
    image = to_uint8(image)
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
        image = cv2.cvtColor(image, code)
    return convert_color(image, mode)


def load_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a ground-truth mask as ``bool`` (any non-zero pixel is defect)."""
    mask = load_image(path, mode="gray")
    return mask > 0


def save_image(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write an RGB/gray ``uint8`` image; the format follows the suffix. Written via a temp file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    ok, buf = cv2.imencode(p.suffix or ".png", bgr)
    if not ok:
        raise OSError(f"{p}: could not encode image")
    tmp = p.with_name(p.name + ".tmp")
    buf.tofile(tmp)
    os.replace(tmp, p)
    return p


def resize_to(image: np.ndarray, size: tuple[int, int], interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    """Resize to ``(height, width)``."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    return cv2.resize(image, (w, h), interpolation=interpolation)
