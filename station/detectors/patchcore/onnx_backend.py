"""Exporting the fitted PatchCore network to ONNX and running it with ONNX Runtime.

One file, ``patchcore.onnx``, holds the whole inference graph (normalisation, backbone, patch
features, the memory bank, nearest-neighbour search, image score, upsampling and smoothing) with a
dynamic batch axis; ``patchcore.json`` beside it says which recipe state it was exported from, so a
stale export is refused instead of silently scoring with an old memory bank. On request the export
also holds ``patchcore_int8.onnx``, the same graph with an int8 backbone for CPUs (``quantize.py``),
listed in the same manifest.

The exporter is torch's TorchScript-based one (``dynamo=False``): on torch 2.11 to 2.14 it exports
this graph identically and quickly, needs no extra packages at run time, and gives a graph ONNX
Runtime optimises fully. The dynamo exporter is the fallback if a future torch drops it.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from station.core.devices import is_out_of_memory, onnx_providers

log = logging.getLogger(__name__)

ONNX_FILE = "patchcore.onnx"
MANIFEST_FILE = "patchcore.json"
OPSET = 17


def export_network(net: torch.nn.Module, input_hw: tuple[int, int], directory: Path,
                   manifest: dict[str, Any], int8_calibration: Sequence[np.ndarray] | None = None) -> list[Path]:
    """Write ``patchcore.onnx`` and ``patchcore.json`` into ``directory``; returns the paths written.

    With ``int8_calibration`` (prepared network inputs, ``uint8`` ``(H, W, 3)``: the part's good
    images) also ``patchcore_int8.onnx``, the graph with an int8 backbone; without it an older int8
    model in ``directory`` is removed, since it would no longer match."""
    from station.detectors.patchcore.quantize import INT8_FILE, quantize_backbone

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(net).to("cpu").float().eval()
    model.backbone_dtype = None  # ONNX graphs are float32
    model.scorer.chunk_elements = 0  # one distance block: the graph must not depend on the batch size
    dummy = torch.zeros((1, *input_hw, 3), dtype=torch.uint8)
    path = directory / ONNX_FILE
    tmp = directory / f".{ONNX_FILE}.tmp"
    exporter = "torchscript"
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # deprecation notices of the exporter, not actionable here
            torch.onnx.export(model, (dummy,), str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=["images"], output_names=["anomaly_maps", "scores"],
                              dynamic_axes={"images": {0: "batch"}, "anomaly_maps": {0: "batch"},
                                            "scores": {0: "batch"}})
    except (TypeError, RuntimeError) as exc:  # TorchScript exporter gone or broken: use dynamo
        log.info("TorchScript ONNX export failed (%s); using the dynamo exporter", exc)
        exporter = "dynamo"
        batch = torch.export.Dim("batch", max=4096)
        dummy2 = torch.zeros((2, *input_hw, 3), dtype=torch.uint8)  # batch 1 would be specialised away
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(model, (dummy2,), dynamo=True, opset_version=max(OPSET, 18),
                                        input_names=["images"], output_names=["anomaly_maps", "scores"],
                                        dynamic_shapes=({0: batch},), verbose=False)
            program.save(str(tmp), external_data=False)
    os.replace(tmp, path)
    meta = {**manifest, "file": ONNX_FILE, "exporter": exporter, "torch": torch.__version__,
            "input": {"name": "images", "dtype": "uint8", "shape": ["batch", *input_hw, 3]}}
    int8_path = directory / INT8_FILE
    int8_path.unlink(missing_ok=True)  # made from an older graph; replaced below if asked for
    mpath = _write_manifest(directory, meta)
    if int8_calibration is None:
        return [path, mpath]
    convs = sum(1 for m in net.extractor.modules() if isinstance(m, torch.nn.Conv2d))
    meta["int8"] = quantize_backbone(path, int8_path, int8_calibration, convs, net.extractor.taps.family)
    _write_manifest(directory, meta)  # the int8 model is used only once the manifest lists it
    return [path, int8_path, mpath]


def _write_manifest(directory: Path, meta: dict[str, Any]) -> Path:
    mpath = directory / MANIFEST_FILE
    mtmp = directory / f".{MANIFEST_FILE}.tmp"
    mtmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    os.replace(mtmp, mpath)
    return mpath


def read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(directory) / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class OnnxRunner:
    """An ONNX Runtime session over ``patchcore.onnx``: CUDA provider where present, else the CPU;
    on GPU out-of-memory it rebuilds itself on the CPU provider and retries."""

    def __init__(self, path: Path, device: str = "auto", threads: int | None = None) -> None:
        self.path = Path(path)
        self.threads = threads
        self._open(onnx_providers(device))

    def _open(self, providers: list[str]) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = int(self.threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: ORT's warnings about shape hints are noise here
        self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        self.providers = self.session.get_providers()
        log.info("ONNX Runtime session on %s", self.providers)

    @property
    def on_gpu(self) -> bool:
        return "CUDAExecutionProvider" in self.providers

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        try:
            maps, scores = self.session.run(None, {"images": images})
        except Exception as exc:
            if not (self.on_gpu and is_out_of_memory(exc)):
                raise
            log.warning("ONNX Runtime ran out of GPU memory; continuing on the CPU")
            self._open(["CPUExecutionProvider"])
            maps, scores = self.session.run(None, {"images": images})
        return np.asarray(maps, dtype=np.float32), np.asarray(scores, dtype=np.float32)
