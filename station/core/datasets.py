"""Image collections: MVTec AD category folders and plain folders of images.

Listing never reads pixels; reading happens in :func:`iter_images`, which skips (and records) any
file that cannot be read, so one corrupt PNG never stops a training or an evaluation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from station.core.images import ColorMode, ImageLoadError, is_image_file, load_image, load_mask

log = logging.getLogger(__name__)

GOOD = "good"


class DatasetError(Exception):
    """A data folder is missing, empty or not laid out as expected."""


@dataclass(frozen=True)
class Sample:
    """One image of a data set. ``label`` is ``"good"`` or the defect type (the MVTec sub-folder)."""

    path: Path
    label: str = GOOD
    mask_path: Path | None = None

    @property
    def is_anomalous(self) -> bool:
        return self.label != GOOD

    @property
    def name(self) -> str:
        return f"{self.label}/{self.path.name}"


@dataclass
class Problems:
    """Files that were skipped, with the reason; shown to the user, never raised."""

    items: list[tuple[Path, str]] = field(default_factory=list)

    def add(self, path: Path, message: str) -> None:
        log.warning("%s: %s", path, message)
        self.items.append((path, message))

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def summary(self) -> str:
        return "\n".join(f"  {p}: {m}" for p, m in self.items)


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` sorted by name (hidden files and non-images ignored)."""
    if not folder.is_dir():
        raise DatasetError(f"{folder}: folder not found")
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if is_image_file(p))


@dataclass
class MVTecCategory:
    """One MVTec AD category: ``train/good``, ``test/<type>`` and ``ground_truth/<type>/NNN_mask.png``."""

    root: Path
    problems: Problems = field(default_factory=Problems)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: folder not found")
        if not (self.root / "train").is_dir() and not (self.root / "test").is_dir():
            cats = sorted(p.name for p in self.root.iterdir() if (p / "train").is_dir())
            hint = f" It holds the categories {', '.join(cats)}: pick one." if cats else ""
            raise DatasetError(f"{self.root}: not an MVTec AD category (no train/ or test/ folder).{hint}")

    @property
    def name(self) -> str:
        return self.root.name

    def train_good(self) -> list[Sample]:
        folder = self.root / "train" / GOOD
        if not folder.is_dir():
            raise DatasetError(f"{folder}: no training images (train/good is missing)")
        samples = [Sample(p) for p in list_images(folder)]
        if not samples:
            raise DatasetError(f"{folder}: folder holds no images")
        return samples

    def defect_types(self) -> list[str]:
        test = self.root / "test"
        if not test.is_dir():
            return []
        return sorted(p.name for p in test.iterdir() if p.is_dir() and p.name != GOOD)

    def test(self) -> list[Sample]:
        """All test images; a defective image without its mask is kept (image-level metrics still
        count it) and reported in :attr:`problems`."""
        test = self.root / "test"
        if not test.is_dir():
            raise DatasetError(f"{test}: no test images (test/ is missing)")
        samples: list[Sample] = []
        for sub in sorted(p for p in test.iterdir() if p.is_dir()):
            for path in list_images(sub):
                if sub.name == GOOD:
                    samples.append(Sample(path))
                    continue
                mask = self.root / "ground_truth" / sub.name / f"{path.stem}_mask.png"
                if not mask.is_file():
                    self.problems.add(path, f"ground-truth mask {mask.relative_to(self.root)} is missing; "
                                            "the image counts for image-level metrics only")
                    mask = None
                samples.append(Sample(path, sub.name, mask))
        if not samples:
            raise DatasetError(f"{test}: no test images found")
        return samples


@dataclass
class ImageFolder:
    """Any folder of images, all taken as good parts (for teaching) or unlabelled (for scoring)."""

    root: Path
    recursive: bool = True
    problems: Problems = field(default_factory=Problems)

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    @property
    def name(self) -> str:
        return self.root.name

    def samples(self) -> list[Sample]:
        paths = list_images(self.root, recursive=self.recursive)
        if not paths:
            raise DatasetError(f"{self.root}: folder holds no images ({', '.join(('png', 'jpg', 'bmp', 'tif'))} ...)")
        return [Sample(p) for p in paths]

    train_good = samples


def is_mvtec_category(path: Path) -> bool:
    return (Path(path) / "train" / GOOD).is_dir() or (Path(path) / "ground_truth").is_dir()


def open_dataset(path: str | Path) -> MVTecCategory | ImageFolder:
    """An MVTec category if ``path`` is laid out like one, else a plain image folder."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: folder not found")
    if not p.is_dir():
        raise DatasetError(f"{p}: not a folder")
    return MVTecCategory(p) if is_mvtec_category(p) else ImageFolder(p)


def iter_images(
    samples: Sequence[Sample], mode: ColorMode = "rgb", problems: Problems | None = None
) -> Iterator[tuple[Sample, np.ndarray]]:
    """Yield ``(sample, image)``, skipping unreadable files (recorded in ``problems``)."""
    for s in samples:
        try:
            yield s, load_image(s.path, mode)
        except ImageLoadError as exc:
            if problems is None:
                log.warning("skipped %s", exc)
            else:
                problems.add(s.path, str(exc).removeprefix(f"{s.path}: "))


def load_ground_truth(sample: Sample, shape: tuple[int, int], problems: Problems | None = None) -> np.ndarray | None:
    """The sample's defect mask (``bool``, image shape); all-False for good images; ``None`` if the
    mask is missing or unreadable (reported), so the image is left out of pixel-level metrics."""
    if not sample.is_anomalous:
        return np.zeros(shape, dtype=bool)
    if sample.mask_path is None:
        return None
    try:
        mask = load_mask(sample.mask_path)
    except ImageLoadError as exc:
        if problems is not None:
            problems.add(sample.path, f"ground truth unreadable ({exc}); image-level metrics only")
        return None
    if mask.shape != tuple(shape):
        if problems is not None:
            problems.add(sample.path, f"ground-truth mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                                      f"{shape[1]}x{shape[0]}; image-level metrics only")
        return None
    return mask


def split_validation(samples: Sequence[Sample], fraction: float, seed: int = 0) -> tuple[list[Sample], list[Sample]]:
    """Hold out ``fraction`` of good samples (at least one, if there are two or more) for threshold
    estimation; deterministic for a given seed. Returns ``(train, validation)``."""
    n = len(samples)
    if n < 2 or fraction <= 0:
        return list(samples), []
    n_val = min(n - 1, max(1, round(n * fraction)))
    order = np.random.default_rng(seed).permutation(n)
    val_idx = set(order[:n_val].tolist())
    train = [s for i, s in enumerate(samples) if i not in val_idx]
    val = [s for i, s in enumerate(samples) if i in val_idx]
    return train, val
