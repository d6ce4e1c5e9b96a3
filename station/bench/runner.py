"""``station bench``: speed and memory of every registered detector, on the CPU and on a GPU if present.

Each (detector, device) case runs in a fresh child process, so its peak memory is its own and one
crashing case cannot take the others down. A case measures, with the station's own code paths:

- the fit time for ``n_fit`` images;
- the latency of ``predict([image])`` -- preprocessing to the anomaly map at the image's resolution --
  as p50/p95 over ``repeats`` calls after a warm-up, and the throughput at batch 8 (and 32 on a GPU);
- the same through ONNX Runtime for detectors that export to ONNX;
- the peak resident memory of the process and, on a GPU, torch's peak allocated memory;
- the threshold re-estimation time (``ThresholdEstimator.estimate``) over 20 of the detector's maps
  reduced to 256x256, the core issue's target being under 50 ms.

A detector whose module is not importable yet is reported as skipped, with the reason.
"""

from __future__ import annotations

import logging
import multiprocessing
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from station.bench.data import load_bench_data
from station.bench.machine import describe_machine
from station.bench.measure import current_rss_bytes, gb, latency_summary, peak_rss_bytes, sync, timings_ms

log = logging.getLogger(__name__)

THRESHOLD_MAPS = 20
THRESHOLD_SIDE = 256
THRESHOLD_AREAS = (25.0, 50.0, 100.0, 200.0, 400.0, 800.0)
INT8_CALIBRATION = 32  # fit images the bench's int8 model is calibrated on


@dataclass
class BenchConfig:
    kinds: list[str] | None = None  # None: every registered detector
    devices: list[str] | None = None  # None: cpu, and cuda when present
    n_fit: int = 209
    n_test: int = 20
    repeats: int = 30
    warmup: int = 3
    threads: int | None = 2
    onnx: bool = True
    isolate: bool = True  # each case in its own process (own peak memory)
    data: str | None = None
    synthetic: bool = False  # force the synthetic washer even where bottle is present
    synthetic_size: int = 900
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # per detector kind


def default_devices() -> list[str]:
    from station.core.devices import cuda_available

    return ["cpu", "cuda"] if cuda_available() else ["cpu"]


def run_bench(config: BenchConfig, progress=None) -> dict[str, Any]:
    """All cases of ``config``; returns ``{"machine", "config", "results"}`` (JSON-able)."""
    from station.detectors.base import available_detectors

    kinds = config.kinds or [d.kind for d in available_detectors()]
    devices = config.devices or default_devices()
    results = []
    for kind in kinds:
        for device in devices:
            if progress:
                progress(f"{kind} on {device}")
            results.append(_run_isolated(kind, device, config) if config.isolate else run_case(kind, device, config))
    return {"machine": describe_machine(), "config": asdict(config), "results": results}


def _run_isolated(kind: str, device: str, config: BenchConfig) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")  # a clean process: no inherited torch state or memory
    try:
        with ctx.Pool(1) as pool:
            return pool.apply(run_case, (kind, device, config))
    except Exception as exc:  # the child died (e.g. killed for memory)
        return {"kind": kind, "device": device, "error": f"benchmark process failed: {exc}"}


def run_case(kind: str, device: str, config: BenchConfig) -> dict[str, Any]:
    """One detector on one device (see the module docstring). Never raises: errors are reported."""
    row: dict[str, Any] = {"kind": kind, "device": device}
    try:
        from station.detectors.base import create_detector, detector_class, detector_info

        try:
            cls = detector_class(kind)
        except ImportError as exc:
            row["skipped"] = f"not importable yet ({exc})"
            return row
        if config.threads:
            import torch

            torch.set_num_threads(int(config.threads))
        data = load_bench_data(config.n_fit, config.n_test, Path(config.data) if config.data else None,
                               config.synthetic, config.synthetic_size)
        row.update({"data": data.source, "image_shape": list(data.shape), "n_fit": len(data.train)})
        params = dict(config.params.get(kind, {}))
        info = detector_info(kind)
        if info.uses_device:
            params["device"] = device
        elif device != "cpu":
            row["skipped"] = "runs on the CPU only"
            return row
        if device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats()
        detector = create_detector(kind, **params)
        row["rss_before_fit_gb"] = gb(current_rss_bytes())
        t0 = time.perf_counter()
        fit_stats = detector.fit(data.train) or {}
        sync(device)
        row["fit_s"] = round(time.perf_counter() - t0, 2)
        row["fit_stats"] = _jsonable(fit_stats)
        if getattr(detector, "weights_info", None):
            row["weights"] = _jsonable(detector.weights_info)
        # detectors that export to ONNX run on torch; the others (e.g. numpy/OpenCV) natively
        row["native"] = {"backend": "torch" if info.uses_device else "native",
                         **_inference(detector, data.test, device, config)}
        row["threshold"] = _threshold(detector, data.test)
        if config.onnx and info.onnx:
            row["onnxruntime"] = _onnx(cls, detector, data.test, device, config)
            if device == "cpu" and info.int8:
                # calibrated on fit images (as `station export --int8` does on the part's good ones)
                row["onnxruntime_int8"] = _onnx(cls, detector, data.test, device, config,
                                                int8_calibration=data.train[:INT8_CALIBRATION])
        row["peak_rss_gb"] = gb(peak_rss_bytes())
        if device.startswith("cuda"):
            import torch

            row["cuda_max_allocated_gb"] = gb(torch.cuda.max_memory_allocated())
    except Exception as exc:
        weights_error = _weights_error()
        if weights_error is not None and isinstance(exc, weights_error):
            row["skipped"] = f"no backbone weights: {exc}"
        else:
            row["error"] = f"{type(exc).__name__}: {exc}"
            row["traceback"] = traceback.format_exc(limit=8)
    return row


def _weights_error() -> type[Exception] | None:
    try:
        from station.weights import WeightsError

        return WeightsError
    except ImportError:
        return None


def _inference(detector: Any, images: list[np.ndarray], device: str, config: BenchConfig) -> dict[str, Any]:
    """Batch-1 latency and batch-8 (and 32 on a GPU) throughput of ``detector.predict``."""
    n = len(images)
    ms = timings_ms(lambda i: detector.predict([images[i % n]]), config.repeats, config.warmup, device)
    out: dict[str, Any] = {"batch1": latency_summary(ms)}
    batches = (8, 32) if device.startswith("cuda") else (8,)
    for b in batches:
        batch = [images[i % n] for i in range(b)]
        reps = max(3, config.repeats // 4)
        bms = timings_ms(lambda _i, batch=batch: detector.predict(batch), reps, 1, device)
        out[f"batch{b}_images_per_s"] = round(b / (float(np.median(bms)) / 1000.0), 1)
    return out


def _onnx(cls: Any, detector: Any, images: list[np.ndarray], device: str, config: BenchConfig,
          int8_calibration: list[np.ndarray] | None = None) -> dict[str, Any]:
    """ONNX Runtime latency and throughput, and how far its maps are from torch's; with
    ``int8_calibration`` those of the int8-backbone model (a different model: its maps are compared
    with torch's by their mean relative difference and their correlation instead)."""
    with tempfile.TemporaryDirectory(prefix="station-bench-onnx-") as tmp:
        t0 = time.perf_counter()
        extra = {} if int8_calibration is None else {"int8_calibration": int8_calibration}
        detector.export_onnx(Path(tmp), **extra)
        export_s = time.perf_counter() - t0
        runner = cls.from_state(detector.get_config(), detector.get_state(), device=device,
                                backend="onnxruntime", onnx_dir=Path(tmp),
                                **({} if int8_calibration is None else {"onnx_precision": "int8"}))
        a = np.asarray(detector.predict(images[:2]).anomaly_maps, np.float64)
        b = np.asarray(runner.predict(images[:2]).anomaly_maps, np.float64)
        out = _inference(runner, images, device, config)
        out["export_s"] = round(export_s, 2)
        if int8_calibration is None:
            out["max_relative_difference_vs_torch"] = float(np.abs(a - b).max() / max(float(np.abs(a).max()), 1e-12))
        else:
            out.update({"backend": "onnxruntime int8", "mean_relative_difference_vs_torch":
                        float(np.abs(a - b).mean() / max(float(np.abs(a).mean()), 1e-12)),
                        "correlation_vs_torch": float(np.corrcoef(a.ravel(), b.ravel())[0, 1])})
        return out


def _threshold(detector: Any, images: list[np.ndarray]) -> dict[str, Any]:
    """Threshold re-estimation over ``THRESHOLD_MAPS`` of the detector's maps at 256x256."""
    import cv2

    from station.core.threshold import ThresholdEstimator

    pool = [images[i % len(images)] for i in range(THRESHOLD_MAPS)]
    maps = []
    for start in range(0, len(pool), 8):
        for m in detector.predict(pool[start:start + 8]).anomaly_maps:
            maps.append(cv2.resize(np.asarray(m, np.float32), (THRESHOLD_SIDE, THRESHOLD_SIDE),
                                   interpolation=cv2.INTER_AREA))
    t0 = time.perf_counter()
    estimator = ThresholdEstimator(maps)
    build_ms = (time.perf_counter() - t0) * 1000.0
    ms = timings_ms(lambda i: estimator.estimate(THRESHOLD_AREAS[i % len(THRESHOLD_AREAS)]),
                    2 * len(THRESHOLD_AREAS), 1)
    return {"maps": len(maps), "side": THRESHOLD_SIDE, "build_ms": round(build_ms, 2),
            "estimate_p50_ms": round(float(np.percentile(ms, 50)), 2),
            "estimate_max_ms": round(float(ms.max()), 2)}


def _jsonable(d: Any) -> Any:
    if isinstance(d, dict):
        return {str(k): _jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_jsonable(v) for v in d]
    if isinstance(d, np.generic):
        return d.item()
    if isinstance(d, (str, int, float, bool)) or d is None:
        return d
    return str(d)
