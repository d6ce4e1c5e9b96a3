"""The one place that decides how a detector runs on this machine: its compute device, the recipe's
ONNX export (``<version>/onnx``) and what ``backend="auto"`` means.

Everything here is read from :class:`~station.detectors.base.DetectorInfo` -- what a detector
declares it can do -- never from a class's signature, so callers (the live layer, the wizard, review,
the CLI, the benchmark) pass the same options to every detector and each gets only what it takes.
The device is picked once, here: a detector is handed a concrete ``"cpu"``/``"cuda[:n]"``.

``backend="auto"``: an int8 recipe version runs its int8 model through ONNX Runtime on the CPU
(its threshold belongs to that model's maps); otherwise ONNX Runtime is used on the CPU where the
recipe holds a current export (it is the faster path there), and torch everywhere else -- also when
the export was made from other weights, which is logged, not an error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from station.core.devices import DeviceChoice, pick_device
from station.core.geometry import GeometrySpec
from station.core.images import ColorMode
from station.core.inspection import Inspector
from station.core.recipe import Recipe, RecipeError
from station.core.teach import TeachError, TeachResult, teach
from station.detectors.base import (
    RUNTIME_OPTIONS,
    Detector,
    DetectorError,
    DetectorInfo,
    create_detector,
    detector_class,
    detector_info,
)

log = logging.getLogger(__name__)

ONNX_SUBDIR = "onnx"  # a recipe version's ONNX export: <version>/onnx (station export)
BACKENDS = ("auto", "torch", "onnxruntime")
CPU = DeviceChoice("cpu", "CPU", "the detector runs on the CPU")


@dataclass(frozen=True)
class RuntimePlan:
    """How one detector will run: the keyword arguments for its constructor or ``from_state``, and the
    device picked for it (the CPU for detectors that do not use torch)."""

    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    device: DeviceChoice = CPU

    @property
    def device_name(self) -> str:
        return self.device.name


def choose_device(kind: str, preference: str | None = "auto") -> DeviceChoice:
    """The device detector ``kind`` runs on: :func:`~station.core.devices.pick_device` for detectors
    that take one (torch is imported only then), the CPU for the others."""
    if not detector_info(kind).uses_device:
        return CPU
    return pick_device(preference or "auto")


def plan_new(kind: str, device: str | None = "auto") -> RuntimePlan:
    """Machine options for a new (unfitted) detector ``kind``: the picked device where it takes one."""
    choice = choose_device(kind, device)
    options = {"device": choice.device} if detector_info(kind).uses_device else {}
    return RuntimePlan(kind, options, choice)


def plan_runtime(kind: str, config: dict[str, Any] | None = None, device: str | None = "auto",
                 backend: str | None = "auto", onnx_dir: str | Path | None = None,
                 **extra: Any) -> RuntimePlan:
    """Machine options for rebuilding a fitted detector ``kind`` (of stored ``config``).

    ``extra`` may hold further options of :data:`~station.detectors.base.RUNTIME_OPTIONS`; each is
    passed only to detectors that declare it, ``None`` values never. ``backend`` stays ``"auto"`` in
    the options when the choice depends on the export itself; :func:`build_detector` settles it.
    """
    info = detector_info(kind)
    backend = backend or "auto"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if info.int8 and backend == "auto" and (config or {}).get("onnx_precision") == "int8":
        # its threshold belongs to the int8 model's maps, a CPU model: no GPU is picked for it (the
        # detector itself refuses other backends for such a version)
        device, backend = "cpu", "onnxruntime"
    choice = choose_device(kind, device)
    wanted: dict[str, Any] = {"device": choice.device, **extra}
    if info.onnx:
        if backend == "auto" and (choice.is_cuda or onnx_dir is None or not Path(onnx_dir).is_dir()):
            backend = "torch"  # on a GPU torch is the faster path; without an export it is the only one
        wanted.update(backend=backend, onnx_dir=Path(onnx_dir) if onnx_dir is not None else None)
    options = {k: v for k, v in wanted.items() if k in info.runtime and v is not None}
    return RuntimePlan(kind, options, choice)


def onnx_dir_of(recipe: Recipe) -> Path | None:
    """Where the recipe version's ONNX export lives (it may not exist)."""
    return recipe.path / ONNX_SUBDIR if recipe.path is not None else None


def plan_for_recipe(recipe: Recipe, device: str | None = "auto", backend: str | None = "auto",
                    **extra: Any) -> RuntimePlan:
    """:func:`plan_runtime` for ``recipe``, with its own ONNX export."""
    return plan_runtime(recipe.detector_kind, recipe.detector_config, device, backend, onnx_dir_of(recipe), **extra)


def recipe_runtime(recipe: Recipe, device: str | None = "auto", backend: str | None = "auto",
                   **extra: Any) -> dict[str, Any]:
    """The keyword options of :func:`plan_for_recipe` (for ``detector_from_recipe(recipe, **options)``)."""
    return plan_for_recipe(recipe, device, backend, **extra).options


def build_detector(kind: str, config: dict[str, Any], state: dict[str, np.ndarray], **options: Any) -> Detector:
    """Rebuild a fitted detector of a recipe; ``options`` as :func:`plan_runtime` gives them.
    ``backend="auto"`` tries the ONNX export and falls back to torch when the export does not belong
    to this state. A state the detector refuses (its ``DetectorError``) is the recipe's fault here:
    it is raised as a ``RecipeError`` with the detector's message."""
    cls = detector_class(kind)
    try:
        if options.get("backend") != "auto":
            return cls.from_state(config, state, **options)
        try:
            return cls.from_state(config, state, **{**options, "backend": "onnxruntime"})
        except (DetectorError, FileNotFoundError, ImportError) as exc:  # an export of other weights, none, no ORT
            log.info("%s: not using the ONNX export (%s); running on torch", kind, exc)
            return cls.from_state(config, state, **{**options, "backend": "torch"})
    except DetectorError as exc:
        raise RecipeError(str(exc)) from exc


def detector_from_recipe(recipe: Recipe, **options: Any) -> Detector:
    """Rebuild the recipe's fitted detector. ``options`` are used as given (see :func:`recipe_runtime`
    for the machine's choice), except machine options this detector does not declare."""
    info = detector_info(recipe.detector_kind)
    options = {k: v for k, v in options.items() if k in info.runtime or k not in RUNTIME_OPTIONS}
    return build_detector(recipe.detector_kind, recipe.detector_config, recipe.detector_state(), **options)


def load_inspector(recipe: Recipe, device: str | None = "auto", backend: str | None = "auto",
                   **extra: Any) -> Inspector:
    """An :class:`~station.core.inspection.Inspector` for ``recipe`` on this machine's best path."""
    return Inspector(recipe, detector_from_recipe(recipe, **recipe_runtime(recipe, device, backend, **extra)))


@dataclass(frozen=True)
class NewDetector:
    """A detector to teach, built by name (``station.core.detector.DetectorFactory``): what the
    registry declares about ``kind`` and its construction on the device picked for it."""

    kind: str
    device: str | None = "auto"

    @property
    def info(self) -> DetectorInfo:
        return detector_info(self.kind)

    @property
    def title(self) -> str:
        return self.info.title

    @property
    def color_mode(self) -> ColorMode:
        return self.info.color_mode

    @property
    def geometry(self) -> GeometrySpec:
        return self.info.geometry

    def create(self, params: dict[str, Any] | None = None) -> Detector:
        """An unfitted detector with ``params`` (a ``device`` among them -- e.g. ``-p device=cpu`` --
        is the preference then); a parameter it does not know is a user error naming those it has."""
        params = dict(params or {})
        device = params.pop("device", self.device)
        try:
            return create_detector(self.kind, **params, **plan_new(self.kind, device).options)
        except TypeError as exc:
            import inspect

            from station.core.geometry import GEOMETRY_PARAMS

            try:
                known = [p for p in inspect.signature(detector_class(self.kind)).parameters
                         if p not in RUNTIME_OPTIONS]
            except (TypeError, ValueError):
                raise exc from None
            unknown = sorted(set(params) - set(known))
            if not unknown:
                raise
            raise TeachError(f"{self.kind} has no parameter {', '.join(unknown)}; its parameters are "
                             f"{', '.join(known)}, and for the image geometry {', '.join(GEOMETRY_PARAMS)}") from None


def new_detector(kind: str, params: dict[str, Any] | None = None, device: str | None = "auto") -> Detector:
    """An unfitted detector ``kind`` with ``params``, on the device picked for it."""
    return NewDetector(kind, device).create(params)


def teach_detector(name: str, train_images: Sequence[np.ndarray], validation_images: Sequence[np.ndarray],
                   kind: str, detector_params: dict[str, Any] | None = None, device: str | None = "auto",
                   **teach_options: Any) -> TeachResult:
    """:func:`~station.core.teach.teach` with a new detector ``kind`` (``detector_params``) on the
    picked device (``teach_options``: the rest of ``teach``'s)."""
    return teach(name, train_images, validation_images, NewDetector(kind, device), detector_params, **teach_options)
