"""PatchCore (Roth et al., "Towards Total Recall in Industrial Anomaly Detection", CVPR 2022) as a
station detector: fit on good images, anomaly maps at each image's resolution plus an image score.

Parameters are plain values, so ``station train --detector patchcore -p key=value`` and recipes can
carry them; the recipe also records which backbone weights were used (``weights_info``), and
loading it refuses any other weights.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from station.core.progress import CancelToken, ProgressCallback, checkpoint, report
from station.detectors.backbone_detector import BackboneDetector
from station.detectors.base import DetectorError
from station.detectors.patchcore.backbone import FeatureExtractor
from station.detectors.patchcore.coreset import greedy_coreset, nearest_in_bank, sparse_random_projection
from station.detectors.patchcore.embedding import LAYOUTS, PatchEmbedding
from station.detectors.patchcore.geometry import InputGeometry, as_size
from station.detectors.patchcore.network import PatchCoreNet, feature_grid
from station.weights import BACKBONES, TAPS, load_recorded

log = logging.getLogger(__name__)

PRECISIONS = ("float32", "float16", "bfloat16")
ONNX_PRECISIONS = ("float32", "int8")
# Patch features above this size go to a temporary file instead of RAM while the coreset is chosen.
RAM_BUDGET_BYTES = 4 << 30


class PatchCore(BackboneDetector):
    """PatchCore anomaly detector.

    Parameters
    ----------
    backbone
        A torchvision builder from ``station.weights.TAPS``: ``"wide_resnet50_2"`` (the paper's),
        ``"resnet18"``, ``"resnet50"``, or the light CPU backbones ``"mobilenet_v2"``,
        ``"mobilenet_v3_large"`` and ``"efficientnet_b0"``.
    weights
        ``"imagenet"`` (torchvision's ImageNet weights, downloaded on first use), a torchvision weights
        name (``"IMAGENET1K_V2"``), imported custom weights (``"custom:<sha256 prefix>"``, their name,
        or the path of an imported file), or ``"random"`` (seeded random init: tests only).
    layout
        ``"paper"``: 3x3-aggregated ``layer2``+``layer3`` features pooled to ``embedding_dim`` as the
        authors' code; ``"concat"``: anomalib's 3x3 average pooling and concatenation (1536-d for
        WideResNet-50-2).
    embedding_dim
        Feature dimension of the ``"paper"`` layout; default 1024 (the paper's) for ResNets and 256 for
        the light backbones, whose taps have only 128-152 channels: on bottle with real ImageNet
        MobileNetV2 weights 256 measured as well as 1024 (image ROC AUC 1.000, pixel 0.983, AU-PRO
        0.950 against 1.000 / 0.981 / 0.942) for a quarter of the nearest-neighbour work.
    input_size, crop_size
        Resize every image to ``input_size`` (one number or ``[h, w]``), then centre-crop to
        ``crop_size`` if given (the paper: 256 and 224). Without a crop the whole frame is inspected.
    interpolation
        ``"bilinear"`` (antialiased, as the authors' code and anomalib) or ``"area"`` (OpenCV).
    coreset_ratio
        Share of training patches kept in the memory bank (greedy k-center coreset); 1.0 keeps all.
    coreset_dim
        Dimension of the random projection the coreset distances are computed in (paper: 128).
    num_neighbors
        ``b`` of the image-score reweighting (paper eq. 7); 1 uses the plain maximum patch distance.
    sigma
        Gaussian smoothing of the anomaly map, in network-input pixels (paper: 4).
    seed
        Seeds the coreset (projection and first centre) and ``weights="random"``.
    batch_size
        Images per forward pass while fitting.
    precision
        ``"float32"``; ``"float16"`` runs the backbone in half precision on a GPU (ignored on the CPU);
        ``"bfloat16"`` runs it in bfloat16 on the CPU or GPU -- on CPUs with AVX512-BF16/AMX about
        twice as fast, features within about 1 % (see docs/benchmarks.md). Distances stay float32,
        and ONNX exports are float32.
    device, backend, onnx_dir, threads
        Runtime options, not stored in the recipe: ``"auto"``/``"cpu"``/``"cuda[:n]"``; ``"torch"``,
        ``"onnxruntime"`` (needs ``onnx_dir`` from :meth:`export_onnx`; which one to use is decided in
        ``station.detectors.runtime``); intra-op threads for ONNX Runtime (default: torch's).
    onnx_precision
        ``"float32"`` or ``"int8"``: a recipe version made by ``station export --int8``
        (``station/app/int8_recipe.py``) inspects with the export's int8-backbone model -- on the CPU through
        ONNX Runtime only, since its threshold was estimated on the int8 model's own maps.
    allow_download
        Download torchvision's weights when they are not in the store (else a ``WeightsError``).
    """

    kind: ClassVar[str] = "patchcore"
    title: ClassVar[str] = "PatchCore"

    def __init__(
        self,
        backbone: str = "wide_resnet50_2",
        weights: str = "imagenet",
        layout: str = "paper",
        embedding_dim: int | None = None,
        input_size: int | Sequence[int] = 256,
        crop_size: int | Sequence[int] | None = None,
        interpolation: str = "bilinear",
        coreset_ratio: float = 0.01,
        coreset_dim: int = 128,
        num_neighbors: int = 9,
        sigma: float = 4.0,
        seed: int = 0,
        batch_size: int = 8,
        precision: str = "float32",
        device: str = "auto",
        backend: str = "torch",
        onnx_dir: str | Path | None = None,
        threads: int | None = None,
        allow_download: bool = True,
        onnx_precision: str = "float32",
    ) -> None:
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; use one of {', '.join(BACKBONES)}")
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
        if not 0.0 < float(coreset_ratio) <= 1.0:
            raise ValueError(f"coreset_ratio must be in (0, 1], got {coreset_ratio}")
        if embedding_dim is None:
            embedding_dim = default_embedding_dim(backbone)
        if int(embedding_dim) < 1 or int(coreset_dim) < 1 or int(num_neighbors) < 1 or int(batch_size) < 1:
            raise ValueError("embedding_dim, coreset_dim, num_neighbors and batch_size must be positive")
        if float(sigma) < 0:
            raise ValueError("sigma must not be negative")
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
        if onnx_precision not in ONNX_PRECISIONS:
            raise ValueError(f"unknown onnx_precision {onnx_precision!r}; use one of {', '.join(ONNX_PRECISIONS)}")
        self.backbone = backbone
        self.weights = str(weights)
        self.layout = layout
        self.embedding_dim = int(embedding_dim)
        self.geometry = InputGeometry(as_size(input_size, "input_size"), as_size(crop_size, "crop_size"),
                                      interpolation)
        self.coreset_ratio = float(coreset_ratio)
        self.coreset_dim = int(coreset_dim)
        self.num_neighbors = int(num_neighbors)
        self.sigma = float(sigma)
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.precision = precision
        self.onnx_precision = onnx_precision
        self._set_runtime(device, backend, onnx_dir, threads, allow_download)
        self.onnx_model: str | None = None  # "float32" or "int8": the ONNX model that runs, if any

    # --- construction of the network ------------------------------------------------------------------
    def _build(self, state_dict: dict[str, Any]) -> PatchCoreNet:
        extractor = FeatureExtractor(self.backbone, state_dict)
        embedding = PatchEmbedding(extractor.channels, self.layout, self.embedding_dim)
        net = PatchCoreNet(extractor, embedding, self.sigma)
        net.backbone_dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(self.precision)
        return net.to(self.device.device).eval()

    # --- fitting (BackboneDetector.fit calls it) -------------------------------------------------------
    def _fit(self, images: Sequence[np.ndarray], progress: ProgressCallback | None,
             cancel: CancelToken | None) -> dict[str, Any]:
        """Extract patch features of all ``images``, choose the coreset, build the memory bank."""
        net = self._network()
        dev = torch.device(self.device.device)
        t0 = time.perf_counter()
        h, w = feature_grid(self.geometry.network_size)
        n_patches = len(images) * h * w
        dim = net.embedding.dim
        projection = sparse_random_projection(dim, self.coreset_dim, self.seed).to(dev)
        with _PatchStore(n_patches, dim) as patches:
            projected_t = torch.empty((self.coreset_dim, n_patches), dtype=torch.float32, device=dev)
            offset = 0
            with torch.no_grad():
                for start in range(0, len(images), self.batch_size):
                    checkpoint(cancel)
                    batch = self.geometry.prepare_batch(images[start:start + self.batch_size])
                    emb = net.embed(torch.from_numpy(batch).to(dev))
                    flat = emb.permute(0, 2, 3, 1).reshape(-1, dim)
                    rows = int(flat.shape[0])
                    patches.write(offset, flat)
                    projected_t[:, offset:offset + rows] = (flat @ projection).T
                    offset += rows
                    report(progress, "extracting features", min(start + self.batch_size, len(images)), len(images))
            if offset != n_patches:  # the grid formula and the network disagree: a bug, not bad input
                raise RuntimeError(f"expected {n_patches} patch features, got {offset}")
            t_features = time.perf_counter() - t0
            size = max(1, int(n_patches * self.coreset_ratio))
            if size >= n_patches:
                index = torch.arange(n_patches)
            else:
                index = greedy_coreset(projected_t, size, self.seed, progress, cancel).cpu()
            del projected_t
            t_coreset = time.perf_counter() - t0 - t_features
            bank = patches.take(index).to(dev)
        support = nearest_in_bank(bank, self.num_neighbors)
        net.set_bank(bank, support)
        self._state = {"memory_bank": bank.cpu().numpy().astype(np.float32),
                       "bank_support": support.cpu().numpy().astype(np.int32)}
        return {"n_patches": n_patches, "bank_size": int(bank.shape[0]), "feature_dim": dim,
                "feature_grid": [h, w], "features_seconds": round(t_features, 3),
                "coreset_seconds": round(t_coreset, 3), "device": self.device.device}

    def _is_fitted(self, net: PatchCoreNet) -> bool:
        return net.scorer is not None

    # --- recipe state -----------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        if self.weights_info is None:
            raise RuntimeError("PatchCore is not fitted; nothing to save")
        return {
            "backbone": self.backbone, "weights": self.weights, "weights_info": dict(self.weights_info),
            "layout": self.layout, "embedding_dim": self.embedding_dim,
            "input_size": list(self.geometry.resize),
            "crop_size": list(self.geometry.crop) if self.geometry.crop else None,
            "interpolation": self.geometry.interpolation,
            "coreset_ratio": self.coreset_ratio, "coreset_dim": self.coreset_dim,
            "num_neighbors": self.num_neighbors, "sigma": self.sigma, "seed": self.seed,
            "batch_size": self.batch_size, "precision": self.precision,
            "onnx_precision": self.onnx_precision,
        }

    @classmethod
    def from_state(
        cls,
        config: dict[str, Any],
        state: dict[str, np.ndarray],
        device: str = "auto",
        backend: str = "torch",
        onnx_dir: str | Path | None = None,
        threads: int | None = None,
        allow_download: bool = True,
        onnx_precision: str | None = None,
    ) -> PatchCore:
        """Rebuild a fitted PatchCore from a recipe, with exactly the weights it was taught with.

        Raises
        ------
        WeightsError
            If those weights are not present or differ.
        DetectorError
            If the memory bank is missing, or ``backend="onnxruntime"`` and the ONNX export is
            missing, was made from another recipe version, or holds no int8 model although
            the recipe (or ``onnx_precision``, a tooling override) asks for one.
        """
        config = dict(config)
        onnx_precision = onnx_precision or config.pop("onnx_precision", "float32")
        config.pop("onnx_precision", None)
        if onnx_precision == "int8":  # the threshold belongs to the int8 model's maps: only it may run
            if backend == "torch":
                raise DetectorError("this recipe version inspects with its int8 ONNX model (station export --int8); "
                                    "the torch backend would give other maps -- use backend 'onnxruntime' or "
                                    "the float32 version it was made from")
            if device not in ("auto", "cpu"):
                log.warning("int8 recipe version: inspecting on the CPU, not %s (the int8 model is a CPU model)",
                            device)
            device, backend = "cpu", "onnxruntime"
        if "memory_bank" not in state or "bank_support" not in state:
            raise DetectorError("the PatchCore recipe holds no memory bank; teach it again")
        det = cls._from_config(config, device=device, backend=backend, onnx_dir=onnx_dir, threads=threads,
                               allow_download=allow_download, onnx_precision=onnx_precision)
        det._state = {"memory_bank": np.asarray(state["memory_bank"], dtype=np.float32),
                      "bank_support": np.asarray(state["bank_support"], dtype=np.int32)}
        if backend == "onnxruntime":
            det._open_onnx()
            return det
        det._net = det._build(load_recorded(det.weights_info, allow_download=allow_download))
        dev = det.device.device
        det._net.set_bank(torch.from_numpy(det._state["memory_bank"]).to(dev),
                          torch.from_numpy(det._state["bank_support"]).long().to(dev))
        return det

    # --- ONNX -------------------------------------------------------------------------------------------
    def _manifest(self) -> dict[str, Any]:
        from station.core.recipe import state_digest

        return {"detector": self.kind, "state_sha256": state_digest(self._state),
                "weights_sha256": (self.weights_info or {}).get("sha256"),
                "network_size": list(self.geometry.network_size), "layout": self.layout,
                "embedding_dim": self.embedding_dim, "sigma": self.sigma, "num_neighbors": self.num_neighbors}

    def export_onnx(self, directory: Path, int8_calibration: Sequence[np.ndarray] | None = None) -> list[Path]:
        """Write the fitted network as ONNX (``patchcore.onnx`` + ``patchcore.json``) into ``directory``.

        With ``int8_calibration`` -- good images of the part, as given to :meth:`predict` (a few dozen
        suffice, see ``quantize.calibration_sample``) -- also ``patchcore_int8.onnx``: the backbone
        statically quantized to int8, with its activation ranges measured on those images."""
        from station.detectors.patchcore.onnx_backend import export_network

        net = self._network()
        if net.scorer is None:
            raise RuntimeError("PatchCore is not fitted; nothing to export")
        prepared = None
        if int8_calibration is not None:
            prepared = [self.geometry.prepare(im) for im in int8_calibration]
        return export_network(net, self.geometry.network_size, Path(directory), self._manifest(), prepared)

    def _open_onnx(self) -> None:
        from station.detectors.patchcore.onnx_backend import ONNX_FILE, OnnxRunner, read_manifest

        manifest = self._checked_manifest(ONNX_FILE, read_manifest)
        path = self.onnx_dir / ONNX_FILE
        int8 = manifest.get("int8") if isinstance(manifest.get("int8"), dict) else None
        int8_path = self.onnx_dir / str((int8 or {}).get("file", ""))
        has_int8 = int8 is not None and int8_path.is_file()
        use_int8 = self.onnx_precision == "int8"
        if use_int8 and not has_int8:
            raise DetectorError(f"the ONNX export in {self.onnx_dir} holds no int8 model; make the int8 version "
                                f"again from the float32 one with `station export --int8 <recipe>`")
        log.info("PatchCore ONNX model: %s", "int8 backbone" if use_int8 else "float32")
        self._onnx = OnnxRunner(int8_path if use_int8 else path, self.device.device, self.threads)
        self.onnx_model = "int8" if use_int8 else "float32"


def default_embedding_dim(backbone: str) -> int:
    """The ``"paper"`` layout's dimension when none is given (see :class:`PatchCore`)."""
    return 1024 if TAPS[backbone].family == "resnet" else 256


class _PatchStore:
    """All training patch features ``(N, D)`` float32 until the coreset is chosen: in RAM, or in a
    temporary file (deleted afterwards) when they would not fit comfortably."""

    def __init__(self, rows: int, dim: int) -> None:
        self.rows, self.dim = rows, dim
        nbytes = rows * dim * 4
        self._tmp: tempfile.TemporaryDirectory | None = None
        if nbytes <= _ram_budget():
            self.array = np.empty((rows, dim), dtype=np.float32)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="station-patchcore-")
            log.info("patch features (%.1f GB) kept in a temporary file", nbytes / 1e9)
            self.array = np.lib.format.open_memmap(Path(self._tmp.name) / "patches.npy", mode="w+",
                                                   dtype=np.float32, shape=(rows, dim))

    def __enter__(self) -> _PatchStore:
        return self

    def __exit__(self, *exc: object) -> None:
        del self.array
        if self._tmp is not None:
            self._tmp.cleanup()

    def write(self, offset: int, rows: torch.Tensor) -> None:
        self.array[offset:offset + rows.shape[0]] = rows.detach().float().cpu().numpy()

    def take(self, index: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.array[index.numpy()]))


def _ram_budget() -> int:
    try:
        import psutil

        return int(min(RAM_BUDGET_BYTES, 0.5 * psutil.virtual_memory().available))
    except ImportError:  # psutil is a dependency; keep working without it all the same
        return RAM_BUDGET_BYTES

