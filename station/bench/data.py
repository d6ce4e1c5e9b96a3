"""Benchmark images: MVTec AD bottle where it is present, else the synthetic demo part."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BOTTLE_CANDIDATES = ("../shared/data/mvtec_ad/bottle", "shared/data/mvtec_ad/bottle", "data/mvtec_ad/bottle")


@dataclass
class BenchData:
    source: str  # what the images are, for the report
    train: list[np.ndarray]
    test: list[np.ndarray]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.train[0].shape


def find_bottle(explicit: Path | None = None) -> Path | None:
    """``explicit``, ``$STATION_MVTEC_ROOT/bottle``, or the usual checkout-relative places."""
    candidates = []
    if explicit is not None:
        candidates.append(Path(explicit))
    root = os.environ.get("STATION_MVTEC_ROOT")
    if root:
        candidates.append(Path(root) / "bottle")
    here = Path(__file__).resolve().parents[2]  # the checkout, when run from source
    candidates += [here / c for c in BOTTLE_CANDIDATES] + [Path.cwd() / c for c in BOTTLE_CANDIDATES]
    for c in candidates:
        if (c / "train" / "good").is_dir():
            return c
    return None


def load_bench_data(n_fit: int, n_test: int, data: Path | None = None, synthetic: bool = False,
                    synthetic_size: int = 900) -> BenchData:
    """``n_fit`` training and ``n_test`` test images: bottle's (900x900 RGB) if found (and not
    ``synthetic``), else the synthetic washer rendered at ``synthetic_size`` pixels."""
    bottle = None if synthetic else find_bottle(data)
    if bottle is not None:
        from station.core.datasets import MVTecCategory, iter_images

        category = MVTecCategory(bottle)
        train = [im for _, im in iter_images(category.train_good()[:n_fit], "rgb")]
        test = [im for _, im in iter_images(category.test()[:n_test], "rgb")]
        if train and test:
            return BenchData(f"MVTec AD bottle ({bottle})", train, test)
    from station.acquisition.synthetic import SyntheticPart

    part = SyntheticPart(seed=0, size=synthetic_size)
    return BenchData(f"synthetic washer {synthetic_size}x{synthetic_size}", part.good_images(n_fit),
                     part.good_images(n_test, start=n_fit))
