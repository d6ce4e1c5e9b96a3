"""Choosing a backbone for the line PC: what was measured for each, and which one to suggest.

No Qt, no torch: the teach-in wizard shows these lines beside its backbone choice, and the CLI or a
report can print them. The numbers are measurements, never estimates; what was not measured says so
(``None``). Where they come from: PatchCore on MVTec AD bottle, 256x256 input, 1 % coreset, on
2 CPU cores (docs/benchmarks.md has the runs, their commands and the machine load);
``tests/test_real_weights.py`` re-checks the MobileNetV2 quality in CI.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackboneRecord:
    """What is known of one backbone in PatchCore.

    Attributes
    ----------
    backbone
        The torchvision builder (a key of ``station.weights.TAPS``).
    title
        How people call it.
    quality
        ``(image ROC AUC, pixel ROC AUC)`` on bottle with real ImageNet weights, or ``None`` where no
        pretrained file could be had to measure it.
    cpu_ms
        p50 per frame (batch 1, 256x256, the faster of torch and ONNX Runtime float32) on 2 CPU cores,
        or ``None`` if not measured.
    gpu_ms
        The same on a GPU, or ``None``: no GPU was available for these measurements.
    """

    backbone: str
    title: str
    quality: tuple[float, float] | None
    cpu_ms: float | None
    gpu_ms: float | None = None

    def describe(self) -> str:
        """One line: quality, CPU and GPU speed, each as measured or 'unmeasured'."""
        quality = (f"bottle image/pixel ROC AUC {self.quality[0]:.3f}/{self.quality[1]:.3f} (real weights)"
                   if self.quality else "quality with real weights unmeasured")
        cpu = f"{self.cpu_ms:.0f} ms/frame on 2 CPU cores" if self.cpu_ms is not None else "CPU speed unmeasured"
        gpu = f"{self.gpu_ms:.0f} ms on a GPU" if self.gpu_ms is not None else "GPU unmeasured"
        return f"{self.title}: {quality}; {cpu}; {gpu}"


# Measured 2026-12-01 21:53 (tools/bench_backbones.py, ONNX Runtime float32, the faster path here) on the
# 2-core development machine, nearly idle (load 0.4-2.1; docs/benchmarks.md, third run).
RECORDS: dict[str, BackboneRecord] = {r.backbone: r for r in (
    BackboneRecord("mobilenet_v2", "MobileNetV2", (1.000, 0.984), 22.0),
    BackboneRecord("mobilenet_v3_large", "MobileNetV3-Large", None, 20.1),
    BackboneRecord("efficientnet_b0", "EfficientNet-B0", None, None),
    BackboneRecord("resnet18", "ResNet-18", None, None),
    BackboneRecord("resnet50", "ResNet-50", None, None),
    BackboneRecord("wide_resnet50_2", "WideResNet-50-2 (the paper's)", None, 177.8),
)}

FAST_ON_CPU = "mobilenet_v2"  # the fastest backbone whose real-weights quality was measured
BEST_WITH_GPU = "wide_resnet50_2"  # the paper's; with a GPU its cost does not matter on a line


def suggested_backbone(has_gpu: bool) -> str:
    """The backbone to suggest: the fast measured one on a PC without a GPU, the paper's with one."""
    return BEST_WITH_GPU if has_gpu else FAST_ON_CPU


def backbone_note(backbone: str, has_gpu: bool) -> str:
    """What the wizard says under the backbone choice: its measurements and the suggestion."""
    record = RECORDS.get(backbone)
    line = record.describe() if record else f"{backbone}: nothing measured"
    suggested = suggested_backbone(has_gpu)
    where = "with a GPU" if has_gpu else "without a GPU"
    if backbone == suggested:
        return f"{line}\nSuggested on this PC ({where})."
    title = RECORDS[suggested].title if suggested in RECORDS else suggested
    return f"{line}\nSuggested on this PC ({where}): {title} ({suggested})."
