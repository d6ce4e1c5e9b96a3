"""Small, careful timing and memory helpers for the benchmark."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def sync(device: str) -> None:
    """Wait for queued GPU work so wall-clock times are honest."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timings_ms(fn: Callable[[int], Any], repeats: int, warmup: int, device: str = "cpu") -> np.ndarray:
    """Wall-clock milliseconds of ``fn(i)`` for ``repeats`` calls after ``warmup`` unmeasured ones."""
    for i in range(warmup):
        fn(i)
    sync(device)
    out = []
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(warmup + i)
        sync(device)
        out.append((time.perf_counter() - t0) * 1000.0)
    return np.asarray(out)


def latency_summary(ms: np.ndarray) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "min_ms": round(float(ms.min()), 2), "n": int(ms.size)}


def peak_rss_bytes() -> int | None:
    """The process's peak resident memory so far (Linux/macOS: getrusage; Windows: peak working set)."""
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)
    except ImportError:
        pass
    try:
        import psutil

        info = psutil.Process().memory_info()
        return int(getattr(info, "peak_wset", info.rss))
    except ImportError:
        return None


def current_rss_bytes() -> int | None:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        return None


def gb(n: int | None) -> float | None:
    return None if n is None else round(n / 2**30, 3)
