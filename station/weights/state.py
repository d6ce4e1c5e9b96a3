"""Reading, checking and fingerprinting backbone state dicts -- never with pickles.

A weights file is a torchvision-format state dict: ``.pth``/``.pt`` read with
``torch.load(..., weights_only=True)``, or ``.safetensors``. Only the modules the feature extractor
runs must be present (up to the last tap, ``backbones.TAPS``: for a ResNet the stem and ``layer1`` to
``layer3``); the rest (``layer4``, ``fc``, a MobileNet's later blocks and ``classifier``) may be missing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from station.weights.backbones import TAPS
from station.weights.catalogue import BACKBONES, check_backbone
from station.weights.errors import WeightsError

# Prefixes left out of the fingerprint of random weights (kept as they were for ResNet recipes).
UNUSED_PREFIXES = ("layer4.", "fc.")
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")
_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, cached per (path, size, mtime) for the life of the process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        _HASH_CACHE[key] = h.hexdigest()
    return _HASH_CACHE[key]


def read_state_dict(path: Path) -> dict[str, Any]:
    """The tensors of a weights file, on the CPU.

    Raises
    ------
    WeightsError
        If the file cannot be read safely or holds no state dict.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: Any = load_file(str(path), device="cpu")
        else:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad or unsafe file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: not a readable weights file (a state dict saved with torch.save or "
                           f"safetensors is needed; pickled objects are refused): {first}") from exc
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:  # common checkpoint layouts: {"state_dict": {...}, ...}
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(k, str) for k in inner):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(f"{path}: holds no state dict (expected a mapping of parameter names to tensors)")
    tensors = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            raise WeightsError(f"{path}: entry {k!r} is not a tensor; not a state dict")
        name = k[len("module."):] if k.startswith("module.") else k  # saved from DataParallel
        tensors[name] = v
    return tensors


def expected_shapes(backbone: str) -> dict[str, tuple[int, ...]]:
    """Parameter and buffer shapes of the torchvision ``backbone`` (built on the meta device: no memory)."""
    import torch
    import torchvision

    check_backbone(backbone)
    with torch.device("meta"):
        model = getattr(torchvision.models, backbone)()
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_state_dict(state: Mapping[str, Any], backbone: str) -> list[str]:
    """Problems that stop ``state`` from loading into ``backbone`` (empty list: it fits)."""
    problems = []
    taps = TAPS[backbone]
    for key, shape in expected_shapes(backbone).items():
        if not taps.uses(key) or key.endswith("num_batches_tracked"):
            continue
        if key not in state:
            problems.append(f"missing {key}")
        elif tuple(state[key].shape) != shape:
            problems.append(f"{key} has shape {tuple(state[key].shape)}, expected {shape}")
    return problems


def infer_backbone(state: Mapping[str, Any]) -> str | None:
    """The one known backbone ``state`` fits, or ``None``."""
    fits = [b for b in BACKBONES if not check_state_dict(state, b)]
    return fits[0] if len(fits) == 1 else None


def require_fit(state: Mapping[str, Any], backbone: str, source: str) -> None:
    problems = check_state_dict(state, backbone)
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        raise WeightsError(f"{source}: does not fit the {backbone} backbone ({shown})")


def tensor_fingerprint(state: Mapping[str, Any]) -> str:
    """SHA-256 over the used tensors' names, dtypes, shapes and bytes (key order independent)."""
    import torch

    h = hashlib.sha256()
    for key in sorted(state):
        if key.startswith(UNUSED_PREFIXES):
            continue
        t = state[key]
        if not isinstance(t, torch.Tensor):
            continue
        t = t.detach().to("cpu").contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def random_state_dict(backbone: str, seed: int) -> dict[str, Any]:
    """torchvision's own random initialisation of ``backbone`` from a fixed seed (NOT pretrained).

    For tests, CI and comparisons only: the features of a random network are not meaningful
    ImageNet features.
    """
    import torch
    import torchvision

    check_backbone(backbone)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = getattr(torchvision.models, backbone)()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
