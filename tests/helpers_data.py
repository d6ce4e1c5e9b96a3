"""Synthetic test data: a small MVTec-style category folder with a drawn part and drawn defects."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from station.core.images import save_image


def part_images(n: int, seed: int = 0, shape=(72, 88)) -> list[np.ndarray]:
    """A textured RGB part for the backbone detectors: fixed stripes and a disc, a little noise and
    shift per image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    out = []
    for _ in range(n):
        dx, dy = rng.integers(-1, 2, size=2)
        base = 120 + 40 * np.sin((xx + dx) / 3.0) + 30 * (((xx - 44 - dx) ** 2 + (yy - 36 - dy) ** 2) < 300)
        out.append(np.clip(base[..., None] + rng.normal(0, 4, (*shape, 3)), 0, 255).astype(np.uint8))
    return out


def with_defect(image: np.ndarray) -> np.ndarray:
    """A magenta square on a copy of a :func:`part_images` image."""
    img = image.copy()
    img[10:22, 60:72] = (255, 0, 255)
    return img


def draw_part(rng: np.random.Generator, size: int = 96, defect: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A gray disc with a ring and mild noise; ``defect`` ("spot" or "scratch") adds a dark/bright
    mark. Returns ``(rgb image, defect mask)``."""
    img = np.full((size, size), 40, np.uint8)
    c = size // 2
    cv2.circle(img, (c, c), int(size * 0.4), 170, -1)
    cv2.circle(img, (c, c), int(size * 0.25), 110, 3)
    noise = rng.normal(0, 3, img.shape)
    img = np.clip(img + noise, 0, 255).astype(np.uint8)
    mask = np.zeros((size, size), np.uint8)
    if defect == "spot":
        x, y = rng.integers(c - 15, c + 15, size=2)
        cv2.circle(mask, (int(x), int(y)), 6, 1, -1)
        img[mask > 0] = 250
    elif defect == "scratch":
        x0, y0 = rng.integers(c - 20, c - 5, size=2)
        cv2.line(mask, (int(x0), int(y0)), (int(x0) + 22, int(y0) + 14), 1, 3)
        img[mask > 0] = 10
    return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB), mask.astype(bool)


def make_mvtec_category(root: Path, n_train: int = 12, n_good_test: int = 4, n_defect: int = 4,
                        size: int = 96, seed: int = 0) -> Path:
    """Write ``train/good``, ``test/{good,spot,scratch}`` and ``ground_truth/<type>/NNN_mask.png``."""
    rng = np.random.default_rng(seed)
    for i in range(n_train):
        save_image(root / "train" / "good" / f"{i:03d}.png", draw_part(rng, size)[0])
    for i in range(n_good_test):
        save_image(root / "test" / "good" / f"{i:03d}.png", draw_part(rng, size)[0])
    for kind in ("spot", "scratch"):
        for i in range(n_defect):
            img, mask = draw_part(rng, size, kind)
            save_image(root / "test" / kind / f"{i:03d}.png", img)
            save_image(root / "ground_truth" / kind / f"{i:03d}_mask.png", mask.astype(np.uint8) * 255)
    return root
