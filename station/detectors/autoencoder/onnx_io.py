"""ONNX export of the autoencoder's inference graph and the ONNX Runtime runner for it.

The exported graph is :class:`~station.detectors.autoencoder.network.AnomalyMapNet`: an image batch
``image`` ``(N, C, S, S)`` float32 in [0, 1] -> ``anomaly_map`` ``(N, S, S)``, with a dynamic batch
axis. The file carries the SHA-256 of the weights it was exported from (metadata
``station.state_sha256``), so a model file that does not belong to the recipe is refused instead of
silently giving other maps.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from station.core.detector import DetectorError

log = logging.getLogger(__name__)

ONNX_FILE = "autoencoder.onnx"
INPUT_NAME = "image"
OUTPUT_NAME = "anomaly_map"
DIGEST_KEY = "station.state_sha256"
CONFIG_KEY = "station.config"


def export_map_net(map_net: Any, example: Any, path: Path, metadata: dict[str, str]) -> Path:
    """Export ``map_net`` (a CPU ``torch.nn.Module`` in eval mode) to one self-contained ONNX file,
    written atomically."""
    import onnx
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
        raw = Path(tmp) / "raw.onnx"
        torch.onnx.export(
            map_net, (example,), str(raw), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamo=True, external_data=False, dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
            verbose=False)
        model = onnx.load(str(raw))
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        final_tmp = Path(tmp) / "final.onnx"
        onnx.save(model, str(final_tmp))
        os.replace(final_tmp, path)
    return path


class OnnxMapRunner:
    """Runs the exported graph through ONNX Runtime: ``runner(x)`` with ``x`` ``(N, C, S, S)`` float32
    returns ``(N, S, S)`` float32."""

    def __init__(self, path: Path, device: str, expected_digest: str, expected_config: dict[str, Any]) -> None:
        import onnxruntime as ort

        from station.core.devices import onnx_providers

        if not path.is_file():
            raise FileNotFoundError(f"{path}: ONNX model not found; export the recipe first (station export)")
        try:
            self.session = ort.InferenceSession(str(path), providers=onnx_providers(device))
        except Exception as exc:  # ORT raises its own exception types for corrupt files
            raise DetectorError(f"{path}: not a readable ONNX model ({exc})") from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        digest = meta.get(DIGEST_KEY)
        if digest != expected_digest:
            raise DetectorError(
                f"{path}: this ONNX model was exported from other weights than the recipe's "
                f"({'no digest' if digest is None else 'digest mismatch'}); export the recipe again")
        stored = json.loads(meta.get(CONFIG_KEY, "{}"))
        for key in ("input_size", "channels", "anomaly_map", "ssim_window", "ssim_kernel"):
            if stored.get(key) != expected_config.get(key):
                raise DetectorError(f"{path}: exported with {key}={stored.get(key)!r} but the recipe has "
                                  f"{expected_config.get(key)!r}; export the recipe again")
        self.providers = self.session.get_providers()
        log.info("autoencoder ONNX model %s on %s", path, self.providers)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})[0]
        return np.asarray(out, dtype=np.float32)
