"""Exporting the fitted PaDiM network to ONNX; ONNX Runtime runs it through PatchCore's ``OnnxRunner``.

One file, ``padim.onnx``, holds the whole inference graph (normalisation, backbone, channel choice,
the Gaussians, Mahalanobis distances, upsampling, smoothing and the image score) with a dynamic batch
axis; ``padim.json`` beside it says which recipe state it was exported from, so a stale export is
refused instead of silently scoring with old Gaussians. Exporter as PatchCore's (see
``patchcore.onnx_backend``): TorchScript-based, the dynamo exporter as the fallback.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

ONNX_FILE = "padim.onnx"
MANIFEST_FILE = "padim.json"
OPSET = 17
_IO = {"input_names": ["images"], "output_names": ["anomaly_maps", "scores"]}


def export_network(net: torch.nn.Module, input_hw: tuple[int, int], directory: Path,
                   manifest: dict[str, Any]) -> list[Path]:
    """Write ``padim.onnx`` and ``padim.json`` into ``directory``; returns the paths written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(net).to("cpu").float().eval()
    path = directory / ONNX_FILE
    tmp = directory / f".{ONNX_FILE}.tmp"
    exporter = "torchscript"
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer and deprecation notices, not actionable here
            torch.onnx.export(model, (torch.zeros((1, *input_hw, 3), dtype=torch.uint8),), str(tmp),
                              dynamo=False, opset_version=OPSET, **_IO,
                              dynamic_axes={"images": {0: "batch"}, "anomaly_maps": {0: "batch"},
                                            "scores": {0: "batch"}})
    except (TypeError, RuntimeError) as exc:  # TorchScript exporter gone or broken: use dynamo
        log.info("TorchScript ONNX export failed (%s); using the dynamo exporter", exc)
        exporter = "dynamo"
        dummy = torch.zeros((2, *input_hw, 3), dtype=torch.uint8)  # batch 1 would be specialised away
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(model, (dummy,), dynamo=True, opset_version=max(OPSET, 18), **_IO,
                                        dynamic_shapes=({0: torch.export.Dim("batch", max=4096)},),
                                        verbose=False)
            program.save(str(tmp), external_data=False)
    os.replace(tmp, path)
    meta = {**manifest, "file": ONNX_FILE, "exporter": exporter, "torch": torch.__version__,
            "input": {"name": "images", "dtype": "uint8", "shape": ["batch", *input_hw, 3]}}
    mpath = directory / MANIFEST_FILE
    mtmp = directory / f".{MANIFEST_FILE}.tmp"
    mtmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    os.replace(mtmp, mpath)
    return [path, mpath]


def read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(directory) / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
