"""The checks of ``station selftest`` (:mod:`station.cli.selftest`) that need the detectors: the compute
device, each installed detector taught and inspecting on synthetic frames, the weights store, and with
``--recipe`` that recipe and its golden parts. Each returns ``(one line, data)`` or raises
``CheckFailed`` / ``Skipped``.
"""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path
from typing import Any

from station.cli.selftest import DETECTOR_FRAMES, FRAME_SIDE, CheckFailed, Skipped


def _torch_or_skip(kind: str) -> None:
    try:
        importlib.import_module("torch")
    except ImportError as exc:
        raise Skipped(f"{kind} needs torch, which this installation does not include ({exc})") from exc


def check_device(device: str, require_gpu: bool) -> tuple[str, dict[str, Any]]:
    _torch_or_skip("the compute device")
    import torch

    from station.core.devices import pick_device

    choice = pick_device(device)
    data = {"device": choice.device, "name": choice.name, "torch": torch.__version__,
            "cuda_build": torch.version.cuda, "cuda_available": bool(torch.cuda.is_available())}
    x = torch.arange(64, dtype=torch.float32, device=choice.device).reshape(8, 8)
    total = float((x @ x.T).sum().cpu())  # loads the device's math libraries (cuBLAS on a GPU)
    if abs(total - 510_720.0) > 1e-3 * 510_720.0:
        raise CheckFailed(f"a matrix product on {choice.device} gave {total}, expected 510720")
    if choice.is_cuda:
        data["cudnn"] = torch.backends.cudnn.version()
    elif require_gpu:
        raise CheckFailed(f"no CUDA GPU in use ({choice.reason}); torch {torch.__version__}, "
                          f"CUDA build {torch.version.cuda or 'none'}")
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU build"
    reason = f" -- {choice.reason}" if not choice.is_cuda and choice.reason else ""
    return f"{choice.name} [{choice.device}]; torch {torch.__version__} ({build}){reason}", data


def _patchcore_weights() -> tuple[dict[str, Any], str, bool]:
    """PatchCore parameters for the self-test, a label saying which weights, and whether pretrained."""
    from station.weights import BACKBONES, WeightsStore, find_published

    store = WeightsStore()
    for backbone in sorted(BACKBONES, key=lambda b: b != "resnet18"):  # the light one first: a faster check
        found = store.find_published(find_published(backbone))
        if found is not None:
            return ({"backbone": backbone, "weights": "imagenet"},
                    f"pretrained {found.backbone} {found.name} weights (sha256 {found.sha256[:12]}...)", True)
    for w in store.custom():
        return ({"backbone": w.backbone, "weights": f"custom:{w.sha256[:16]}"},
                f"imported custom {w.backbone} weights (sha256 {w.sha256[:12]}...)", True)
    return ({"backbone": "resnet18", "weights": "random"},
            "FUNCTIONAL CHECK ONLY: random-initialised resnet18, not pretrained (no weights in the store)", False)


def _detector_params(kind: str) -> tuple[dict[str, Any], str]:
    if kind == "variation":
        return {"local_alignment": False, "max_rotation_deg": 3.0}, ""
    if kind == "autoencoder":  # a tiny network and a few steps: proves training and inference run, no more
        return ({"schedule": "cpu", "image_size": 64, "width": 8, "latent_dim": 16, "epochs": 1,
                 "samples_per_epoch": 16, "batch_size": 8, "max_train_seconds": 20.0},
                "tiny quick schedule (functional check)")
    if kind == "patchcore":
        params, label, _ = _patchcore_weights()
        return {**params, "input_size": FRAME_SIDE, "coreset_ratio": 0.1, "allow_download": False}, label
    if kind == "padim":  # the same installed backbone weights as PatchCore
        params, label, _ = _patchcore_weights()
        return {**params, "input_size": FRAME_SIDE, "allow_download": False}, label
    return {}, ""


def check_detector(kind: str, frames: list[Any], device: str) -> tuple[str, dict[str, Any]]:
    if len(frames) < DETECTOR_FRAMES:
        raise CheckFailed("no frames from the synthetic source to teach with")
    try:
        return _teach_and_inspect(kind, frames, device)
    except ModuleNotFoundError as exc:
        # a build without torch (the lite bundle) leaves the deep detectors out: not installed, not broken
        if (exc.name or "").split(".")[0] in ("torch", "torchvision") or importlib.util.find_spec("torch") is None:
            raise Skipped(f"not installed: needs torch, which this build leaves out ({exc})") from exc
        raise


def _teach_and_inspect(kind: str, frames: list[Any], device: str) -> tuple[str, dict[str, Any]]:
    from station.core.recipe import load_recipe, save_recipe
    from station.detectors.runtime import load_inspector, teach_detector

    good = [f.image for f in frames if f.meta.get("label") == "good"]
    bad = [f for f in frames if f.meta.get("label") != "good"]
    if len(good) < 6 or not bad:
        raise CheckFailed(f"the synthetic source gave {len(good)} good and {len(bad)} defective frames")
    params, label = _detector_params(kind)
    result = teach_detector(f"selftest-{kind}", good[:-4], good[-4:], kind, params, device=device,
                            min_defect_area_px=20.0)
    with tempfile.TemporaryDirectory(prefix="station-selftest-") as tmp:
        folder = save_recipe(result.recipe, Path(tmp) / kind)
        recipe = load_recipe(folder)
        inspector = load_inspector(recipe, device=device)
        checked = [good[0], bad[0].image]
        outcomes = inspector.inspect_batch(checked[:1]) + inspector.inspect_batch(checked[1:])
    for image, outcome in zip(checked, outcomes, strict=True):
        amap = outcome.anomaly_map
        if amap.shape[:2] != image.shape[:2] or not bool(_finite(amap)):
            raise CheckFailed(f"anomaly map {amap.shape} for a {image.shape[:2]} image, or not finite")
    verdicts = f"good frame {outcomes[0].verdict.value}, {bad[0].meta.get('label')} frame {outcomes[1].verdict.value}"
    data = {"threshold": recipe.threshold, "verdicts": [o.verdict.value for o in outcomes],
            "scores": [o.score for o in outcomes], "latency_ms": [round(o.latency_ms, 1) for o in outcomes],
            "weights": recipe.weights, "params": params}
    text = (f"taught on {len(good) - 4} frames, saved, reloaded, inspected: {verdicts} "
            f"({outcomes[1].latency_ms:.0f} ms/frame)")
    return (f"{text}\n{label}" if label else text), data


def _finite(a: Any) -> bool:
    import numpy as np

    return bool(np.isfinite(a).all())


def check_weights(require_pretrained: bool) -> tuple[str, dict[str, Any]]:
    try:
        importlib.import_module("torchvision")
    except ImportError as exc:
        raise Skipped("no torch in this build: PatchCore is not installed") from exc
    from station.weights import WeightsStore

    _, label, pretrained = _patchcore_weights()
    store = WeightsStore()
    data = {"store": str(store.root), "pretrained": pretrained}
    if not pretrained:
        message = (f"no backbone weights in {store.root}: PatchCore cannot be taught with pretrained features. "
                   f"Import torchvision's file with `station weights import <file>` (or the installer's --weights)")
        raise CheckFailed(message)  # a warning unless --require-pretrained makes the check required
    return f"{label} in {store.root}", data


def check_recipe(path: Path, device: str) -> tuple[str, dict[str, Any]]:
    import numpy as np

    from station.core.recipe import load_recipe
    from station.detectors.runtime import load_inspector

    recipe = load_recipe(path)
    # never download here: the check is whether this PC has what the recipe needs (and its export, if any)
    inspector = load_inspector(recipe, device=device, allow_download=False)  # PatchCore: finds its weights by SHA-256 or fails saying how
    h, w = (int(v) for v in recipe.validation.get("image_shape") or (256, 256))
    roi = recipe.preprocessing.get("roi")
    if roi:
        h, w = int(roi[1]) + int(roi[3]), int(roi[0]) + int(roi[2])
    image = np.full((h, w, 3), 128, np.uint8)
    outcome = inspector.inspect(image)
    weights = recipe.weights or {}
    about = f"; weights {weights.get('source')} {weights.get('backbone')} {weights.get('name')}" if weights else ""
    return (f"{recipe.label}: {recipe.detector_kind}, loads and inspects a {w}x{h} image "
            f"({outcome.latency_ms:.0f} ms){about}"), {"label": recipe.label, "weights": weights}


def check_golden(path: Path, device: str) -> tuple[str, dict[str, Any]]:
    from station.app.audit import AuditLog
    from station.app.golden import record_golden_run
    from station.app.paths import AppPaths
    from station.core.golden import golden_parts, has_golden, parts_summary, run_golden
    from station.core.recipe import load_recipe
    from station.detectors.runtime import load_inspector

    recipe = load_recipe(path)
    if not has_golden(recipe):
        raise Skipped(f"{recipe.label} has no golden parts (add them with `station golden add`)")
    report = run_golden(recipe, load_inspector(recipe, device=device, allow_download=False))
    record_golden_run(AuditLog(AppPaths.default().audit_log), report, reason="station selftest")
    if not report.passed:
        raise CheckFailed(report.message())
    return f"{recipe.label}: {parts_summary(golden_parts(recipe))} judged right", report.to_dict()
