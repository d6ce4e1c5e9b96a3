"""An int8 CPU model: the exported PatchCore graph with its backbone statically quantized.

The convolutions of the backbone are ~85 % of PatchCore's CPU time and run at the float32 peak of
the cores; in int8 they run on the CPU's integer dot-product units (VNNI on AVX-512/AVX2 CPUs):
on bottle, 2 cores, the whole frame went from 149 ms to 56 ms p50 (docs/benchmarks.md). Only the
backbone is quantized -- its ``Conv``, ``Relu``/``Clip``, ``Add`` and ``MaxPool`` nodes, so that ONNX Runtime
fuses every convolution with its neighbours into one ``QLinearConv`` -- while the normalisation, the
patch aggregation and projection, the memory bank, the nearest-neighbour search, the image score and
the map smoothing stay float32.

Recipe (``onnxruntime.quantization.quantize_static``): QDQ format, weights int8 per output channel
and symmetric, activations uint8 (asymmetric: the ``u8 x s8`` form that the x86 VNNI kernels of
ONNX Runtime's MLAS take directly), ranges from the minimum and maximum on calibration images (for
MobileNet-style backbones their 0.01 and 99.99th percentiles, ``RANGE_PERCENTILE``) -- the part's own
good images, prepared exactly as at inspection.

The int8 maps are not the float32 maps (quantization noise raises every nearest-neighbour distance),
so an int8 model is only ever used by a recipe version whose threshold was estimated on its own
maps: ``station/app/int8_recipe.py``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

INT8_FILE = "patchcore_int8.onnx"
# Clip is MobileNetV2's ReLU6: quantized, it folds into the range of the convolution before it.
QUANTIZED_OPS = ("Conv", "Relu", "Clip", "Add", "MaxPool")
BACKBONE_SCOPE = "extractor"  # the FeatureExtractor's attribute name in PatchCoreNet
CALIBRATION_IMAGES = 32  # default number of good images the ranges are taken from
# How activation ranges are set, per backbone family. ResNets: min/max (measured: int8 within ~1 point
# of float32). MobileNet-style inverted residuals have rare far outliers that stretch a min/max range
# over the useful values: on bottle with real ImageNet MobileNetV2 weights the int8 maps correlated
# 0.62 with float32's under min/max and 0.89 with the 99.99th percentile (99.999th: 0.58); see
# docs/benchmarks.md.
RANGE_PERCENTILE = {"resnet": None, "mobilenet": 99.99, "efficientnet": 99.99}


class QuantizationError(RuntimeError):
    """The int8 model could not be made (or would not be the intended one)."""


def quantize_backbone(float_path: Path, out_path: Path, calibration: Sequence[np.ndarray],
                      backbone_convs: int, family: str = "resnet") -> dict[str, Any]:
    """Write ``out_path``: the float32 model ``float_path`` with its backbone quantized to int8.

    Parameters
    ----------
    float_path
        ``patchcore.onnx`` (input ``images``: ``uint8`` ``(B, H, W, 3)``).
    out_path
        Where the int8 model goes (written atomically).
    calibration
        Prepared network inputs, ``uint8`` ``(H, W, 3)`` each (resized and cropped as at inspection).
    backbone_convs
        How many convolutions the backbone has: every one of them must be quantized.
    family
        The backbone's family (``BackboneTaps.family``): picks the range calibration
        (``RANGE_PERCENTILE``).

    Returns
    -------
    dict
        What was done, for the export manifest.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if len(calibration) == 0:
        raise QuantizationError("int8 calibration needs at least one good image")
    t0 = time.perf_counter()
    model = onnx.load(str(float_path))
    _materialise_shared_initialisers(model)
    nodes = [n.name for n in model.graph.node if n.op_type in QUANTIZED_OPS and _in_backbone(n)]
    convs = sum(1 for n in model.graph.node if n.op_type == "Conv" and _in_backbone(n))
    if convs != backbone_convs:  # an exporter that names nodes differently: better no model than a wrong one
        raise QuantizationError(f"found {convs} of the backbone's {backbone_convs} convolutions in the ONNX "
                                f"graph; this exporter's graph cannot be quantized")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._images = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            image = next(self._images, None)
            return None if image is None else {"images": np.ascontiguousarray(image[None], dtype=np.uint8)}

    percentile = RANGE_PERCENTILE.get(family)
    method = CalibrationMethod.MinMax if percentile is None else CalibrationMethod.Percentile
    options: dict[str, Any] = {"WeightSymmetric": True, "ActivationSymmetric": False}
    if percentile is not None:
        options["CalibPercentile"] = percentile
    out_path = Path(out_path)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    with _quiet_quantizer(), contextlib.redirect_stdout(io.StringIO()):  # the percentile pass prints its steps
        quantize_static(model, str(tmp), Reader(), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(QUANTIZED_OPS), nodes_to_quantize=nodes,
                        per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        calibrate_method=method, extra_options=options)
    unfused = _unfusable_convs(onnx.load(str(tmp), load_external_data=False))
    if unfused:  # they would run as float convolutions behind a dequantization: slower than float32
        tmp.unlink(missing_ok=True)
        raise QuantizationError(f"{len(unfused)} backbone convolutions were not fully quantized "
                                f"(e.g. {unfused[0]})")
    os.replace(tmp, out_path)
    return {"file": out_path.name, "format": "QDQ", "weights": "int8, per channel, symmetric",
            "activations": "uint8, per tensor, asymmetric",
            "calibration": "min/max" if percentile is None else f"percentile {percentile}",
            "calibration_images": len(calibration), "quantized_nodes": len(nodes),
            "quantized_convolutions": convs, "seconds": round(time.perf_counter() - t0, 2)}


def calibration_sample(items: Sequence[Any], n: int = CALIBRATION_IMAGES) -> list[Any]:
    """``n`` items spread evenly over ``items`` (all of them if there are fewer)."""
    if n <= 0 or len(items) <= n:
        return list(items)
    index = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in index]


def map_agreement(reference: np.ndarray, other: np.ndarray, ref_scores: np.ndarray,
                  other_scores: np.ndarray) -> dict[str, float]:
    """How closely ``other`` maps (e.g. int8) follow ``reference`` maps (float32), ``(B, H, W)`` each:
    the largest and the mean absolute difference relative to the reference's largest and mean value
    (per image, then the worst image), the mean ratio of the maps, and the largest relative score
    difference."""
    ref = np.asarray(reference, np.float64).reshape(len(reference), -1)
    oth = np.asarray(other, np.float64).reshape(len(other), -1)
    diff = np.abs(ref - oth)
    tiny = 1e-12
    return {
        "max_relative": float((diff.max(1) / np.maximum(np.abs(ref).max(1), tiny)).max()),
        "mean_relative": float((diff.mean(1) / np.maximum(np.abs(ref).mean(1), tiny)).max()),
        "mean_ratio": float((oth.mean(1) / np.maximum(ref.mean(1), tiny)).mean()),
        "score_relative": float((np.abs(np.asarray(ref_scores, np.float64) - np.asarray(other_scores, np.float64))
                                 / np.maximum(np.abs(np.asarray(ref_scores, np.float64)), tiny)).max()),
    }


def _in_backbone(node: Any) -> bool:
    """Whether an exported node belongs to ``PatchCoreNet.extractor``: the TorchScript exporter names
    nodes by module path (``/extractor/layer1/...``), the dynamo exporter records it as metadata."""
    if node.name.startswith(f"/{BACKBONE_SCOPE}/"):
        return True
    for prop in node.metadata_props:
        if prop.key == "namespace":
            parts = prop.value.split("/")
            return len(parts) > 1 and parts[1].startswith(f"{BACKBONE_SCOPE}:")
    return False


def _materialise_shared_initialisers(model: Any) -> None:
    """The TorchScript exporter shares identical constants through ``Identity`` nodes (e.g. the all-zero
    biases that folding untrained batch norms leaves). The quantizer only quantizes a bias that is an
    initialiser, and ONNX Runtime fuses a convolution only with a quantized bias: give each its own."""
    import onnx

    inits = {t.name: t for t in model.graph.initializer}
    keep = []
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[node.input[0]])
            copy.name = node.output[0]
            model.graph.initializer.append(copy)
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)


def _unfusable_convs(model: Any) -> list[str]:
    """Backbone convolutions that ONNX Runtime could not turn into ``QLinearConv``: each needs
    dequantized input and weights, an int32 bias (or none) and a quantized output."""
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    inits = {t.name for t in model.graph.initializer}
    bad = []
    for n in model.graph.node:
        if n.op_type != "Conv" or not _in_backbone(n):
            continue
        ins_ok = all(getattr(producer.get(i), "op_type", None) == "DequantizeLinear" for i in n.input[:2])
        bias_ok = len(n.input) < 3 or not n.input[2] or (
            getattr(producer.get(n.input[2]), "op_type", None) == "DequantizeLinear"
            and producer[n.input[2]].input[0] in inits)
        out_ok = [c.op_type for c in consumers.get(n.output[0], [])] == ["QuantizeLinear"]
        if not (ins_ok and bias_ok and out_ok):
            bad.append(n.name)
    return bad


class _quiet_quantizer:
    """The quantizer logs advice meant for hand-made models ("consider pre-processing") through the
    root logger; it does not apply to this graph (shapes are static, batch norms already folded)."""

    class _Filter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "pre-processing before quantization" not in record.getMessage()

    def __enter__(self) -> None:
        self._filter = self._Filter()
        logging.getLogger().addFilter(self._filter)

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeFilter(self._filter)
