"""Pixel format conversion: every supported format gives the right uint8 image, never a view of the buffer."""

from __future__ import annotations

import numpy as np
import pytest

from station.acquisition.pixels import PixelFormatError, convert, is_supported, supported_formats


@pytest.fixture
def rgb(rng) -> np.ndarray:
    """A smooth colour image (demosaicing is exact enough on smooth images to compare)."""
    h, w = 32, 48
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)], axis=2)
    return img.astype(np.uint8)


def test_mono8_is_copied_not_viewed():
    data = np.arange(12, dtype=np.uint8)
    out = convert(data, 4, 3, "Mono8")
    assert out.shape == (3, 4) and out.dtype == np.uint8
    data[:] = 0  # the driver reuses its buffer
    assert out[2, 3] == 11


@pytest.mark.parametrize("bits", [10, 12, 14, 16])
def test_mono_high_bit_depths_scale_to_8_bits(bits):
    full = (1 << bits) - 1
    values = np.array([0, full // 2, full, 1 << (bits - 8)], dtype=np.uint16)
    out = convert(values, 2, 2, f"Mono{bits}")
    assert out.tolist() == [[0, 127], [255, 1]]
    raw = values.astype("<u2").view(np.uint8)  # the same pixels as raw little-endian bytes
    assert convert(raw, 2, 2, f"Mono{bits}").tolist() == out.tolist()


def test_packed_formats_are_accepted_once_unpacked():
    assert convert(np.array([4095, 0], dtype=np.uint16), 2, 1, "Mono12p").tolist() == [[255, 0]]
    assert is_supported("Mono10Packed") and is_supported("BayerGB12p")


def test_colour_orders(rgb):
    h, w = rgb.shape[:2]
    assert np.array_equal(convert(rgb.ravel(), w, h, "RGB8"), rgb)
    assert np.array_equal(convert(rgb[:, :, ::-1].ravel(), w, h, "BGR8"), rgb)
    rgba = np.concatenate([rgb, np.full((h, w, 1), 255, np.uint8)], axis=2)
    assert np.array_equal(convert(rgba.ravel(), w, h, "RGBa8"), rgb)
    bgra = np.concatenate([rgb[:, :, ::-1], np.full((h, w, 1), 7, np.uint8)], axis=2)
    assert np.array_equal(convert(bgra.ravel(), w, h, "BGRa8"), rgb)
    rgb16 = rgb.astype(np.uint16) << 4
    assert np.array_equal(convert(rgb16.ravel(), w, h, "RGB12"), rgb)


_CELLS = {"RG": ("RG", "GB"), "GR": ("GR", "BG"), "GB": ("GB", "RG"), "BG": ("BG", "GR")}


def _mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Sample an RGB image through the colour filter array whose 2x2 cell starts with ``pattern``."""
    channel = {"R": 0, "G": 1, "B": 2}
    out = np.zeros(rgb.shape[:2], np.uint8)
    for dy, row in enumerate(_CELLS[pattern]):
        for dx, colour in enumerate(row):
            out[dy::2, dx::2] = rgb[dy::2, dx::2, channel[colour]]
    return out


@pytest.mark.parametrize("pattern", ["RG", "GR", "GB", "BG"])
def test_bayer_patterns_demosaic_to_the_right_colours(rgb, pattern):
    h, w = rgb.shape[:2]
    raw = _mosaic(rgb, pattern)
    out = convert(raw.ravel(), w, h, f"Bayer{pattern}8")
    assert out.shape == (h, w, 3)
    inner = (slice(2, -2), slice(2, -2))
    err = np.abs(out[inner].astype(int) - rgb[inner].astype(int)).mean(axis=(0, 1))
    assert err.max() < 6, err  # a wrong pattern swaps or mixes channels: errors of tens
    out12 = convert((raw.astype(np.uint16) << 4).ravel(), w, h, f"Bayer{pattern}12")
    assert np.abs(out12.astype(int) - out.astype(int)).max() <= 1


def test_output_modes(rgb):
    h, w = rgb.shape[:2]
    gray = convert(rgb.ravel(), w, h, "RGB8", output="gray")
    assert gray.shape == (h, w)
    as_rgb = convert(np.zeros(w * h, np.uint8), w, h, "Mono8", output="rgb")
    assert as_rgb.shape == (h, w, 3)


def test_unsupported_and_short_buffers_fail_clearly():
    with pytest.raises(PixelFormatError, match="not supported"):
        convert(np.zeros(16, np.uint8), 4, 4, "YCbCr422_8")
    with pytest.raises(PixelFormatError, match="incomplete"):
        convert(np.zeros(10, np.uint8), 4, 4, "Mono8")
    with pytest.raises(PixelFormatError):
        convert(np.zeros(64, np.uint8), 4, 4, "RGBa12")
    assert "Mono12" in supported_formats() and "BayerBG8" in supported_formats()
