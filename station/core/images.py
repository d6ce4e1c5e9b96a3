"""Reading and writing images, with clear errors instead of crashes.

Convention used throughout the station: an image is a ``numpy.uint8`` array, either ``(H, W)``
grayscale or ``(H, W, 3)`` **RGB** (OpenCV's BGR order never leaves this module and the camera
converters).

Every image file the station reads (teach, evaluation, the folder source, the wizard's import,
``inspect-image``) goes through :func:`load_image`, which reads the size from the file's header first
(Pillow's lazy open: no pixels are decoded) and refuses an image over :func:`max_image_pixels` --
so a small file that declares 20000x20000 pixels costs nothing -- as well as a file that is not an
image whatever its name says, or one that is truncated.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp")

ColorMode = Literal["rgb", "gray", "keep"]


DEFAULT_MAX_IMAGE_PIXELS = 100_000_000  # 10000x10000; a line-scan strip of 16k x 6k still passes
MAX_PIXELS_ENV = "STATION_MAX_IMAGE_PIXELS"
_max_pixels: int | None = None  # set_max_image_pixels; else the environment; else the default


class ImageLoadError(Exception):
    """An image file is missing, unreadable, truncated or not an image."""


class ImageTooLargeError(ImageLoadError):
    """An image whose header declares more pixels than the station accepts."""


def max_image_pixels() -> int:
    """The most pixels (width x height) an image file may declare: :func:`set_max_image_pixels`, else
    ``$STATION_MAX_IMAGE_PIXELS``, else 100 million."""
    if _max_pixels is not None:
        return _max_pixels
    env = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    return int(env) if env.isdigit() and int(env) > 0 else DEFAULT_MAX_IMAGE_PIXELS


def set_max_image_pixels(pixels: int | None) -> None:
    """Set the pixel limit for this process (``None``: back to the environment/default)."""
    global _max_pixels
    if pixels is not None and int(pixels) < 1:
        raise ValueError(f"the pixel limit must be positive, got {pixels}")
    _max_pixels = None if pixels is None else int(pixels)


def read_image_header(path: str | os.PathLike[str]) -> tuple[int, int, str]:
    """``(width, height, format)`` from the file's header, without decoding its pixels.

    Raises
    ------
    ImageLoadError
        If the content is no image format the station reads (whatever the file's suffix says).
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # our own limit decides; a broken EXIF block is no error
            with Image.open(p) as im:
                return int(im.size[0]), int(im.size[1]), str(im.format or "?")
    except Image.DecompressionBombError as exc:  # beyond Pillow's own ceiling: far beyond ours too
        found = re.search(r"\((\d+) pixels\)", str(exc))
        declared = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        raise ImageTooLargeError(f"{p}: the header declares {declared}" + _limit_hint()) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:  # Pillow's ways to say "broken"
        fmt = _format_by_magic(p)
        if fmt:
            raise ImageLoadError(f"{p}: not a readable image (a corrupt or truncated {fmt} file)") from None
        if isinstance(exc, UnidentifiedImageError):
            raise ImageLoadError(f"{p}: not a readable image (its content is no PNG, JPEG, BMP, TIFF, PNM "
                                 f"or WebP, whatever the name {p.suffix or '(no suffix)'} says)") from None
        raise ImageLoadError(f"{p}: broken image header ({exc})") from None


_MAGIC = ((b"\x89PNG", "PNG"), (b"\xff\xd8", "JPEG"), (b"BM", "BMP"), (b"II*\0", "TIFF"), (b"MM\0*", "TIFF"),
          (b"RIFF", "WebP"), (b"P5", "PNM"), (b"P6", "PNM"), (b"P2", "PNM"), (b"P3", "PNM"))


def _format_by_magic(path: Path) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    return next((name for magic, name in _MAGIC if head.startswith(magic)), None)


def _limit_hint() -> str:
    return (f"; the station accepts up to {max_image_pixels():,} pixels (set ${MAX_PIXELS_ENV} or "
            f"--max-image-pixels to change it, or reduce the image)")


def check_image_header(path: str | os.PathLike[str]) -> tuple[int, int, str]:
    """:func:`read_image_header`, refusing an image over the pixel limit (``ImageTooLargeError``)."""
    w, h, fmt = read_image_header(path)
    if w * h > max_image_pixels():
        raise ImageTooLargeError(f"{Path(path)}: the {fmt} header declares {w}x{h} = {w * h:,} pixels"
                                 + _limit_hint())
    return w, h, fmt


def _truncated(fmt: str, data: np.ndarray) -> bool:
    """A file that ends before its image does. A JPEG decoder would fill the missing rows with grey
    silently; PNG and BMP decoders fail, but noisily on stderr -- checked here first."""
    tail = data[-4096:].tobytes().rstrip(b"\0")
    if fmt == "JPEG":
        return not tail.endswith(b"\xff\xd9")
    if fmt == "PNG":
        return b"IEND" not in tail[-16:]
    if fmt == "BMP" and data.size >= 6:
        return data.size < int.from_bytes(data[2:6].tobytes(), "little")
    return False


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
        if p.stat().st_size == 0:
            raise ImageLoadError(f"{p}: file is empty")
    except OSError as exc:
        raise ImageLoadError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    w, h, fmt = check_image_header(p)  # before a single pixel is decoded
    try:
        data = np.fromfile(p, dtype=np.uint8)  # fromfile + imdecode also handles non-ASCII paths on Windows
    except OSError as exc:
        raise ImageLoadError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    if _truncated(fmt, data):
        raise ImageLoadError(f"{p}: not a readable image (a truncated {fmt} file: it ends before the image does)")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ImageLoadError(f"{p}: not a readable {fmt} image (corrupt or truncated?)")
    if image.shape[:2] != (h, w):
        raise ImageLoadError(f"{p}: decodes to {image.shape[1]}x{image.shape[0]} but its header says {w}x{h}")
    image = to_uint8(image)
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
        image = cv2.cvtColor(image, code)
    return convert_color(image, mode)


def load_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a ground-truth mask as ``bool`` (any non-zero pixel is defect)."""
    mask = load_image(path, mode="gray")
    return mask > 0


def save_image(path: str | os.PathLike[str], image: np.ndarray, jpeg_quality: int = 95) -> Path:
    """Write an RGB/gray ``uint8`` image; the format follows the suffix (``jpeg_quality`` 0-100 for
    ``.jpg``). Written via a temp file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    suffix = p.suffix or ".png"
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if suffix.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(suffix, bgr, params)
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
