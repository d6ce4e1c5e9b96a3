"""The SSIM autoencoder detector (Bergmann et al., VISAPP 2019; the MVTec AD paper, CVPR 2019).

An autoencoder learns to reconstruct good parts only; where a part differs from what it has learnt,
the reconstruction differs from the input and the structural similarity (SSIM) between the two
drops. The anomaly map is ``1 - SSIM`` over an 11x11 window (or the per-pixel squared difference,
``anomaly_map="l2"``), brought back to the input's resolution; the image score is the map's
maximum -- the same quantity the threshold of the inspection acts on.

Two modes, as in the paper:

- ``mode="object"``: the whole image, resized to ``image_size`` (256 in the full schedule: the
  128x128 network of Table 1 with one more layer), is reconstructed at once. Training samples are
  randomly shifted and rotated, and mirrored where ``mirror`` says the part allows it.
- ``mode="texture"``: the image, resized to ``image_size`` (512), is reconstructed in
  ``patch_size`` (128) patches every ``stride`` (30) pixels; the patch maps are averaged where they
  overlap. Training samples are randomly placed, randomly rotated patches.

Images are converted to grayscale as in the paper (``color="gray"``); ``color="rgb"`` trains a
three-channel network (teach with the recipe's ``color_mode`` set to ``"rgb"`` so the images keep
their colour). Non-square images are resized to a square and the maps resized back.

The training schedule (``schedule``) is ``"full"`` (the paper's, for a GPU), ``"cpu"`` (at most
15 minutes on 2 cores) or ``"auto"`` (full on CUDA, else cpu); every value of the schedule can be
overridden by the parameter of the same name. See :mod:`.schedules`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from station.core.detector import DetectorError
from station.core.images import convert_color
from station.core.progress import CancelToken, ProgressCallback, checkpoint, report
from station.core.recipe import state_digest
from station.detectors.autoencoder.augment import Augmentation, object_samples, texture_patches
from station.detectors.autoencoder.onnx_io import (
    CONFIG_KEY,
    DIGEST_KEY,
    ONNX_FILE,
    OnnxMapRunner,
    export_map_net,
)
from station.detectors.autoencoder.schedules import MODES, resolve_schedule_name, schedule_for
from station.detectors.autoencoder.tiling import average_patch_maps, extract_patches, patch_grid
from station.detectors.base import Prediction

log = logging.getLogger(__name__)

COLORS = ("gray", "rgb")
ANOMALY_MAPS = ("ssim", "l2")
BACKENDS = ("torch", "onnxruntime")  # "auto" is decided for every detector in station.detectors.runtime
DEFAULT_ROTATION = {"object": 15.0, "texture": 180.0}
HOLDOUT_SAMPLES_PER_IMAGE = 16
HOLDOUT_SAMPLES = (32, 128)  # at least, at most


class SSIMAutoencoder:
    """A convolutional autoencoder trained with the SSIM loss on good images only.

    Parameters
    ----------
    mode
        ``"object"`` (whole images) or ``"texture"`` (patches at a stride).
    schedule
        ``"auto"``, ``"cpu"`` or ``"full"``; supplies every training value left at ``None``.
    color
        ``"gray"`` (the paper) or ``"rgb"``.
    image_size
        Objects: the network's input side (128 * 2^k). Textures: the side the image is resized to
        before cutting patches.
    patch_size, stride
        Textures: the network's input side (128 * 2^k) and the step between inference patches.
    latent_dim, width
        The latent code's dimension (paper: 100) and the first layers' channels (paper: 32).
    ssim_window, ssim_kernel
        The SSIM window side (11) and weighting (``"gaussian"``, sigma 1.5, or ``"uniform"``).
    anomaly_map
        ``"ssim"`` (``1 - SSIM``) or ``"l2"`` (squared difference); training always uses SSIM.
    epochs, samples_per_epoch, batch_size, learning_rate, weight_decay, lr_schedule
        Adam training on freshly augmented samples each epoch (paper: 10,000 samples, lr 2e-4,
        weight decay 1e-5, batch 128).
    max_train_seconds
        A hard time budget for the training loop; ``0`` means none.
    max_rotation_deg, max_shift, mirror
        The augmentation: rotations up to +-``max_rotation_deg`` (default 15 for objects, 180 for
        textures), shifts up to ``max_shift`` of the side (objects), flips ``"none"``,
        ``"horizontal"``, ``"vertical"`` or ``"both"`` -- only where a mirrored part is a good part.
    holdout_fraction
        The share of the training images held out to pick the best epoch by its SSIM loss.
    seed
        Fixes the weights' initialisation and the sample stream.
    device
        Runtime only (not stored): ``"auto"``, ``"cpu"`` or ``"cuda[:n]"``.
    inference_batch
        Runtime only: images (objects) or patches (textures) per network call in ``predict``.
    """

    kind: ClassVar[str] = "autoencoder"
    weights_info: ClassVar[dict[str, Any] | None] = None  # no pretrained weights

    def __init__(
        self,
        mode: str = "object",
        schedule: str = "auto",
        color: str = "gray",
        image_size: int | None = None,
        patch_size: int | None = None,
        stride: int = 30,
        latent_dim: int = 100,
        width: int = 32,
        ssim_window: int = 11,
        ssim_kernel: str = "gaussian",
        anomaly_map: str = "ssim",
        epochs: int | None = None,
        samples_per_epoch: int | None = None,
        batch_size: int | None = None,
        learning_rate: float | None = None,
        weight_decay: float | None = None,
        lr_schedule: str | None = None,
        max_train_seconds: float | None = None,
        max_rotation_deg: float | None = None,
        max_shift: float = 0.05,
        mirror: str = "none",
        holdout_fraction: float = 0.1,
        seed: int = 0,
        device: str = "auto",
        inference_batch: int | None = None,
    ) -> None:
        from station.core.devices import pick_device
        from station.detectors.autoencoder.network import extra_layers
        from station.detectors.autoencoder.ssim import WINDOW_KINDS, window_1d
        from station.detectors.autoencoder.training import TrainSettings

        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; use 'object' (whole images) or 'texture' (patches)")
        if color not in COLORS:
            raise ValueError(f"unknown color {color!r}; use 'gray' or 'rgb'")
        if anomaly_map not in ANOMALY_MAPS:
            raise ValueError(f"unknown anomaly_map {anomaly_map!r}; use 'ssim' or 'l2'")
        if ssim_kernel not in WINDOW_KINDS:
            raise ValueError(f"unknown ssim_kernel {ssim_kernel!r}; use one of {', '.join(WINDOW_KINDS)}")
        window_1d(int(ssim_window), ssim_kernel)  # checks the window size
        if not 0 <= holdout_fraction < 1:
            raise ValueError(f"holdout_fraction must lie in [0, 1); got {holdout_fraction}")
        self.device = pick_device(device).device
        self.schedule = resolve_schedule_name(schedule, self.device)
        s = schedule_for(self.schedule, mode)
        self.mode = mode
        self.color = color
        self.image_size = int(image_size if image_size is not None else s.image_size)
        self.patch_size = int(patch_size if patch_size is not None else s.patch_size)
        self.stride = int(stride)
        self.latent_dim = int(latent_dim)
        self.width = int(width)
        self.ssim_window = int(ssim_window)
        self.ssim_kernel = ssim_kernel
        self.anomaly_map = anomaly_map
        self.epochs = int(epochs if epochs is not None else s.epochs)
        self.samples_per_epoch = int(samples_per_epoch if samples_per_epoch is not None else s.samples_per_epoch)
        self.batch_size = int(batch_size if batch_size is not None else s.batch_size)
        self.learning_rate = float(learning_rate if learning_rate is not None else s.learning_rate)
        self.weight_decay = float(weight_decay if weight_decay is not None else s.weight_decay)
        self.lr_schedule = lr_schedule if lr_schedule is not None else s.lr_schedule
        cap = max_train_seconds if max_train_seconds is not None else (s.max_train_seconds or 0.0)
        self.max_train_seconds = float(cap)
        self.augmentation = Augmentation(
            float(max_rotation_deg if max_rotation_deg is not None else DEFAULT_ROTATION[mode]),
            float(max_shift), mirror)
        self.holdout_fraction = float(holdout_fraction)
        self.seed = int(seed)
        self.settings = TrainSettings(
            self.epochs, self.samples_per_epoch, self.batch_size, self.learning_rate, self.weight_decay,
            self.lr_schedule, self.max_train_seconds or None, self.seed)
        extra_layers(self.input_size)  # checks the network's input size
        if mode == "texture" and self.patch_size > self.image_size:
            raise ValueError(f"patch_size {self.patch_size} is larger than image_size {self.image_size}")
        if self.stride < 1:
            raise ValueError(f"stride must be at least 1 px; got {self.stride}")
        on_gpu = self.device.startswith("cuda")
        default_batch = (64 if on_gpu else 16) if mode == "object" else (256 if on_gpu else 64)
        self.inference_batch = int(inference_batch or default_batch)
        self._net: Any = None  # the torch AnomalyMapNet, once fitted or loaded
        self._onnx: OnnxMapRunner | None = None
        self._state: dict[str, np.ndarray] | None = None  # weights when running through ONNX Runtime
        self._warned_gray = False

    # --- sizes ---------------------------------------------------------------------------------
    @property
    def input_size(self) -> int:
        """The side of the network's square input."""
        return self.image_size if self.mode == "object" else self.patch_size

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    @property
    def is_fitted(self) -> bool:
        return self._net is not None or self._onnx is not None

    # --- the protocol --------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "schedule": self.schedule, "color": self.color,
            "image_size": self.image_size, "patch_size": self.patch_size, "stride": self.stride,
            "latent_dim": self.latent_dim, "width": self.width,
            "ssim_window": self.ssim_window, "ssim_kernel": self.ssim_kernel, "anomaly_map": self.anomaly_map,
            "epochs": self.epochs, "samples_per_epoch": self.samples_per_epoch, "batch_size": self.batch_size,
            "learning_rate": self.learning_rate, "weight_decay": self.weight_decay,
            "lr_schedule": self.lr_schedule, "max_train_seconds": self.max_train_seconds,
            "max_rotation_deg": self.augmentation.max_rotation_deg, "max_shift": self.augmentation.max_shift,
            "mirror": self.augmentation.mirror, "holdout_fraction": self.holdout_fraction, "seed": self.seed,
        }

    def fit(
        self,
        images: Sequence[np.ndarray],
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> dict[str, Any]:
        import torch

        from station.detectors.autoencoder.network import ConvAutoencoder
        from station.detectors.autoencoder.ssim import SSIMMap
        from station.detectors.autoencoder.training import train

        work = self._working_images(images, "training")
        report(progress, "preparing", 0, 1, "resizing training images")
        checkpoint(cancel)
        train_imgs, hold_imgs = self._split_holdout(work)
        holdout_source = "held-out images" if hold_imgs is not train_imgs else "training images (too few to hold out)"
        n_hold = int(np.clip(HOLDOUT_SAMPLES_PER_IMAGE * len(hold_imgs), *HOLDOUT_SAMPLES))
        holdout = self._draw(hold_imgs, n_hold, np.random.default_rng([self.seed, 1]))
        report(progress, "preparing", 1, 1)

        with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG untouched
            torch.manual_seed(self.seed)
            model = ConvAutoencoder(self.input_size, self.channels, self.latent_dim, self.width)
        model.init_output_level((np.stack(train_imgs).reshape(-1, self.channels).mean(axis=0) / 255.0).tolist())
        model.to(self.device)
        loss_ssim = SSIMMap(self.ssim_window, self.ssim_kernel, self.channels, padding="valid").to(self.device)
        stats = train(model, lambda n, rng: self._draw(train_imgs, n, rng), holdout, self.settings,
                      loss_ssim, self.device, progress, cancel)
        self._install(model)
        self._onnx, self._state = None, None
        return {
            "schedule": self.schedule, "mode": self.mode, "input_size": self.input_size,
            "train_images": len(train_imgs), "holdout_images": 0 if hold_imgs is train_imgs else len(hold_imgs),
            "holdout_samples": len(holdout), "holdout_source": holdout_source, **stats.to_dict(),
        }

    def predict(self, images: Sequence[np.ndarray]) -> Prediction:
        if not self.is_fitted:
            raise RuntimeError("the autoencoder is not fitted; call fit() or load a recipe first")
        if len(images) == 0:
            return Prediction(np.zeros((0, 0, 0), np.float32), np.zeros(0, np.float32))
        shape = self._check_images(images, "inspection")
        work = [self._resize(self._convert(im), self.image_size) for im in images]
        if self.mode == "object":
            maps = self._run(np.stack(work))
        else:
            maps = np.stack([self._texture_map(w) for w in work])
        h, w = shape
        out = np.empty((len(images), h, w), dtype=np.float32)
        for i, m in enumerate(maps):
            out[i] = m if m.shape == (h, w) else cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
        return Prediction(out, out.reshape(len(out), -1).max(axis=1))

    def get_state(self) -> dict[str, np.ndarray]:
        if self._state is not None:
            return {k: v.copy() for k, v in self._state.items()}
        if self._net is None:
            raise RuntimeError("the autoencoder is not fitted: it has no state yet")
        return {f"net.{k}": v.detach().cpu().numpy().copy()
                for k, v in self._net.autoencoder.state_dict().items()}

    @classmethod
    def from_state(
        cls,
        config: dict[str, Any],
        state: dict[str, np.ndarray],
        device: str = "auto",
        backend: str = "torch",
        onnx_dir: str | Path | None = None,
        inference_batch: int | None = None,
    ) -> SSIMAutoencoder:
        """Rebuild a fitted detector on ``device``. ``backend="onnxruntime"`` runs the network
        through ONNX Runtime from ``onnx_dir`` (the folder :meth:`export_onnx` wrote), which must
        hold the model exported from exactly these weights (``station.detectors.runtime`` decides
        which backend a station uses)."""
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
        try:
            det = cls(**config, device=device, inference_batch=inference_batch)
        except (TypeError, ValueError) as exc:
            raise DetectorError(f"the autoencoder's stored configuration is not valid ({exc})") from exc
        state = {k: np.asarray(v) for k, v in state.items()}
        det._check_state(state)
        if backend == "torch":
            det._install(det._build_net(state))
        else:
            if onnx_dir is None:
                raise ValueError("backend='onnxruntime' needs onnx_dir, the folder export_onnx() wrote")
            det._state = state
            det._onnx = OnnxMapRunner(Path(onnx_dir) / ONNX_FILE, det.device, state_digest(state),
                                      det._onnx_config())
        return det

    def export_onnx(self, directory: Path) -> list[Path]:
        """Write ``autoencoder.onnx`` (image batch -> anomaly map at the network's resolution) into
        ``directory``; returns its path."""
        import copy

        import torch

        state = self.get_state()
        net = self._net if self._net is not None else self._build_net(state)
        cpu_net = copy.deepcopy(net).to("cpu").eval()
        example = torch.rand(2, self.channels, self.input_size, self.input_size)
        meta = {DIGEST_KEY: state_digest(state), CONFIG_KEY: json.dumps(self._onnx_config()),
                "station.kind": self.kind}
        return [export_map_net(cpu_net, example, Path(directory) / ONNX_FILE, meta)]

    # --- internals -----------------------------------------------------------------------------
    def _onnx_config(self) -> dict[str, Any]:
        return {"input_size": self.input_size, "channels": self.channels, "anomaly_map": self.anomaly_map,
                "ssim_window": self.ssim_window, "ssim_kernel": self.ssim_kernel}

    def _build_net(self, state: dict[str, np.ndarray]) -> Any:
        import torch

        from station.detectors.autoencoder.network import ConvAutoencoder

        model = ConvAutoencoder(self.input_size, self.channels, self.latent_dim, self.width)
        model.load_state_dict({k.removeprefix("net."): torch.from_numpy(v.copy()) for k, v in state.items()})
        return model.to(self.device).eval()

    def _install(self, model: Any) -> None:
        from station.detectors.autoencoder.network import AnomalyMapNet
        from station.detectors.autoencoder.ssim import SSIMMap

        ssim = SSIMMap(self.ssim_window, self.ssim_kernel, self.channels, padding="reflect")
        self._net = AnomalyMapNet(model, self.anomaly_map, ssim).to(self.device).eval()

    def _check_state(self, state: dict[str, np.ndarray]) -> None:
        """Refuse weights that do not fit the configured network, naming what differs."""
        from station.detectors.autoencoder.network import ConvAutoencoder

        expected = {f"net.{k}": tuple(v.shape) for k, v in
                    ConvAutoencoder(self.input_size, self.channels, self.latent_dim, self.width).state_dict().items()}
        missing = sorted(set(expected) - set(state))
        extra = sorted(set(state) - set(expected))
        wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k])
        if missing or extra or wrong:
            parts = [f"{name}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                     for name, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", wrong)) if keys]
            raise DetectorError("the autoencoder's weights do not fit its configuration (" + "; ".join(parts) + ")")

    def _check_images(self, images: Sequence[np.ndarray], what: str) -> tuple[int, int]:
        shapes = set()
        for im in images:
            if not isinstance(im, np.ndarray) or im.dtype != np.uint8 or im.ndim not in (2, 3):
                raise ValueError(f"{what} images must be uint8 arrays (H, W) or (H, W, 3)")
            shapes.add(im.shape[:2])
        if len(shapes) > 1:
            raise ValueError(f"{what} images must all have one size; found {sorted(shapes)}")
        return next(iter(shapes))

    def _convert(self, image: np.ndarray) -> np.ndarray:
        if self.color == "rgb" and image.ndim == 2 and not self._warned_gray:
            log.warning("the autoencoder was configured for colour but receives gray images; set the "
                        "recipe's colour mode to 'rgb' to use colour")
            self._warned_gray = True
        return convert_color(image, self.color)

    @staticmethod
    def _resize(image: np.ndarray, side: int) -> np.ndarray:
        if image.shape[:2] != (side, side):
            shrink = side < max(image.shape[:2])
            image = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return image

    def _working_images(self, images: Sequence[np.ndarray], what: str) -> list[np.ndarray]:
        if len(images) == 0:
            raise ValueError("the autoencoder needs at least one good image to learn from")
        self._check_images(images, what)
        return [self._resize(self._convert(im), self.image_size) for im in images]

    def _split_holdout(self, work: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        n = len(work)
        n_hold = min(n - 1, max(1, round(n * self.holdout_fraction))) if n >= 2 and self.holdout_fraction > 0 else 0
        if n_hold == 0:
            return work, work
        order = np.random.default_rng([self.seed, 0]).permutation(n)
        held = set(order[:n_hold].tolist())
        return ([w for i, w in enumerate(work) if i not in held], [w for i, w in enumerate(work) if i in held])

    def _draw(self, images: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
        if self.mode == "object":
            return object_samples(images, n, self.augmentation, rng)
        return texture_patches(images, n, self.patch_size, self.augmentation, rng)

    def _texture_map(self, image: np.ndarray) -> np.ndarray:
        corners = patch_grid(image.shape[:2], self.patch_size, self.stride)
        patches = extract_patches(image, corners, self.patch_size)
        return average_patch_maps(self._run(patches), corners, image.shape[:2])

    def _run(self, batch: np.ndarray) -> np.ndarray:
        """``(N, S, S[, C])`` uint8 -> ``(N, S, S)`` float32 maps, in chunks of ``inference_batch``."""
        x = batch[..., None] if batch.ndim == 3 else batch
        out = []
        for start in range(0, len(x), self.inference_batch):
            chunk = np.ascontiguousarray(x[start:start + self.inference_batch].transpose(0, 3, 1, 2),
                                         dtype=np.float32) / np.float32(255.0)
            out.append(self._onnx(chunk) if self._onnx is not None else self._run_torch(chunk))
        return np.concatenate(out)

    def _run_torch(self, chunk: np.ndarray) -> np.ndarray:
        import torch

        from station.core.devices import is_out_of_memory

        try:
            with torch.inference_mode():
                return self._net(torch.from_numpy(chunk).to(self.device)).float().cpu().numpy()
        except RuntimeError as exc:
            if not (self.device.startswith("cuda") and is_out_of_memory(exc)):
                raise
            log.warning("GPU out of memory in the autoencoder; continuing on the CPU")
            torch.cuda.empty_cache()
            self.device = "cpu"
            self._net = self._net.to("cpu")
            with torch.inference_mode():
                return self._net(torch.from_numpy(chunk)).float().cpu().numpy()
