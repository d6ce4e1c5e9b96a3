"""Camera pixel formats (GenICam PFNC names) to the station's ``uint8`` RGB or gray images.

Supported: ``Mono8/10/12/14/16`` (packed variants arrive unpacked from harvesters), ``RGB8``,
``BGR8``, ``RGBa8``, ``BGRa8``, ``RGB10/12/16`` and ``BGR10/12/16``, and the four Bayer patterns at 8,
10, 12 and 16 bits (demosaiced by OpenCV). Higher bit depths are scaled to 8 bits by dropping the
low bits, which keeps the camera's full range on the station's scale.

The result never shares memory with the input: a camera buffer goes back to the driver as soon as
the caller leaves ``with ia.fetch() as buffer:``, and a frame must outlive it.
"""

from __future__ import annotations

import re
from typing import Literal

import cv2
import numpy as np

OutputMode = Literal["native", "rgb", "gray"]

# GenICam names the colour of the first two pixels of the first row; so do OpenCV's *RGGB-style codes.
_BAYER_CODES = {
    "RG": cv2.COLOR_BayerRGGB2RGB,
    "GR": cv2.COLOR_BayerGRBG2RGB,
    "GB": cv2.COLOR_BayerGBRG2RGB,
    "BG": cv2.COLOR_BayerBGGR2RGB,
}
_FORMAT = re.compile(r"^(?P<kind>Mono|Bayer(?P<pattern>RG|GR|GB|BG)|RGBa|BGRa|RGB|BGR)(?P<bits>8|10|12|14|16)"
                     r"(?P<packing>p|Packed)?$")


class PixelFormatError(ValueError):
    """A pixel format the station cannot convert, or data that does not fit the announced size."""


def supported_formats() -> list[str]:
    mono = [f"Mono{b}{p}" for b in (8, 10, 12, 14, 16) for p in ("", "p", "Packed") if b != 8 or not p]
    bayer = [f"Bayer{c}{b}{p}" for c in _BAYER_CODES for b in (8, 10, 12, 16) for p in ("", "p", "Packed")
             if b not in (8, 16) or not p]
    colour = ["RGB8", "BGR8", "RGBa8", "BGRa8"] + [f"{c}{b}" for c in ("RGB", "BGR") for b in (10, 12, 16)]
    return mono + colour + bayer


def is_supported(pixel_format: str) -> bool:
    m = _FORMAT.match(pixel_format)
    return bool(m) and not (m["kind"] in ("RGBa", "BGRa") and m["bits"] != "8")


def bit_depth(pixel_format: str) -> int:
    m = _FORMAT.match(pixel_format)
    if not m:
        raise PixelFormatError(_unsupported(pixel_format))
    return int(m["bits"])


def _unsupported(pixel_format: str) -> str:
    return (f"pixel format {pixel_format!r} is not supported; choose one of Mono8..16, RGB8, BGR8, RGBa8, "
            "BGRa8 or Bayer 8..16 bit on the camera")


def _to_8bit(values: np.ndarray, bits: int) -> np.ndarray:
    if bits == 8:
        return values.astype(np.uint8, copy=True)
    if values.dtype == np.uint8:  # raw bytes of a 16-bit container: little-endian, as GenICam sends it
        values = values.view("<u2")
    return (values >> (bits - 8)).astype(np.uint8)


def convert(data: np.ndarray, width: int, height: int, pixel_format: str,
            output: OutputMode = "native") -> np.ndarray:
    """Turn one camera image into a station image.

    Parameters
    ----------
    data
        The pixel data as delivered (1-D or already shaped; ``uint8`` for 8-bit formats, ``uint16`` or
        raw little-endian bytes for the others; row padding already removed).
    width, height
        The image size.
    pixel_format
        The PFNC name, e.g. ``"Mono12"`` or ``"BayerRG8"``.
    output
        ``"native"`` keeps mono cameras gray and colour cameras RGB; ``"rgb"`` or ``"gray"`` force one.

    Returns
    -------
    numpy.ndarray
        ``uint8`` ``(H, W)`` or ``(H, W, 3)`` RGB, a new array.
    """
    m = _FORMAT.match(pixel_format)
    if not m or not is_supported(pixel_format):
        raise PixelFormatError(_unsupported(pixel_format))
    kind, bits = m["kind"], int(m["bits"])
    channels = {"RGBa": 4, "BGRa": 4, "RGB": 3, "BGR": 3}.get(kind, 1)
    flat = np.asarray(data).reshape(-1)
    values_per_image = width * height * channels
    bytes_per_value = 1 if bits == 8 else 2
    available = flat.size if flat.dtype != np.uint8 or bits == 8 else flat.size // bytes_per_value
    if available < values_per_image:
        raise PixelFormatError(f"{pixel_format} {width}x{height}: the buffer holds {available} values, "
                               f"{values_per_image} needed (incomplete frame?)")
    if flat.dtype == np.uint8 and bits > 8:
        flat = flat[:values_per_image * 2]
    else:
        flat = flat[:values_per_image]
    pixels = _to_8bit(flat, bits)
    if channels == 1:
        image = pixels.reshape(height, width)
        if kind.startswith("Bayer"):
            image = cv2.cvtColor(image, _BAYER_CODES[m["pattern"]])
    else:
        image = pixels.reshape(height, width, channels)
        if kind in ("BGR", "BGRa"):
            image = image[:, :, 2::-1]
        elif channels == 4:
            image = image[:, :, :3]
        image = np.ascontiguousarray(image)
    if output == "gray" and image.ndim == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if output == "rgb" and image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if output not in ("native", "rgb", "gray"):
        raise ValueError(f"unknown output mode {output!r}; use 'native', 'rgb' or 'gray'")
    return image
