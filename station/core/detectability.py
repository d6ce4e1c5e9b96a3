"""What a recipe will catch: recall on synthetic defects pasted onto held-out good images.

A grid of defect kinds (:mod:`station.core.synthetic_defects`) x areas (from below to well above the
recipe's minimum defect area) x contrasts (grey levels) is pasted, ``per_cell`` defects a cell, one
defect an image, onto the held-out good images; the recipe inspects them and each defect counts as
**detected** when the image's verdict is NG *and* one of the regions that make it NG (above the
threshold, at least the minimum defect area) covers at least one pixel of the pasted defect. An NG
caused only by a region elsewhere does not count: the station would reject the part for the wrong
reason. Detection is scored on the anomaly maps reduced as the recipe's validation maps are
(:data:`~station.core.teach.VALIDATION_MAP_SIDE`), the maps its threshold was estimated on.

The maps are kept (:class:`DetectabilityMaps`), so a new threshold or minimum area re-scores in a
fraction of a second without running the detector again -- what the teach-in wizard's threshold page
does when the area changes. The result (:class:`DetectabilityTable`) is a kind x area x contrast
table of recall and one sentence per kind; it is stored beside the recipe as ``detectability.json``
(its own ``schema_version``). Deterministic for a seed: the same defects on the same images.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from station.core.progress import CancelToken, ProgressCallback, checkpoint, report
from station.core.regions import defect_mask
from station.core.synthetic_defects import KIND_NAMES, KINDS, PastedDefect, paste_defect
from station.core.teach import VALIDATION_MAP_SIDE, reduce_validation_map
from station.core.units import px_to_mm2

SCHEMA_VERSION = 1
DETECTABILITY_FILE = "detectability.json"
# x the minimum defect area: below it (not to be found), around it, and far above -- the default area
# is 0.1 % of the image, and real defects are often tens of times larger (bottle's: 6-160x, median 24-72x)
DEFAULT_AREA_FACTORS = (0.25, 0.5, 1.0, 4.0, 16.0, 64.0)
DEFAULT_CONTRASTS = (10.0, 20.0, 40.0, 80.0)  # grey levels
TARGET_RECALL = 0.95


class DetectabilityError(ValueError):
    """A detectability file cannot be read (corrupt, or from a newer station)."""


@dataclass(frozen=True)
class DetectabilityGrid:
    """What is pasted: every kind at every area and contrast, ``per_cell`` times."""

    areas_px: tuple[float, ...]
    contrasts: tuple[float, ...] = DEFAULT_CONTRASTS
    kinds: tuple[str, ...] = KINDS
    per_cell: int = 4
    seed: int = 0

    @classmethod
    def around(cls, min_defect_area_px: float, factors: Sequence[float] = DEFAULT_AREA_FACTORS,
               **kw: Any) -> DetectabilityGrid:
        """Areas of ``factors`` x the minimum defect area (at least 1 px each)."""
        areas = tuple(sorted({max(1.0, round(min_defect_area_px * f, 1)) for f in factors}))
        return cls(areas_px=areas, **kw)

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"synthetic defect kinds {unknown or '(none)'}: use some of {', '.join(KINDS)}")
        if not self.areas_px or not self.contrasts or self.per_cell < 1:
            raise ValueError("the detectability grid needs areas, contrasts and at least one defect a cell")

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.kinds), len(self.areas_px), len(self.contrasts)

    @property
    def n_samples(self) -> int:
        k, a, c = self.shape
        return k * a * c * self.per_cell

    def to_dict(self) -> dict[str, Any]:
        return {"kinds": list(self.kinds), "areas_px": list(self.areas_px), "contrasts": list(self.contrasts),
                "per_cell": self.per_cell, "seed": self.seed}


def roi_mask(shape: tuple[int, ...], roi: Sequence[int] | None) -> np.ndarray:
    """Where defects may go when nothing better is known: the region of interest, else the image."""
    allowed = np.zeros(shape[:2], dtype=bool)
    if roi:
        x, y, w, h = (int(v) for v in roi)
        allowed[y:y + h, x:x + w] = True
    else:
        allowed[:] = True
    return allowed


def synthesize(images: Sequence[np.ndarray], grid: DetectabilityGrid, allowed: np.ndarray | None = None
               ) -> Iterator[tuple[tuple[int, int, int], np.ndarray, PastedDefect]]:
    """``((kind, area, contrast) indices, image with the defect, the defect)`` for every sample of the
    grid. Sample ``r`` of a (kind, area) cell goes onto held-out image number ``(k*A + a)*R + r`` (mod
    the number of images, so all are used) with the same shape at every contrast (and the same place,
    but for spots, which go where the surface has room for the contrast)."""
    if not images:
        raise ValueError("detectability needs at least one held-out good image")
    n_areas, per = len(grid.areas_px), grid.per_cell
    for k, kind in enumerate(grid.kinds):
        for a, area in enumerate(grid.areas_px):
            for r in range(per):
                image = images[((k * n_areas + a) * per + r) % len(images)]
                where = allowed if allowed is not None and allowed.shape == image.shape[:2] else None
                for c, contrast in enumerate(grid.contrasts):
                    rng = np.random.default_rng([grid.seed, k, a, r])  # the same shape at each contrast
                    pasted, defect = paste_defect(image, kind, area, contrast, rng, where)
                    yield (k, a, c), pasted, defect


@dataclass
class DetectabilityTable:
    """Recall per kind x area x contrast at one threshold and minimum defect area."""

    kinds: tuple[str, ...]
    areas_px: tuple[float, ...]
    contrasts: tuple[float, ...]
    recall: np.ndarray  # (kinds, areas, contrasts), 0..1
    counts: np.ndarray  # defects scored per cell
    threshold: float
    min_defect_area_px: float
    pixel_size_mm: float | None = None
    seed: int = 0
    n_images: int = 0
    seconds: float | None = None  # pasting + inspecting (the re-scoring is not counted)
    info: dict[str, Any] = field(default_factory=dict)  # e.g. the recipe and where defects were placed

    def area_text(self, area_px: float) -> str:
        if self.pixel_size_mm:
            return f"{px_to_mm2(area_px, self.pixel_size_mm):.3g} mm² ({area_px:g} px)"
        return f"{area_px:g} px"

    def finding(self, kind: str, target: float = TARGET_RECALL) -> tuple[int, int, int, bool]:
        """``(percent, area index, contrast index, reached)``: the smallest area from which on -- it and
        every larger area of the grid -- at least ``target`` is found from some contrast up (every
        higher contrast too), and the lowest recall in that block; or, when no block reaches it, the
        best single cell. A block rather than one cell: a lucky small area followed by a worse larger
        one must not be what the sentence promises."""
        k = self.kinds.index(kind)
        for a in range(len(self.areas_px)):
            for c in range(len(self.contrasts)):
                block = self.recall[k, a:, c:]
                if np.all(block >= target):
                    return math.floor(float(block.min()) * 100 + 1e-9), a, c, True
        a, c = np.unravel_index(int(np.argmax(self.recall[k])), self.recall[k].shape)
        return math.floor(float(self.recall[k, a, c]) * 100 + 1e-9), int(a), int(c), False

    def sentence(self, kind: str, target: float = TARGET_RECALL) -> str:
        """``this recipe finds 95 % of dark spots of 0.5 mm² or larger at contrast >= 20 grey levels``
        (see :meth:`finding`)."""
        pct, a, c, reached = self.finding(kind, target)
        name, area, contrast = KIND_NAMES[kind], self.area_text(self.areas_px[a]), self.contrasts[c]
        if reached:
            larger = " or larger" if a < len(self.areas_px) - 1 else ""
            return (f"this recipe finds {pct} % of {name} of {area}{larger} at contrast >= {contrast:g} "
                    f"grey levels")
        return (f"this recipe finds at most {pct} % of {name} (best: {area} at contrast {contrast:g} grey "
                f"levels); no area finds {target * 100:g} % at every higher area and contrast")

    def sentences(self, target: float = TARGET_RECALL) -> list[str]:
        return [self.sentence(kind, target) for kind in self.kinds]

    def header(self) -> str:
        return (f"recall on {int(self.counts.sum())} synthetic defects pasted onto {self.n_images} held-out good "
                f"images (seed {self.seed}) at threshold {self.threshold:.5g} and minimum defect area "
                f"{self.area_text(self.min_defect_area_px)}; a defect counts as found when the part is NG "
                f"with a region on it")

    def text(self) -> str:
        """The table as plain text, one block per kind (rows: areas; columns: contrasts)."""
        mm = bool(self.pixel_size_mm)
        lines = [self.header(), ""]
        head = f"{'area px' + (' (mm²)' if mm else ''):>20}" + "".join(f"{c:>7g}" for c in self.contrasts)
        for k, kind in enumerate(self.kinds):
            lines.append(f"{KIND_NAMES[kind]} -- recall by contrast (grey levels)")
            lines.append(head)
            for a, area in enumerate(self.areas_px):
                label = f"{area:g}" + (f" ({px_to_mm2(area, self.pixel_size_mm):.3g})" if mm else "")
                below = " <" if area < self.min_defect_area_px else "  "
                cells = "".join(f"{round(float(r) * 100):>6d}%" for r in self.recall[k, a])
                lines.append(f"{label:>18}{below}{cells}")
            lines.append("")
        lines.append("(< : smaller than the minimum defect area, not to be found by design)")
        lines.extend(["", *self.sentences()])
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"kinds": list(self.kinds), "areas_px": list(self.areas_px), "contrasts": list(self.contrasts),
                "recall": np.round(self.recall, 4).tolist(), "counts": self.counts.astype(int).tolist(),
                "threshold": float(self.threshold), "min_defect_area_px": float(self.min_defect_area_px),
                "pixel_size_mm": self.pixel_size_mm, "seed": self.seed, "n_images": self.n_images,
                "seconds": self.seconds, "info": self.info, "sentences": self.sentences()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DetectabilityTable:
        return cls(tuple(d["kinds"]), tuple(float(a) for a in d["areas_px"]), tuple(float(c) for c in d["contrasts"]),
                   np.asarray(d["recall"], dtype=np.float64), np.asarray(d["counts"], dtype=np.int64),
                   float(d["threshold"]), float(d["min_defect_area_px"]), d.get("pixel_size_mm"),
                   int(d.get("seed", 0)), int(d.get("n_images", 0)), d.get("seconds"), dict(d.get("info") or {}))


class _InspectsBatches(Protocol):
    def inspect_batch(self, images: Sequence[np.ndarray]) -> list[Any]: ...


@dataclass
class DetectabilityMaps:
    """The anomaly maps of the synthetic samples, kept to re-score at any threshold and area."""

    grid: DetectabilityGrid
    image_shape: tuple[int, int]  # the inspected area's (H, W): areas are in its pixels
    maps: list[np.ndarray] = field(repr=False)  # reduced, as the validation maps
    masks: list[np.ndarray] = field(repr=False)  # the defects, at the maps' resolution
    cells: np.ndarray = field(repr=False)  # (N, 3) kind, area, contrast indices
    n_images: int = 0
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def detected(self, threshold: float, min_defect_area_px: float) -> np.ndarray:
        """Per sample: NG with a counting region on the defect (see the module's docstring)."""
        out = np.zeros(len(self.maps), dtype=bool)
        for i, (m, mask) in enumerate(zip(self.maps, self.masks, strict=True)):
            if float(m.max()) > threshold:  # nothing above the threshold: nothing to label
                out[i] = bool((defect_mask(m, threshold, min_defect_area_px, self.image_shape) & mask).any())
        return out

    def score(self, threshold: float, min_defect_area_px: float, pixel_size_mm: float | None = None
              ) -> DetectabilityTable:
        found = self.detected(threshold, min_defect_area_px)
        shape = self.grid.shape
        hits = np.zeros(shape)
        counts = np.zeros(shape, dtype=np.int64)
        np.add.at(hits, tuple(self.cells.T), found)
        np.add.at(counts, tuple(self.cells.T), 1)
        recall = np.divide(hits, counts, out=np.zeros(shape), where=counts > 0)
        return DetectabilityTable(self.grid.kinds, self.grid.areas_px, self.grid.contrasts, recall, counts,
                                  float(threshold), float(min_defect_area_px), pixel_size_mm, self.grid.seed,
                                  self.n_images, round(self.seconds, 2), dict(self.info))


def _reduce_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if mask.shape == shape:
        return mask
    # any coverage of a map pixel counts: a 1-px scratch must not vanish in the reduction
    return cv2.resize(mask.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA) > 0


def compute_maps(inspector: _InspectsBatches, images: Sequence[np.ndarray], grid: DetectabilityGrid,
                 allowed: np.ndarray | None = None, batch_size: int = 8, progress: ProgressCallback | None = None,
                 cancel: CancelToken | None = None, info: dict[str, Any] | None = None) -> DetectabilityMaps:
    """Paste the grid onto ``images`` (raw images, as the recipe inspects them; ``allowed``: where
    defects may go, in their pixels) and keep the anomaly maps ``inspector`` (an
    :class:`~station.core.inspection.Inspector`) gives. Cancel points between batches."""
    import time

    t0 = time.perf_counter()
    maps: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    cells: list[tuple[int, int, int]] = []
    shape: tuple[int, int] | None = None
    batch: list[tuple[tuple[int, int, int], np.ndarray, PastedDefect]] = []

    def flush() -> None:
        nonlocal shape
        results = inspector.inspect_batch([im for _, im, _ in batch])
        for (cell, image, defect), res in zip(batch, results, strict=True):
            amap = res.anomaly_map
            shape = shape or (int(amap.shape[0]), int(amap.shape[1]))
            small = reduce_validation_map(amap, VALIDATION_MAP_SIDE)
            masks.append(_reduce_mask(res.inspected(defect.mask(image.shape))[0], small.shape))
            maps.append(small)
            cells.append(cell)
        batch.clear()
        report(progress, "detectability", len(maps), grid.n_samples)

    for sample in synthesize(images, grid, allowed):
        checkpoint(cancel)
        if batch and batch[0][1].shape != sample[1].shape:
            flush()
        batch.append(sample)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return DetectabilityMaps(grid, shape or (1, 1), maps, masks, np.array(cells, dtype=np.int64).reshape(-1, 3),
                             n_images=len(images), seconds=time.perf_counter() - t0, info=dict(info or {}))


# --- stored beside the recipe ------------------------------------------------------------------------
def save_detectability(folder: str | Path, table: DetectabilityTable) -> Path:
    """Write ``table`` as ``detectability.json`` into a recipe's version folder (atomically)."""
    path = Path(folder) / DETECTABILITY_FILE
    data = {"schema_version": SCHEMA_VERSION,
            "computed": datetime.now(timezone.utc).isoformat(timespec="seconds"), **table.to_dict()}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_detectability(folder: str | Path | None) -> DetectabilityTable | None:
    """The table stored in a recipe's version folder; ``None`` where none was computed."""
    if folder is None:
        return None
    path = Path(folder) / DETECTABILITY_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if int(data.get("schema_version", 0)) > SCHEMA_VERSION:
            raise DetectabilityError(f"{path}: written by a newer station (schema {data['schema_version']})")
        return DetectabilityTable.from_dict(data)
    except DetectabilityError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DetectabilityError(f"{path}: unreadable detectability table ({exc})") from exc

