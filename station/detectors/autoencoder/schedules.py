"""Training schedules: the paper's full schedule for a GPU and a budget schedule for a CPU.

``full`` follows the MVTec AD paper: 256x256 object images (the 128x128 network with one more
layer) or 128x128 texture patches from images at 512x512, 10,000 augmented samples per epoch,
Adam with learning rate 2e-4 and weight decay 1e-5, batches of 128, a constant learning rate. The
number of epochs (100) is our choice; the best epoch by held-out loss is kept.

``cpu`` teaches a part in at most 15 minutes on 2 CPU cores: the 128x128 network for objects
(4x fewer operations than 256x256), batches of 8 (on a CPU the number of updates, not the batch
size, limits how far training gets: on bottle, after 3,000 samples, batches of 8 reached a
held-out SSIM loss of 0.27, batches of 16 0.40), learning rate 1e-3 with cosine decay over 72,000
samples -- what two free cores get through in about 10.5 minutes (measured on bottle: 626 s on an
idle 2-core AMD EPYC; with 32,000 samples, 276 s, pixel ROC AUC was 0.919 against 0.936 with
72,000) -- and a hard time budget for the
training loop (``max_train_seconds``, 12 minutes) that leaves room for loading the images and
estimating the threshold. When the budget stops training early (a slower or busy machine), the
result depends on the machine's speed, and the fit statistics say so (``stopped: "time budget"``);
otherwise a seed fixes it.

``auto`` picks ``full`` on a CUDA device and ``cpu`` otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

SCHEDULE_NAMES = ("auto", "cpu", "full")
MODES = ("object", "texture")


@dataclass(frozen=True)
class Schedule:
    image_size: int  # objects: the network's input side; textures: the working image side
    patch_size: int  # textures: the network's input side (objects: unused)
    samples_per_epoch: int
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    lr_schedule: str  # "constant" or "cosine"
    max_train_seconds: float | None

    def to_dict(self) -> dict:
        return asdict(self)


_SCHEDULES: dict[tuple[str, str], Schedule] = {
    ("full", "object"): Schedule(256, 128, 10_000, 100, 128, 2e-4, 1e-5, "constant", None),
    ("full", "texture"): Schedule(512, 128, 10_000, 100, 128, 2e-4, 1e-5, "constant", None),
    ("cpu", "object"): Schedule(128, 128, 4_500, 16, 8, 1e-3, 1e-5, "cosine", 720.0),
    ("cpu", "texture"): Schedule(512, 128, 4_500, 16, 8, 1e-3, 1e-5, "cosine", 720.0),
}


def resolve_schedule_name(name: str, device: str) -> str:
    """``"auto"`` -> ``"full"`` on CUDA, else ``"cpu"``; other names are checked and returned."""
    if name not in SCHEDULE_NAMES:
        raise ValueError(f"unknown schedule {name!r}; use one of {', '.join(SCHEDULE_NAMES)}")
    if name == "auto":
        return "full" if device.startswith("cuda") else "cpu"
    return name


def schedule_for(name: str, mode: str) -> Schedule:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use 'object' (whole images) or 'texture' (patches)")
    return _SCHEDULES[(name, mode)]
