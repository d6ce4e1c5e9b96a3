"""The training loop: Adam on the SSIM loss, the best epoch by held-out loss, progress and cancel.

A seed fixes everything that is random here (the sample stream; the weights are initialised by the
caller under the same seed), so two runs on the same device and thread count give the same loss
curve. On CUDA, cuDNN is put in deterministic mode for the run, and the loss uses the SSIM map
without padding: the backward pass of reflect padding is not deterministic on CUDA.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from station.core.progress import CancelToken, ProgressCallback, checkpoint, report
from station.detectors.autoencoder.ssim import SSIMMap, ssim_loss

log = logging.getLogger(__name__)

# (n, rng) -> (n, S, S, C) uint8 training samples
SampleDrawer = Callable[[int, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    samples_per_epoch: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    lr_schedule: str = "constant"
    max_train_seconds: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "samples_per_epoch", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1; got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive; got {self.learning_rate}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; use 'constant' or 'cosine'")
        if self.max_train_seconds is not None and self.max_train_seconds <= 0:
            raise ValueError(f"max_train_seconds must be positive or None; got {self.max_train_seconds}")


@dataclass
class TrainStats:
    device: str
    epochs_run: int = 0
    steps: int = 0
    samples_seen: int = 0
    best_epoch: int = 0
    best_holdout_loss: float = math.inf
    train_loss: list[float] = field(default_factory=list)  # mean per epoch
    holdout_loss: list[float] = field(default_factory=list)  # per epoch
    stopped: str = "completed"  # or "time budget"
    train_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device, "epochs_run": self.epochs_run, "steps": self.steps,
            "samples_seen": self.samples_seen, "best_epoch": self.best_epoch,
            "best_holdout_loss": round(self.best_holdout_loss, 6),
            "train_loss": [round(v, 6) for v in self.train_loss],
            "holdout_loss": [round(v, 6) for v in self.holdout_loss],
            "stopped": self.stopped, "train_seconds": round(self.train_seconds, 2),
        }


def to_tensor(batch: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """``(N, H, W, C)`` uint8 -> ``(N, C, H, W)`` float32 in [0, 1] on ``device``."""
    t = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
    return t.permute(0, 3, 1, 2).float().div_(255.0).contiguous()


class _Batches:
    """Draws ``count`` batches in order; on a GPU a background thread prepares the next ones while
    the GPU works (one producer, so the order -- and the result -- stays the same)."""

    def __init__(self, draw: SampleDrawer, rng: np.random.Generator, sizes: list[int], prefetch: bool) -> None:
        self._draw, self._rng, self._sizes = draw, rng, sizes
        self._prefetch = prefetch
        self._queue: queue.Queue = queue.Queue(maxsize=3)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        if not self._prefetch:
            for n in self._sizes:
                yield self._draw(n, self._rng)
            return
        self._thread = threading.Thread(target=self._produce, name="autoencoder-batches", daemon=True)
        self._thread.start()
        for _ in self._sizes:
            while True:
                try:
                    item = self._queue.get(timeout=0.5)
                    break
                except queue.Empty:
                    if not self._thread.is_alive() and self._queue.empty():
                        raise RuntimeError("the training-batch producer stopped unexpectedly") from None
            if isinstance(item, BaseException):
                raise item
            yield item

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for n in self._sizes:
                if not self._put(self._draw(n, self._rng)):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def holdout_loss(model: torch.nn.Module, ssim: SSIMMap, holdout: np.ndarray, device: torch.device | str,
                 batch_size: int = 64) -> float:
    """Mean SSIM loss over the fixed held-out samples."""
    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(holdout), batch_size):
            x = to_tensor(holdout[start:start + batch_size], device)
            total += float(ssim_loss(ssim(x, model(x)))) * len(x)
    model.train()
    return total / max(1, len(holdout))


def train(
    model: torch.nn.Module,
    draw: SampleDrawer,
    holdout: np.ndarray,
    settings: TrainSettings,
    ssim: SSIMMap,
    device: torch.device | str,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> TrainStats:
    """Train ``model`` in place and leave it with the weights of its best epoch (lowest loss on
    ``holdout``, fixed ``(N, S, S, C)`` uint8 samples). ``ssim`` must be an unpadded (``"valid"``)
    SSIM map. Raises ``Cancelled`` at the next step after ``cancel`` is set."""
    device = torch.device(device)
    stats = TrainStats(device=str(device))
    steps_per_epoch = math.ceil(settings.samples_per_epoch / settings.batch_size)
    total_steps = settings.epochs * steps_per_epoch
    sizes = ([settings.batch_size] * (steps_per_epoch - 1)
             + [settings.samples_per_epoch - settings.batch_size * (steps_per_epoch - 1)])
    rng = np.random.default_rng(settings.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate,
                                 weight_decay=settings.weight_decay)
    scheduler = None
    if settings.lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps)))
    best_state: dict[str, torch.Tensor] | None = None
    t0 = time.perf_counter()
    model.train()
    on_cuda = device.type == "cuda"
    # cuDNN's flags are process-wide (station.core.devices sets them once): switching them to
    # deterministic kernels here would change a live inspection running beside the training, so a
    # GPU training is seeded but not bit-for-bit repeatable; a CPU training is.
    for epoch in range(1, settings.epochs + 1):
        checkpoint(cancel)
        batches = _Batches(draw, rng, sizes, prefetch=on_cuda)
        running, n_seen = 0.0, 0
        try:
            for batch in batches:
                checkpoint(cancel)
                x = to_tensor(batch, device)
                loss = ssim_loss(ssim(x, model(x)))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                stats.steps += 1
                stats.samples_seen += len(x)
                running += float(loss.detach()) * len(x)
                n_seen += len(x)
                report(progress, "training", stats.steps, total_steps,
                       f"epoch {epoch}/{settings.epochs}, loss {running / n_seen:.4f}")
                if (settings.max_train_seconds is not None
                        and time.perf_counter() - t0 > settings.max_train_seconds):
                    stats.stopped = "time budget"
                    break
        finally:
            batches.close()
        stats.epochs_run = epoch
        stats.train_loss.append(running / max(1, n_seen))
        val = holdout_loss(model, ssim, holdout, device)
        stats.holdout_loss.append(val)
        if val < stats.best_holdout_loss:
            stats.best_holdout_loss, stats.best_epoch = val, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        log.info("autoencoder epoch %d/%d: train loss %.5f, held-out loss %.5f%s", epoch, settings.epochs,
                 stats.train_loss[-1], val, " (best)" if stats.best_epoch == epoch else "")
        if stats.stopped != "completed":
            log.warning("autoencoder training stopped by its time budget (%.0f s) after %d of %d epochs",
                        settings.max_train_seconds, epoch, settings.epochs)
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    stats.train_seconds = time.perf_counter() - t0
    return stats
