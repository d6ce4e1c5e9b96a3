"""The one place that picks the compute device (torch) and the ONNX Runtime providers.

Torch and ONNX Runtime are imported lazily, so a station running only the variation model never
loads them. Every choice is logged; a requested GPU that is not there falls back to the CPU with a
warning instead of an error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cuda", "cuda:1", "cpu"
    name: str  # human-readable, e.g. "NVIDIA H100 80GB HBM3" or "CPU (2 threads)"
    reason: str = ""

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pick_device(preference: str = "auto") -> DeviceChoice:
    """``"auto"`` -> the first GPU if there is one, else the CPU; ``"cuda[:n]"`` -> that GPU or the
    CPU with a warning; ``"cpu"`` -> the CPU."""
    import torch

    pref = (preference or "auto").lower()
    if pref not in ("auto", "cpu") and not pref.startswith("cuda"):
        raise ValueError(f"unknown device {preference!r}; use 'auto', 'cpu' or 'cuda[:index]'")
    if pref != "cpu" and torch.cuda.is_available():
        dev = "cuda" if pref == "auto" else pref
        index = int(dev.split(":")[1]) if ":" in dev else 0
        if index < torch.cuda.device_count():
            # process-wide and set once, here: every model has one input size, so cuDNN's own
            # kernel search pays off; nothing toggles it per job (a teach beside a live inspection
            # would change the inspection's kernels)
            torch.backends.cudnn.benchmark = True
            choice = DeviceChoice(dev, torch.cuda.get_device_name(index), "GPU available")
            log.info("compute device: %s (%s)", choice.device, choice.name)
            return choice
        reason = f"{dev} requested but only {torch.cuda.device_count()} GPU(s) present; using the CPU"
    elif pref.startswith("cuda"):
        reason = f"{pref} requested but no CUDA GPU is available; using the CPU"
    else:
        reason = "CPU requested" if pref == "cpu" else "no CUDA GPU available"
    if pref.startswith("cuda"):
        log.warning(reason)
    choice = DeviceChoice("cpu", f"CPU ({torch.get_num_threads()} threads)", reason)
    log.info("compute device: cpu (%s)", reason)
    return choice


def onnx_providers(device: str = "auto") -> list[str]:
    """ONNX Runtime execution providers for ``device``: CUDA first where it is available and wanted,
    the CPU provider always last as the fallback."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    wanted = []
    if device != "cpu" and "CUDAExecutionProvider" in available and cuda_available():
        wanted.append("CUDAExecutionProvider")
    wanted.append("CPUExecutionProvider")
    log.info("ONNX Runtime providers: %s (available: %s)", wanted, available)
    return wanted


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a GPU out-of-memory error (torch or ONNX Runtime), which callers retry on the CPU."""
    text = f"{type(exc).__name__}: {exc}".lower()
    return "out of memory" in text or "outofmemoryerror" in text or "cudaerrormemoryallocation" in text


def fall_back_to_cpu(what: str) -> DeviceChoice:
    """After a GPU out-of-memory error in ``what``: free the GPU cache, log a warning, and return the
    CPU choice to retry on (slower, but the job finishes instead of crashing)."""
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        threads = torch.get_num_threads()
    except ImportError:
        threads = 0
    reason = f"{what} ran out of GPU memory; continuing on the CPU"
    log.warning(reason)
    return DeviceChoice("cpu", f"CPU ({threads} threads)", reason)


def _openmp_set_threads() -> Any:
    """``omp_set_num_threads`` of the OpenMP runtime torch runs on, or None where it cannot be found."""
    import ctypes
    import glob
    import os

    import torch

    candidates = [None]  # the symbols already loaded into the process
    lib_dir = os.path.join(os.path.dirname(torch.__file__), "lib")
    for pattern in ("libgomp*.so*", "libiomp5*", "libomp*", "vcomp*.dll"):
        candidates += sorted(glob.glob(os.path.join(lib_dir, pattern)))
    for name in candidates:
        try:
            return ctypes.CDLL(name).omp_set_num_threads
        except (OSError, AttributeError):
            continue
    return None


@contextmanager
def torch_threads_on_this_thread(n: int) -> Iterator[None]:
    """Run torch's CPU ops *on the calling thread only* with ``n`` OpenMP threads for a while.

    ``torch.set_num_threads`` is process-wide: called on a teach worker it also throttles a live
    inspection running beside it, and every thread started meanwhile keeps the reduced count for
    good. OpenMP's own ``omp_set_num_threads`` changes only the calling thread's setting, which is
    what torch's intra-op pool reads. Where that runtime cannot be reached (a build on another
    OpenMP), nothing is changed: slower for the caller, never for anyone else.
    """
    import torch

    setter = _openmp_set_threads()
    before = torch.get_num_threads()
    if setter is None:
        log.debug("OpenMP runtime not found; torch keeps %d threads on this thread", before)
        yield
        return
    setter(int(n))
    try:
        yield
    finally:
        setter(before)
