"""Cutting a texture image into overlapping patches and averaging the patch maps back together."""

from __future__ import annotations

import numpy as np


def patch_starts(size: int, patch: int, stride: int) -> list[int]:
    """Start offsets along one axis: every ``stride`` pixels, plus one patch flush with the far edge
    so every pixel is covered."""
    if patch > size:
        raise ValueError(f"patch of {patch} px does not fit an image side of {size} px")
    if stride < 1:
        raise ValueError(f"the patch stride must be at least 1 px; got {stride}")
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def patch_grid(shape: tuple[int, int], patch: int, stride: int) -> list[tuple[int, int]]:
    """``(y, x)`` corners of the patches covering an image of ``shape``, row by row."""
    return [(y, x) for y in patch_starts(shape[0], patch, stride) for x in patch_starts(shape[1], patch, stride)]


def extract_patches(image: np.ndarray, corners: list[tuple[int, int]], patch: int) -> np.ndarray:
    """``(len(corners), patch, patch, ...)`` crops of ``image``."""
    return np.stack([image[y:y + patch, x:x + patch] for y, x in corners])


def average_patch_maps(maps: np.ndarray, corners: list[tuple[int, int]], shape: tuple[int, int]) -> np.ndarray:
    """The mean of the overlapping patch maps at every pixel of an image of ``shape``."""
    total = np.zeros(shape, dtype=np.float64)
    count = np.zeros(shape, dtype=np.float64)
    p = maps.shape[-1]
    for m, (y, x) in zip(maps, corners, strict=True):
        total[y:y + p, x:x + p] += m
        count[y:y + p, x:x + p] += 1.0
    return (total / np.maximum(count, 1.0)).astype(np.float32)
