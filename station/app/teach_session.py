"""The one model the teach-in wizard's pages share: a plain dataclass, usable (and tested) without Qt.

Each wizard page reads and writes fields of :class:`TeachSession`; the long steps (importing a
folder, training) are methods that take a progress callback and a cancel token so the window runs
them on a worker. Nothing touches the models folder before :meth:`TeachSession.save`, so cancelling
the wizard at any point leaves nothing behind; ``save`` itself writes atomically (``save_recipe``).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from station.acquisition.camera_choice import with_camera_settings
from station.app.audit import AuditLog
from station.app.param_docs import ParamText, docstring_parameters, param_text
from station.app.recipes import check_part_name, next_version
from station.app.sample_pool import SamplePool
from station.core.datasets import MVTecCategory, Problems, iter_images, open_dataset
from station.core.detectability import DetectabilityMaps, DetectabilityTable, save_detectability
from station.core.progress import CancelToken, ProgressCallback, checkpoint, report
from station.core.recipe import Recipe, save_recipe
from station.core.teach import TeachResult, default_min_defect_area
from station.core.threshold import ThresholdEstimate
from station.core.units import area_from_px, area_to_px
from station.detectors.base import RUNTIME_OPTIONS, detector_class
from station.detectors.runtime import teach_detector

log = logging.getLogger(__name__)

MIN_IMAGES = 4  # at least 3 to learn from and 1 held out; the wizard recommends far more
RECOMMENDED_IMAGES = 20
MIN_ROI_SIDE = 32  # smaller crops leave the deep detectors' feature maps a few cells wide

Roi = tuple[int, int, int, int]  # x, y, width, height in pixels of the original image


@dataclass(frozen=True)
class ParamSpec:
    """One main parameter of a detector, as the wizard shows it (from the constructor's signature)."""

    name: str
    default: Any
    kind: type  # int, float, bool or str
    text: ParamText | None = None  # label, unit, tooltip, choices (from the detector's docstring)

    @property
    def label(self) -> str:
        return self.text.label if self.text else self.name.replace("_", " ")


def detector_params(kind: str) -> list[ParamSpec]:
    """The simple (int/float/bool/str) constructor parameters of detector ``kind`` with their
    defaults and what they mean. Raises ``ImportError`` (or the detector module's own error) if it
    cannot be loaded."""
    cls = detector_class(kind)
    docs = docstring_parameters(cls.__doc__)
    specs = []
    for p in inspect.signature(cls).parameters.values():
        if p.name in RUNTIME_OPTIONS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.default is p.empty:
            continue
        if isinstance(p.default, (bool, int, float, str)):
            text = param_text(p.name, p.default, docs.get(p.name, ""))
            specs.append(ParamSpec(p.name, p.default, type(p.default), text))
    return specs


def fit_roi(roi: Sequence[float] | None, shape: tuple[int, ...]) -> Roi | None:
    """``roi`` (x, y, w, h) clamped into an image of ``shape``; ``None`` for the whole image (also when
    the clamped region covers all of it, so a recipe never carries a crop that crops nothing).

    Raises ``ValueError`` when the region is malformed or, once clamped, smaller than
    ``MIN_ROI_SIDE`` pixels on a side (or the image's side, for tiny images).
    """
    if roi is None:
        return None
    if len(roi) != 4:
        raise ValueError(f"a region of interest is x, y, width, height; got {list(roi)}")
    x, y, w, h = (round(float(v)) for v in roi)
    H, W = int(shape[0]), int(shape[1])
    if w <= 0 or h <= 0:
        raise ValueError(f"the region of interest needs a positive width and height; got {w}x{h}")
    x0, y0 = min(max(x, 0), W), min(max(y, 0), H)
    x1, y1 = min(max(x + w, 0), W), min(max(y + h, 0), H)
    need_w, need_h = min(MIN_ROI_SIDE, W), min(MIN_ROI_SIDE, H)
    if x1 - x0 < need_w or y1 - y0 < need_h:
        raise ValueError(f"the region of interest must lie inside the {W}x{H} image and be at least "
                         f"{need_w}x{need_h} pixels; inside the image it is {x1 - x0}x{y1 - y0}")
    if (x0, y0, x1, y1) == (0, 0, W, H):
        return None
    return x0, y0, x1 - x0, y1 - y0


@dataclass
class TeachSession:
    """Everything the teach-in collects, page by page."""

    models_dir: Path
    part_name: str = ""
    source_uri: str = "synthetic://demo?fps=30&defect_rate=0"
    camera_settings: dict[str, Any] = field(default_factory=dict)  # URI options kept with the recipe
    images: list[np.ndarray] = field(default_factory=list, repr=False)  # good samples, raw
    origins: list[str] = field(default_factory=list)  # where each sample came from
    groups: list[int] = field(default_factory=list)  # per sample: 0 teach-in samples, 1 marked false rejects
    problems: list[str] = field(default_factory=list)  # samples refused, with the reason
    sample_sources: dict[str, int] = field(default_factory=dict)  # "folder <path>" / "camera <uri>" -> samples
    detector_kind: str = "variation"
    params: dict[str, Any] = field(default_factory=dict)
    validation_fraction: float = 0.2
    seed: int = 0
    pixel_size_mm: float | None = None
    min_defect_area_px: float | None = None  # None: the default for the image size
    result: TeachResult | None = field(default=None, repr=False)
    estimate: ThresholdEstimate | None = None
    saved_path: Path | None = None
    keep_samples: bool = True  # save writes the samples into the part's good-sample pool (a re-teach, taught
    # from the pool, leaves it as it is: station.app.reteach)
    # page 5: the synthetic-defect maps of the current training and their table at the chosen threshold
    detectability_maps: DetectabilityMaps | None = field(default=None, repr=False)
    detectability: DetectabilityTable | None = field(default=None, repr=False)
    # set through the ``roi`` property, which validates it against the samples' size
    _roi: Roi | None = field(default=None, init=False, repr=False)
    # what the current ``result`` was trained with (see :meth:`training_key`)
    _trained_key: tuple | None = field(default=None, init=False, repr=False)

    # --- page 1: part and source ------------------------------------------------------------------
    def name_problem(self) -> str | None:
        return check_part_name(self.part_name)

    def capture_uri(self) -> str:
        """The source with the camera settings applied (what the samples are captured with)."""
        return with_camera_settings(self.source_uri, self.camera_settings)

    def version_to_save(self) -> int:
        return next_version(self.models_dir, self.part_name) if not self.name_problem() else 1

    # --- page 2: good samples ---------------------------------------------------------------------
    @property
    def image_shape(self) -> tuple[int, ...] | None:
        return self.images[0].shape if self.images else None

    def add_image(self, image: np.ndarray, origin: str, source: str | None = None, group: int = 0) -> bool:
        """Add a good sample (``source``: where it came from as a whole, e.g. ``"folder /data/bottle"``,
        counted in ``sample_sources``); one of another size than the first is refused (noted in ``problems``).
        The first sample after :meth:`clear_images` sets the size again: a region of interest that
        does not fit it is dropped (noted), never silently moved."""
        if not self.images:
            self._revalidate_roi(image.shape, origin)
        elif image.shape != self.images[0].shape:
            self.problems.append(f"{origin}: {image.shape[1]}x{image.shape[0]} differs from the first sample's "
                                 f"{self.images[0].shape[1]}x{self.images[0].shape[0]}; not used")
            return False
        self.images.append(np.ascontiguousarray(image))
        self.origins.append(origin)
        self.groups.append(int(group))
        if source:
            self.sample_sources[source] = self.sample_sources.get(source, 0) + 1
        self.invalidate_training()
        return True

    # --- region of interest (page 3) --------------------------------------------------------------
    @property
    def roi(self) -> Roi | None:
        """The inspected region (x, y, w, h) of the samples, or ``None`` for the whole image."""
        return self._roi

    @roi.setter
    def roi(self, value: Sequence[float] | None) -> None:
        """Clamped into the samples (see :func:`fit_roi`); raises ``ValueError`` without samples or
        for a region that is too small. A change discards the previous training."""
        if value is not None and self.image_shape is None:
            raise ValueError("add good samples before choosing a region of interest")
        new = fit_roi(value, self.image_shape) if value is not None else None
        if new != self._roi:
            self._roi = new
            self.invalidate_training()

    @property
    def inspected_shape(self) -> tuple[int, int] | None:
        """``(H, W)`` of what the detector sees: the region of interest, else the whole sample."""
        if self._roi is not None:
            return self._roi[3], self._roi[2]
        shape = self.image_shape
        return (int(shape[0]), int(shape[1])) if shape else None

    def _revalidate_roi(self, shape: tuple[int, ...], origin: str) -> None:
        if self._roi is None:
            return
        x, y, w, h = self._roi
        if x + w > shape[1] or y + h > shape[0]:
            self.problems.append(f"{origin}: the region of interest {x},{y} {w}x{h} does not fit the new "
                                 f"{shape[1]}x{shape[0]} samples; the whole image is inspected again")
            self._roi = None
            self.invalidate_training()

    def clear_images(self) -> None:
        self.images.clear()
        self.origins.clear()
        self.groups.clear()
        self.problems.clear()
        self.sample_sources.clear()
        self.invalidate_training()

    def import_folder(self, folder: str | Path, progress: ProgressCallback | None = None,
                      cancel: CancelToken | None = None, limit: int | None = None) -> int:
        """Add the good images of a folder (an MVTec category's ``train/good``, or every image of any
        other folder). Unreadable files are skipped and noted. Returns how many were added."""
        dataset = open_dataset(folder)
        samples = dataset.train_good()
        if limit:
            samples = samples[:limit]
        problems = Problems()
        added = 0
        for i, (sample, image) in enumerate(iter_images(samples, "keep", problems)):
            checkpoint(cancel)
            added += self.add_image(image, str(sample.path), source=f"folder {Path(folder)}")
            report(progress, "importing", i + 1, len(samples))
        self.problems.extend(f"{p}: {m}" for p, m in problems)
        if isinstance(dataset, MVTecCategory) and not self.part_name:
            self.part_name = dataset.name
        return added

    def samples_source(self) -> str:
        """Where the good samples came from, in words (``"folder /data/bottle (209 images)"``)."""
        if not self.sample_sources:
            return f"{len(self.images)} samples" if self.images else "no samples yet"
        return "; ".join(f"{src} ({n} image{'s' if n != 1 else ''})" for src, n in self.sample_sources.items())

    def samples_problem(self) -> str | None:
        if len(self.images) < MIN_IMAGES:
            return f"at least {MIN_IMAGES} good samples are needed ({len(self.images)} so far)"
        return None

    def split(self) -> tuple[list[int], list[int]]:
        """Indices of training and held-out validation samples (deterministic for ``seed``).

        Each group of samples is split on its own: marked false rejects (group 1, a re-teach) are both
        learned from and held out -- one held out when there are two or more -- so the re-derived
        threshold sees the variation they bring, not only the detector.
        """
        groups = self.groups if len(self.groups) == len(self.images) else [0] * len(self.images)
        held: set[int] = set()
        for g in sorted(set(groups)):
            members = [i for i, x in enumerate(groups) if x == g]
            n = len(members)
            n_val = (min(n - 1, max(1, round(n * self.validation_fraction))) if g == 0
                     else min(n - 1, max(1 if n >= 2 else 0, round(n * self.validation_fraction))))
            order = np.random.default_rng(self.seed + g).permutation(n)  # group 0: the wizard's split as always
            held.update(members[k] for k in order[:n_val].tolist())
        val = sorted(held)
        return [i for i in range(len(self.images)) if i not in held], val

    # --- pages 3 and 4: detector and training -----------------------------------------------------
    def invalidate_training(self) -> None:
        self.result = None
        self.estimate = None
        self.detectability_maps = None
        self.detectability = None
        self._trained_key = None

    def training_key(self) -> tuple:
        """Everything the training depends on. The part's name, the source and the pixel size are not in
        it: fixing them after training keeps the trained detector."""
        return (self.detector_kind, repr(sorted(self.params.items())), self.validation_fraction, self.seed,
                len(self.images), self._roi, tuple(self.groups))

    def drop_stale_training(self) -> bool:
        """Discard the training if what it depends on changed since; True if it was discarded."""
        if self.result is not None and self._trained_key != self.training_key():
            self.invalidate_training()
            return True
        return False

    def train(self, progress: ProgressCallback | None = None, cancel: CancelToken | None = None,
              device: str | None = "auto") -> TeachResult:
        """Teach on the samples; ``device``: the station's preference for detectors that use one."""
        problem = self.samples_problem() or self.name_problem()
        if problem:
            raise ValueError(problem)
        train_idx, val_idx = self.split()
        result = teach_detector(
            self.part_name, [self.images[i] for i in train_idx], [self.images[i] for i in val_idx],
            self.detector_kind, dict(self.params), device=device, min_defect_area_px=self.min_defect_area_px,
            preprocessing={"roi": list(self._roi) if self._roi else None},
            pixel_size_mm=self.pixel_size_mm,
            training_info={"source": self.samples_source(), "camera": self.source_uri, "validation_seed": self.seed,
                           "validation_fraction": self.validation_fraction, "params": dict(self.params),
                           "origins": self.origins[:1000]},
            progress=progress, cancel=cancel)
        checkpoint(cancel)
        self.result = result
        self.estimate = result.estimate
        self.detectability_maps = self.detectability = None  # measured with the previous detector
        self.min_defect_area_px = result.estimate.min_defect_area_px
        self._trained_key = self.training_key()
        return result

    @property
    def validation_indices(self) -> list[int]:
        return self.split()[1]

    # --- page 5: threshold ------------------------------------------------------------------------
    def default_area_px(self) -> float:
        shape = self.inspected_shape  # the default is a share of the inspected area, as teach() sets it
        return default_min_defect_area(shape) if shape else 1.0

    def area_to_px(self, value: float, unit: str) -> float:
        return area_to_px(value, unit, self.pixel_size_mm)

    def area_from_px(self, area_px: float, unit: str) -> float:
        return area_from_px(area_px, unit, self.pixel_size_mm)

    def estimate_for(self, min_defect_area_px: float) -> ThresholdEstimate:
        """Re-estimate the threshold for a new minimum area on the held-out good samples."""
        if self.result is None:
            raise RuntimeError("train first")
        return self.result.estimator.estimate(min_defect_area_px)

    def apply_estimate(self, estimate: ThresholdEstimate) -> None:
        self.estimate = estimate
        self.min_defect_area_px = estimate.min_defect_area_px

    def detectability_table(self) -> DetectabilityTable | None:
        """The detectability at the chosen threshold and area (re-scored from the cached maps if the
        last table was scored at other ones); ``None`` when it was not measured."""
        maps, est, table = self.detectability_maps, self.estimate, self.detectability
        if maps is None or est is None:
            return None
        if table is not None and (table.threshold, table.min_defect_area_px, table.pixel_size_mm) == (
                est.threshold, est.min_defect_area_px, self.pixel_size_mm):
            return table
        return maps.score(est.threshold, est.min_defect_area_px, self.pixel_size_mm)

    # --- finish -----------------------------------------------------------------------------------
    def build_recipe(self) -> Recipe:
        """The taught recipe with the threshold and area chosen on the threshold page."""
        if self.result is None or self.estimate is None:
            raise RuntimeError("nothing trained yet")
        recipe = self.result.recipe
        recipe.name = self.part_name
        recipe.threshold = float(self.estimate.threshold)
        recipe.min_defect_area_px = float(self.estimate.min_defect_area_px)
        recipe.pixel_size_mm = self.pixel_size_mm
        recipe.camera = dict(self.camera_settings)
        recipe.validation = {**recipe.validation, "estimate": self.estimate.to_dict()}
        return recipe

    def save(self, audit: AuditLog | None = None, role: str = "engineer") -> Path:
        """Save as the part's next recipe version (atomic); audited. Returns the version folder."""
        problem = self.name_problem()
        if problem:
            raise ValueError(problem)
        recipe = self.build_recipe()
        folder = save_recipe(recipe, self.models_dir / self.part_name)
        self.saved_path = folder
        if self.keep_samples:
            try:  # the recipe is saved; a pool that cannot be written only costs the re-teach its samples
                SamplePool(self.models_dir / self.part_name).record_teach(self.images, self.origins)
            except (OSError, ValueError) as exc:
                log.warning("the good samples of %s were not kept for re-teaching: %s", recipe.label, exc)
        table = self.detectability_table()
        if table is not None:
            try:  # the recipe is saved; without the file Review only lacks the table (station eval --synthetic)
                save_detectability(folder, table)
            except OSError as exc:
                log.warning("the detectability of %s was not stored: %s", recipe.label, exc)
        if audit is not None:
            audit.record("recipe.created", recipe.label, None, str(folder), role=role,
                         note=f"taught with {self.detector_kind} on {len(self.split()[0])} good samples",
                         threshold=recipe.threshold, min_defect_area_px=recipe.min_defect_area_px,
                         params=self.params)
        return folder
