"""What PaDiM and PatchCore share: the way an image batch runs through their network -- ONNX Runtime
where the export was opened, else torch -- the CPU fallback when a CUDA device runs out of memory
while fitting or inspecting, and the parts of a recipe's state common to both (the backbone weights it
records, its ONNX export's manifest).

Which backend and device a detector gets is decided in :mod:`station.detectors.runtime`; this class
only carries out that decision for detectors on a pretrained backbone. The two detectors differ in
what they fit (a memory bank, Gaussians) and in their recipe state, not in how they infer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import torch

from station.core.detector import DetectorError, Prediction
from station.core.devices import DeviceChoice, fall_back_to_cpu, is_out_of_memory, pick_device
from station.core.progress import CancelToken, ProgressCallback
from station.weights import load_weights

if TYPE_CHECKING:  # the package station.detectors.patchcore imports this module
    from station.detectors.patchcore.geometry import InputGeometry

BACKENDS = ("torch", "onnxruntime")  # "auto" is decided for every detector in station.detectors.runtime
T = TypeVar("T")
D = TypeVar("D", bound="BackboneDetector")


class BackboneDetector:
    """Base of the detectors whose inference is ``prepare -> network -> restore``. A subclass sets
    ``title``, ``geometry``, ``device``, ``backend``, ``onnx_dir``, ``weights_info``, ``_state``,
    ``_net`` and ``_onnx`` (an ``OnnxRunner`` or ``None``) and provides ``_build(state_dict)``, ``_fit()``,
    ``_is_fitted(net)`` and ``_manifest()`` (what its ONNX export must match)."""

    title: ClassVar[str]  # in messages: "PaDiM", "PatchCore"
    geometry: InputGeometry
    device: DeviceChoice
    backend: str
    backbone: str
    weights: str
    seed: int
    allow_download: bool
    threads: int | None
    onnx_dir: Path | None
    weights_info: dict[str, Any] | None
    _state: dict[str, np.ndarray]
    _net: Any
    _onnx: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None

    def _build(self, state_dict: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _network(self) -> Any:
        """The network, built on first use with the configured backbone weights."""
        if self._net is None:
            state, self.weights_info = load_weights(self.backbone, self.weights, seed=self.seed,
                                                    allow_download=self.allow_download)
            self._net = self._build(state)
        return self._net

    def _fit(self, images: Sequence[np.ndarray], progress: ProgressCallback | None,
             cancel: CancelToken | None) -> dict[str, Any]:
        raise NotImplementedError

    def _is_fitted(self, net: Any) -> bool:
        raise NotImplementedError

    def _manifest(self) -> dict[str, Any]:
        raise NotImplementedError

    def _set_runtime(self, device: str, backend: str, onnx_dir: str | Path | None, threads: int | None,
                     allow_download: bool) -> None:
        """The machine options (never stored in a recipe), and nothing learned yet."""
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
        self.backend = backend
        self.onnx_dir = Path(onnx_dir) if onnx_dir is not None else None
        self.threads = threads
        self.allow_download = bool(allow_download)
        self.device = pick_device(device)
        self.weights_info = None
        self._net = None
        self._onnx = None  # an OnnxRunner when backend == "onnxruntime"
        self._state = {}

    # --- fitting ----------------------------------------------------------------------------------------
    def fit(
        self,
        images: Sequence[np.ndarray],
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> dict[str, Any]:
        """Learn from good ``images`` on the torch backend (what is learned: the subclass's ``_fit``)."""
        if len(images) == 0:
            raise ValueError(f"{self.title} needs at least one good image to fit")
        if self.backend == "onnxruntime":
            raise ValueError("fitting runs on the torch backend; export to ONNX afterwards")
        self._network()
        return self._on_device("fitting", lambda: self._fit(images, progress, cancel))

    # --- inference --------------------------------------------------------------------------------------
    def predict(self, images: Sequence[np.ndarray]) -> Prediction:
        """Anomaly maps at each image's own resolution and image scores."""
        if len(images) == 0:
            return Prediction(np.zeros((0, 0, 0), np.float32), np.zeros(0, np.float32))
        shapes = [im.shape[:2] for im in images]
        maps, scores = self.infer(self.geometry.prepare_batch(images))
        out = [self.geometry.restore(m, s) for m, s in zip(maps, shapes, strict=True)]
        if len({o.shape for o in out}) == 1:
            return Prediction(np.stack(out), scores.astype(np.float32))
        ragged = np.empty(len(out), dtype=object)  # images of several sizes: one map each, own size
        ragged[:] = out
        return Prediction(ragged, scores.astype(np.float32))

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Maps ``(B, h, w)`` at the network size and scores, for a prepared ``uint8`` batch ``(B, h, w, 3)``."""
        if self._onnx is not None:
            return self._onnx(batch)
        if not self._is_fitted(self._network()):
            raise RuntimeError(f"{self.title} is not fitted; call fit() or load a recipe first")
        return self._on_device("inference", lambda: self._infer_torch(batch))

    def _infer_torch(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = torch.from_numpy(batch)
        if self.device.is_cuda:
            x = x.pin_memory().to(self.device.device, non_blocking=True)
        with torch.inference_mode():
            maps, scores = self._net(x)
        return maps.float().cpu().numpy(), scores.float().cpu().numpy()

    def _on_device(self, what: str, step: Callable[[], T]) -> T:
        """``step()``; after a CUDA out-of-memory error the network moves to the CPU and ``step`` runs
        again there (logged by ``fall_back_to_cpu``), so a teach or a line keeps going."""
        try:
            return step()
        except Exception as exc:
            if not (self.device.is_cuda and is_out_of_memory(exc)):
                raise
        self.device = fall_back_to_cpu(f"{self.title} {what}")
        if self._net is not None:
            self._net = self._net.to("cpu")
        return step()

    # --- recipe state -----------------------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        if not self._state:
            raise RuntimeError(f"{self.title} is not fitted; nothing to save")
        return dict(self._state)

    @classmethod
    def _from_config(cls: type[D], config: dict[str, Any], **runtime: Any) -> D:
        """A detector of a recipe's stored ``config`` (its arrays not yet set), which must record the
        backbone weights it was taught with (``weights_info``); ``runtime``: the machine options."""
        info = config.get("weights_info")
        if not isinstance(info, dict):
            raise DetectorError(f"the {cls.title} recipe does not record its backbone weights; teach it again")
        params = {k: v for k, v in config.items() if k != "weights_info"}
        try:
            det = cls(**params, **runtime)
        except TypeError as exc:
            raise DetectorError(f"the {cls.title} recipe has unknown parameters ({exc}); update the station") from exc
        det.weights_info = dict(info)
        return det

    def _checked_manifest(self, onnx_file: str, read_manifest: Callable[[Path], dict[str, Any] | None]
                          ) -> dict[str, Any]:
        """The manifest of the ONNX export in ``onnx_dir``, refused unless it was made from this state."""
        if self.onnx_dir is None:
            raise DetectorError("backend 'onnxruntime' needs the folder of the ONNX export (onnx_dir)")
        manifest = read_manifest(self.onnx_dir)
        if not (self.onnx_dir / onnx_file).is_file() or manifest is None:
            raise DetectorError(f"no {self.title} ONNX export in {self.onnx_dir}; "
                                f"create it with `station export <recipe>`")
        stale = [k for k, v in self._manifest().items() if manifest.get(k) != v]
        if stale:
            raise DetectorError(f"the ONNX export in {self.onnx_dir} was made from another recipe version "
                                f"({', '.join(stale)} differ); run `station export <recipe>` again")
        return manifest
