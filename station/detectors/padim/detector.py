"""PaDiM (Defard et al., "PaDiM: a Patch Distribution Modeling Framework for Anomaly Detection and
Localization", ICPR 2021) as a station detector.

Teaching is one pass over the good images: their backbone features update per-position sums, and the
Gaussians (means and inverse covariances) follow at the end -- no memory bank and no coreset, so the
fit time is the feature extraction plus one inversion per grid position. The backbone, its taps and
its weights are PatchCore's (``station.weights``); the recipe records which weights were used
(``weights_info``) and loading it refuses any other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from station.core.progress import CancelToken, ProgressCallback, checkpoint, report
from station.detectors.backbone_detector import BackboneDetector
from station.detectors.base import DetectorError
from station.detectors.padim.gaussian import (
    PAPER_EPSILON,
    GaussianAccumulator,
    random_channels,
    statistics_bytes,
)
from station.detectors.padim.network import ChannelSelection, PaDiMNet
from station.detectors.patchcore.backbone import FeatureExtractor
from station.detectors.patchcore.geometry import InputGeometry, as_size
from station.weights import BACKBONES, TAPS, load_recorded

log = logging.getLogger(__name__)

# Channels kept of the stride-8 + stride-16 taps ("Rd" in the paper). The ResNets keep the paper's
# counts (100 for ResNet-18, 550 for the 50-layer ones; its Table 1: a random 100 of 448 lost almost
# nothing to all 448). The light backbones have few channels at those taps (MobileNetV2 32 + 96 = 128,
# MobileNetV3-Large and EfficientNet-B0 40 + 112 = 152) and keep 64: on bottle with real MobileNetV2
# weights 48 / 64 / 80 / 100 / all 128 channels gave pixel ROC AUC 0.9815 / 0.9818 / 0.9819 / 0.9813 /
# 0.9826 (image 1.000 each; docs/benchmarks.md), while 64 makes the inverse covariances at 256x256
# 17 MB instead of 41 MB (100) -- inside a line PC CPU's L3 cache -- and the Mahalanobis work 2.4x smaller.
RESNET_FEATURES = {"resnet18": 100, "resnet50": 550, "wide_resnet50_2": 550}
LIGHT_FEATURES = 64
# The per-position matrices above this share of the free memory are refused with a clear message.
MEMORY_SHARE = 0.5


def default_features(backbone: str) -> int:
    """``n_features`` when none is given (see ``RESNET_FEATURES``)."""
    if backbone in RESNET_FEATURES:
        return RESNET_FEATURES[backbone]
    return 100 if TAPS[backbone].family == "resnet" else LIGHT_FEATURES


class PaDiM(BackboneDetector):
    """PaDiM anomaly detector.

    Parameters
    ----------
    backbone
        A backbone of ``station.weights.BACKBONES``: ``"mobilenet_v2"`` (default: the fast one on a
        CPU, measured with real weights), ``"resnet18"``, ``"wide_resnet50_2"`` (the paper's), ...
    weights
        As PatchCore's: ``"imagenet"``, a torchvision weights name, imported custom weights
        (``"custom:<sha256 prefix>"``) or ``"random"`` (seeded random init: tests only).
    n_features
        Channels kept of the concatenated taps, chosen at random with ``seed`` (the paper's random
        dimensionality reduction); ``None``: the backbone's default (the paper's for ResNets, 64 for
        the light backbones; see ``RESNET_FEATURES``).
        Work and state grow with its square: ``grid positions x n_features^2 x 4`` bytes.
    input_size, crop_size, interpolation
        As PatchCore's: resize to ``input_size``, optional centre crop.
    epsilon
        Regulariser added to every covariance's diagonal (paper: 0.01).
    sigma
        Gaussian smoothing of the anomaly map, in network-input pixels (paper: 4).
    seed
        Seeds the channel choice and ``weights="random"``.
    batch_size
        Images per forward pass while fitting.
    device, backend, onnx_dir, threads, allow_download
        Runtime options, not stored in the recipe (as PatchCore's): ``"torch"`` or ``"onnxruntime"``
        (needs ``onnx_dir`` from :meth:`export_onnx`; which one to use is decided in
        ``station.detectors.runtime``).
    """

    kind: ClassVar[str] = "padim"
    title: ClassVar[str] = "PaDiM"

    def __init__(
        self,
        backbone: str = "mobilenet_v2",
        weights: str = "imagenet",
        n_features: int | None = None,
        input_size: int | Sequence[int] = 256,
        crop_size: int | Sequence[int] | None = None,
        interpolation: str = "bilinear",
        epsilon: float = PAPER_EPSILON,
        sigma: float = 4.0,
        seed: int = 0,
        batch_size: int = 8,
        device: str = "auto",
        backend: str = "torch",
        onnx_dir: str | Path | None = None,
        threads: int | None = None,
        allow_download: bool = True,
    ) -> None:
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; use one of {', '.join(BACKBONES)}")
        if n_features is not None and int(n_features) < 1:
            raise ValueError(f"n_features must be positive, got {n_features}")
        if not float(epsilon) > 0:
            raise ValueError(f"epsilon must be positive (paper: 0.01), got {epsilon}")
        if float(sigma) < 0:
            raise ValueError("sigma must not be negative")
        if int(batch_size) < 1:
            raise ValueError("batch_size must be positive")
        self.backbone = backbone
        self.weights = str(weights)
        self.n_features = int(n_features) if n_features is not None else default_features(backbone)
        self.geometry = InputGeometry(as_size(input_size, "input_size"), as_size(crop_size, "crop_size"),
                                      interpolation)
        self.epsilon = float(epsilon)
        self.sigma = float(sigma)
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self._set_runtime(device, backend, onnx_dir, threads, allow_download)

    # --- construction of the network ------------------------------------------------------------------
    def _build(self, state_dict: dict[str, Any], channels: np.ndarray | None = None) -> PaDiMNet:
        extractor = FeatureExtractor(self.backbone, state_dict)
        if channels is None:
            channels = random_channels(sum(extractor.channels), self.n_features, self.seed)
        selection = ChannelSelection(extractor.channels, torch.from_numpy(np.asarray(channels, np.int64)))
        return PaDiMNet(extractor, selection, self.sigma).to(self.device.device).eval()

    # --- fitting (BackboneDetector.fit calls it) -------------------------------------------------------
    def _fit(self, images: Sequence[np.ndarray], progress: ProgressCallback | None,
             cancel: CancelToken | None) -> dict[str, Any]:
        """One pass over ``images``: per-position feature sums, then means and inverse covariances."""
        net = self._network()
        dev = torch.device(self.device.device)
        t0 = time.perf_counter()
        acc: GaussianAccumulator | None = None
        with torch.no_grad():
            for start in range(0, len(images), self.batch_size):
                checkpoint(cancel)
                batch = self.geometry.prepare_batch(images[start:start + self.batch_size])
                feats = net.features(torch.from_numpy(batch).to(dev))
                if acc is None:
                    b, d, h, w = feats.shape
                    _check_memory(h * w, d, self.device.is_cuda)
                    acc = GaussianAccumulator(h * w, d, dev)
                acc.add(feats)
                report(progress, "extracting features", min(start + self.batch_size, len(images)), len(images))
            t_features = time.perf_counter() - t0
            checkpoint(cancel)
            report(progress, "inverting covariances", 0, 1)
            mean, inverse = acc.finish(self.epsilon)
        h, w = int(feats.shape[-2]), int(feats.shape[-1])
        d = int(mean.shape[1])
        mean, inverse = mean.reshape(h, w, d), inverse.reshape(h, w, d, d)
        net.set_gaussians(mean, inverse)
        channels = torch.cat([getattr(net.selection, f"index{i}") + sum(net.selection.tap_channels[:i])
                              for i in range(len(net.selection.tap_channels))])
        self._state = {"mean": mean.cpu().numpy(), "inverse_covariance": inverse.cpu().numpy(),
                       "channels": channels.cpu().numpy().astype(np.int64)}
        report(progress, "inverting covariances", 1, 1)
        return {"n_images": len(images), "feature_dim": d, "feature_grid": [h, w],
                "channels_available": int(sum(net.selection.tap_channels)),
                "state_mb": round(statistics_bytes(h * w, d) / 1e6, 1),
                "features_seconds": round(t_features, 3),
                "covariance_seconds": round(time.perf_counter() - t0 - t_features, 3),
                "device": self.device.device}

    def _is_fitted(self, net: PaDiMNet) -> bool:
        return net.gaussians is not None

    # --- recipe state -----------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        if self.weights_info is None:
            raise RuntimeError("PaDiM is not fitted; nothing to save")
        return {
            "backbone": self.backbone, "weights": self.weights, "weights_info": dict(self.weights_info),
            "n_features": self.n_features, "input_size": list(self.geometry.resize),
            "crop_size": list(self.geometry.crop) if self.geometry.crop else None,
            "interpolation": self.geometry.interpolation, "epsilon": self.epsilon, "sigma": self.sigma,
            "seed": self.seed, "batch_size": self.batch_size,
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
    ) -> PaDiM:
        """Rebuild a fitted PaDiM from a recipe, with exactly the weights it was taught with.

        Raises
        ------
        WeightsError
            If those weights are not present or differ.
        DetectorError
            If the Gaussians are missing or malformed, or ``backend="onnxruntime"`` and the ONNX
            export is missing or was made from another recipe version.
        """
        try:
            mean = np.asarray(state["mean"], dtype=np.float32)
            inverse = np.asarray(state["inverse_covariance"], dtype=np.float32)
            channels = np.asarray(state["channels"], dtype=np.int64)
        except KeyError as exc:
            raise DetectorError(f"the PaDiM recipe holds no {exc.args[0]!r}; teach it again") from None
        if mean.ndim != 3 or inverse.shape != (*mean.shape, mean.shape[2]) or channels.shape != mean.shape[2:]:
            raise DetectorError(f"the PaDiM recipe's Gaussians are malformed (means {mean.shape}, inverse "
                                f"covariances {inverse.shape}, channels {channels.shape}); teach it again")
        det = cls._from_config(config, device=device, backend=backend, onnx_dir=onnx_dir, threads=threads,
                               allow_download=allow_download)
        det._state = {"mean": mean, "inverse_covariance": inverse, "channels": channels}
        if backend == "onnxruntime":
            det._open_onnx()
            return det
        try:
            det._net = det._build(load_recorded(det.weights_info, allow_download=allow_download), channels)
        except ValueError as exc:  # channel indices that do not fit this backbone's taps
            raise DetectorError(f"the PaDiM recipe does not fit its backbone ({exc}); teach it again") from exc
        dev = det.device.device
        det._net.set_gaussians(torch.from_numpy(mean).to(dev), torch.from_numpy(inverse).to(dev))
        return det

    # --- ONNX -------------------------------------------------------------------------------------------
    def _manifest(self) -> dict[str, Any]:
        from station.core.recipe import state_digest

        return {"detector": self.kind, "state_sha256": state_digest(self._state),
                "weights_sha256": (self.weights_info or {}).get("sha256"),
                "network_size": list(self.geometry.network_size), "sigma": self.sigma}

    def export_onnx(self, directory: Path) -> list[Path]:
        """Write the fitted network as ONNX (``padim.onnx`` + ``padim.json``) into ``directory``."""
        from station.detectors.padim.onnx_export import export_network

        net = self._network()
        if net.gaussians is None:
            raise RuntimeError("PaDiM is not fitted; nothing to export")
        return export_network(net, self.geometry.network_size, Path(directory), self._manifest())

    def _open_onnx(self) -> None:
        from station.detectors.padim.onnx_export import ONNX_FILE, read_manifest
        from station.detectors.patchcore.onnx_backend import OnnxRunner

        self._checked_manifest(ONNX_FILE, read_manifest)
        self._onnx = OnnxRunner(self.onnx_dir / ONNX_FILE, self.device.device, self.threads)


def _check_memory(positions: int, dim: int, on_gpu: bool) -> None:
    """Refuse, in one line, Gaussians whose matrices would not fit in memory."""
    need = statistics_bytes(positions, dim)
    if on_gpu:
        free = int(torch.cuda.mem_get_info()[0])
    else:
        try:
            import psutil

            free = int(psutil.virtual_memory().available)
        except ImportError:  # psutil is a dependency; without it, no check
            return
    if need > MEMORY_SHARE * free:
        raise ValueError(f"PaDiM's covariances at this input size need {need / 1e9:.1f} GB ({positions} grid "
                         f"positions x {dim}^2 features), more than half the free memory "
                         f"({free / 1e9:.1f} GB); lower n_features or input_size")
