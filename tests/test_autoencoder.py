"""The SSIM autoencoder detector: architecture, SSIM, augmentation, training, maps, recipes, ONNX.

Everything runs on tiny networks (64x64 input, 8 channels) for a few steps, on the CPU.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from scipy import ndimage

from station.core.progress import Cancelled, CancelToken
from station.core.recipe import load_recipe, save_recipe
from station.detectors.autoencoder import SSIMAutoencoder
from station.detectors.autoencoder import training as training_module
from station.detectors.autoencoder.augment import Augmentation, object_samples, texture_patches
from station.detectors.autoencoder.network import ConvAutoencoder
from station.detectors.autoencoder.schedules import schedule_for
from station.detectors.autoencoder.ssim import SSIMMap, window_1d
from station.detectors.autoencoder.tiling import average_patch_maps, patch_grid, patch_starts
from station.detectors.base import Detector, DetectorError, SupportsOnnx, create_detector, detector_info
from station.detectors.runtime import build_detector, load_inspector, plan_runtime, teach_detector

TINY = dict(schedule="cpu", image_size=64, width=8, latent_dim=16, epochs=2, samples_per_epoch=16,
            batch_size=8, max_train_seconds=0, device="cpu")


def tiny(**overrides) -> SSIMAutoencoder:
    return SSIMAutoencoder(**{**TINY, **overrides})


def part_images(n: int, rng: np.random.Generator, shape=(48, 56), color=False) -> list[np.ndarray]:
    """A smooth 'part' (bright disc on a gradient) with a little noise; ``shape`` is not square on
    purpose."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    base = 60 + 80 * xx / w + 90 * (((yy - h / 2) ** 2 + (xx - w / 2) ** 2) < (min(h, w) / 3) ** 2)
    out = []
    for _ in range(n):
        im = np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)
        out.append(np.stack([im, im // 2, 255 - im], axis=-1) if color else im)
    return out


@pytest.fixture(scope="module")
def fitted() -> tuple[SSIMAutoencoder, list[np.ndarray], dict]:
    images = part_images(6, np.random.default_rng(0))
    det = tiny()
    stats = det.fit(images)
    return det, images, stats


# --- architecture ----------------------------------------------------------------------------------

def _feature_sides(seq: torch.nn.Sequential, x: torch.Tensor) -> list[tuple[int, int]]:
    sides = []
    for layer in seq:
        x = layer(x)
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            sides.append((x.shape[1], x.shape[-1]))
    return sides


def test_network_matches_table_1_of_the_paper():
    net = ConvAutoencoder(128)
    x = torch.zeros(1, 1, 128, 128)
    enc = _feature_sides(net.encoder, x)
    # (channels, side) after each encoder layer, Bergmann et al. 2019, Table 1
    assert enc == [(32, 64), (32, 32), (32, 32), (64, 16), (64, 16), (128, 8), (64, 8), (32, 8), (100, 1)]
    kernels = [m.kernel_size[0] for m in net.encoder if isinstance(m, torch.nn.Conv2d)]
    assert kernels == [4, 4, 3, 4, 3, 4, 3, 3, 8]
    dec = _feature_sides(net.decoder, net.encoder(x))
    assert dec == [(32, 8), (64, 8), (128, 8), (64, 16), (64, 16), (32, 32), (32, 32), (32, 64), (1, 128)]
    slopes = {m.negative_slope for m in net.modules() if isinstance(m, torch.nn.LeakyReLU)}
    assert slopes == {0.2}
    assert isinstance(net.decoder[-1], torch.nn.Sigmoid)
    assert not isinstance(net.encoder[-1], torch.nn.LeakyReLU)  # the latent code is linear


def test_object_network_for_256_has_one_more_layer_each_side():
    small, big = ConvAutoencoder(128), ConvAutoencoder(256, channels=3)
    n_convs = lambda seq: sum(isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) for m in seq)  # noqa: E731
    assert n_convs(big.encoder) == n_convs(small.encoder) + 1
    assert n_convs(big.decoder) == n_convs(small.decoder) + 1
    x = torch.rand(2, 3, 256, 256)
    assert big.encoder(x).shape == (2, 100, 1, 1)
    assert big(x).shape == x.shape
    with pytest.raises(ValueError, match="128"):
        ConvAutoencoder(200)


# --- SSIM ------------------------------------------------------------------------------------------

def _ssim_reference(x: np.ndarray, y: np.ndarray, window: np.ndarray) -> np.ndarray:
    f = lambda a: ndimage.correlate(a, window, mode="mirror")  # noqa: E731  (mirror == torch reflect)
    mx, my = f(x), f(y)
    vx, vy, cov = f(x * x) - mx ** 2, f(y * y) - my ** 2, f(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    return ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))


@pytest.mark.parametrize("kind", ["gaussian", "uniform"])
def test_ssim_map_matches_a_direct_computation(kind, rng):
    x = rng.random((40, 36))
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    w1 = window_1d(11, kind).double().numpy()
    expected = _ssim_reference(x, y, np.outer(w1, w1))
    got = SSIMMap(11, kind)(torch.tensor(x[None, None]).float(), torch.tensor(y[None, None]).float())[0].numpy()
    np.testing.assert_allclose(got, expected, atol=2e-4)
    valid = SSIMMap(11, kind, padding="valid")(torch.tensor(x[None, None]).float(),
                                                 torch.tensor(y[None, None]).float())[0].numpy()
    np.testing.assert_allclose(valid, expected[5:-5, 5:-5], atol=2e-4)


def test_ssim_is_one_for_identical_images_and_drops_at_a_change(rng):
    x = torch.tensor(rng.random((1, 3, 32, 32)), dtype=torch.float32)
    ssim = SSIMMap(11, "gaussian", channels=3)
    assert torch.allclose(ssim(x, x), torch.ones(1, 32, 32), atol=1e-5)
    y = x.clone()
    y[:, :, 4:8, 20:26] = 1.0 - y[:, :, 4:8, 20:26]
    m = 1 - ssim(x, y)[0]
    peak = np.unravel_index(int(m.argmax()), m.shape)
    assert 2 <= peak[0] <= 10 and 17 <= peak[1] <= 29
    assert float(m[24:, :10].max()) < 1e-4  # far away nothing changed
    with pytest.raises(ValueError, match="odd"):
        SSIMMap(10)


# --- augmentation and tiling -----------------------------------------------------------------------

def test_object_samples_are_seeded_and_mirror_only_when_allowed():
    im = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32).astype(np.uint8)
    still = Augmentation(max_rotation_deg=0, max_shift=0, mirror="none")
    a = object_samples([im], 6, still, np.random.default_rng(3))
    assert a.shape == (6, 32, 32, 1)
    assert all(np.array_equal(s[..., 0], im) for s in a)
    flips = object_samples([im], 40, Augmentation(0, 0, "horizontal"), np.random.default_rng(3))
    kinds = {("same" if np.array_equal(s[..., 0], im) else "mirrored" if np.array_equal(s[..., 0], im[:, ::-1])
              else "other") for s in flips}
    assert kinds == {"same", "mirrored"}
    moved = Augmentation(15, 0.05)
    b1 = object_samples([im, im.T.copy()], 5, moved, np.random.default_rng(7))
    b2 = object_samples([im, im.T.copy()], 5, moved, np.random.default_rng(7))
    assert np.array_equal(b1, b2)
    assert not np.array_equal(b1, object_samples([im, im.T.copy()], 5, moved, np.random.default_rng(8)))
    with pytest.raises(ValueError, match="mirror"):
        Augmentation(mirror="sideways")


def test_rotated_texture_patches_stay_inside_the_image():
    # Outside the image the border is black here: a patch reaching outside would hold dark pixels.
    im = np.full((160, 200), 100, np.uint8)
    p = texture_patches([im], 200, 64, Augmentation(180, 0, "both"), np.random.default_rng(0),
                        border=cv2.BORDER_CONSTANT)
    assert p.shape == (200, 64, 64, 1)
    assert p.min() >= 99
    # ... and the patches do reach the image's edges: the placement is not overly cautious.
    grad = np.tile(np.arange(200, dtype=np.uint8), (160, 1))
    q = texture_patches([grad], 200, 64, Augmentation(0, 0), np.random.default_rng(0))
    assert q.min() <= 2 and q.max() >= 197


def test_patch_grid_covers_the_image_and_averages_overlaps():
    assert patch_starts(512, 128, 30) == [0, 30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 330, 360, 384]
    assert patch_starts(128, 128, 30) == [0]
    corners = patch_grid((100, 90), 40, 30)
    cover = np.zeros((100, 90), int)
    for y, x in corners:
        cover[y:y + 40, x:x + 40] += 1
    assert cover.min() >= 1
    maps = np.stack([np.full((40, 40), float(i)) for i in range(len(corners))])
    avg = average_patch_maps(maps, corners, (100, 90))
    # pixel (0, 0) is only in the first patch; pixel (99, 89) only in the last one
    assert avg[0, 0] == 0 and avg[99, 89] == len(corners) - 1
    np.testing.assert_allclose(average_patch_maps(np.ones_like(maps), corners, (100, 90)), 1.0)


# --- the detector ----------------------------------------------------------------------------------

def test_registry_protocols_and_schedules():
    assert detector_info("autoencoder").color_mode == "gray"
    det = create_detector("autoencoder", device="cpu")
    assert isinstance(det, SSIMAutoencoder) and isinstance(det, Detector) and isinstance(det, SupportsOnnx)
    cfg = det.get_config()
    assert cfg["schedule"] == "cpu"  # "auto" on a machine without CUDA
    assert cfg["image_size"] == 128 and 0 < cfg["max_train_seconds"] <= 15 * 60
    full = schedule_for("full", "object")
    assert (full.image_size, full.samples_per_epoch, full.batch_size, full.learning_rate, full.weight_decay) == \
        (256, 10_000, 128, 2e-4, 1e-5)
    assert full.max_train_seconds is None
    gpu_cfg = SSIMAutoencoder(schedule="full", device="cpu").get_config()
    assert gpu_cfg["image_size"] == 256 and gpu_cfg["max_train_seconds"] == 0
    tex = SSIMAutoencoder(mode="texture", schedule="full", device="cpu")
    assert (tex.image_size, tex.input_size, tex.stride, tex.augmentation.max_rotation_deg) == (512, 128, 30, 180)
    with pytest.raises(TypeError):
        create_detector("autoencoder", no_such_option=1)
    for bad in (dict(mode="blob"), dict(color="cmyk"), dict(anomaly_map="l3"), dict(schedule="fast"),
                dict(image_size=100), dict(ssim_kernel="box"), dict(epochs=0), dict(mirror="diagonal")):
        with pytest.raises(ValueError):
            SSIMAutoencoder(**{**TINY, **bad})


def test_fit_predict_shapes_and_score_is_the_map_maximum(fitted):
    det, images, stats = fitted
    assert stats["epochs_run"] == 2 and stats["steps"] == 4 and stats["holdout_images"] == 1
    assert 1 <= stats["best_epoch"] <= 2 and len(stats["train_loss"]) == 2
    pred = det.predict(images[:3])
    assert pred.anomaly_maps.shape == (3, 48, 56) and pred.anomaly_maps.dtype == np.float32
    assert np.all(np.isfinite(pred.anomaly_maps)) and pred.anomaly_maps.min() >= 0
    np.testing.assert_array_equal(pred.scores, pred.anomaly_maps.reshape(3, -1).max(axis=1))
    rgb = np.stack([images[0]] * 3, axis=-1)  # colour input is converted to the detector's gray
    np.testing.assert_allclose(det.predict([rgb]).anomaly_maps[0], pred.anomaly_maps[0], atol=1e-4)
    with pytest.raises(ValueError, match="one size"):
        det.predict([images[0], images[0][:40]])
    with pytest.raises(RuntimeError, match="not fitted"):
        tiny().predict(images[:1])


def test_map_localises_a_defect_at_the_input_resolution():
    """With a reconstruction that is always the good part, the map peaks where the input differs,
    at the input's own (non-square) resolution."""
    good = part_images(1, np.random.default_rng(1), shape=(90, 150))[0]
    det = tiny()

    class Remembers(torch.nn.Module):
        def forward(self, x):
            return torch.from_numpy(det._resize(good, 64).astype(np.float32) / 255)[None, None].expand_as(x)

    det._install(Remembers())
    bad = good.copy()
    bad[20:32, 100:120] = 255 - bad[20:32, 100:120]
    m = det.predict([good, bad]).anomaly_maps
    assert m.shape == (2, 90, 150)
    assert m[0].max() < 0.05
    y, x = np.unravel_index(int(m[1].argmax()), m[1].shape)
    assert 12 <= y <= 40 and 90 <= x <= 130
    det_l2 = tiny(anomaly_map="l2")
    det_l2._install(Remembers())
    m2 = det_l2.predict([bad]).anomaly_maps[0]
    y2, x2 = np.unravel_index(int(m2.argmax()), m2.shape)
    assert 12 <= y2 <= 40 and 90 <= x2 <= 130


def test_training_is_reproducible_with_a_seed():
    images = part_images(5, np.random.default_rng(2))
    a, b, c = tiny(seed=3), tiny(seed=3), tiny(seed=4)
    sa, sb, sc = a.fit(images), b.fit(images), c.fit(images)
    assert sa["train_loss"] == sb["train_loss"] and sa["holdout_loss"] == sb["holdout_loss"]
    assert all(np.array_equal(a.get_state()[k], b.get_state()[k]) for k in a.get_state())
    assert sc["train_loss"] != sa["train_loss"]


def test_the_best_epoch_is_kept(monkeypatch):
    images = part_images(4, np.random.default_rng(5))
    scripted = iter([0.5, 0.3, 0.4])
    snapshots = []

    def fake_holdout_loss(model, *args, **kwargs):
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return next(scripted)

    monkeypatch.setattr(training_module, "holdout_loss", fake_holdout_loss)
    det = tiny(epochs=3)
    stats = det.fit(images)
    assert stats["best_epoch"] == 2 and stats["holdout_loss"] == [0.5, 0.3, 0.4]
    final = det._net.autoencoder.state_dict()
    assert all(torch.equal(final[k], snapshots[1][k]) for k in final)
    assert not all(torch.equal(final[k], snapshots[2][k]) for k in final)


def test_time_budget_stops_training_early_and_one_image_is_enough():
    det = tiny(epochs=50, max_train_seconds=0.001)
    stats = det.fit(part_images(1, np.random.default_rng(0)))
    assert stats["stopped"] == "time budget" and stats["epochs_run"] == 1 and stats["steps"] == 1
    assert stats["holdout_images"] == 0 and stats["holdout_source"].startswith("training images")


def test_texture_mode_and_colour(rng):
    images = part_images(3, rng, shape=(70, 80), color=True)
    det = tiny(mode="texture", color="rgb", image_size=128, patch_size=64, stride=30)
    det.fit(images)
    assert det.get_state()["net.encoder.0.weight"].shape[1] == 3
    pred = det.predict(images[:2])
    assert pred.anomaly_maps.shape == (2, 70, 80)
    assert len(patch_grid((128, 128), 64, 30)) == 16  # starts 0, 30, 60, 64 on each axis
    assert np.all(np.isfinite(pred.anomaly_maps))


def test_state_round_trip_is_exact(fitted):
    det, images, _ = fitted
    cfg, state = det.get_config(), det.get_state()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    again = SSIMAutoencoder.from_state(cfg, state, device="cpu")
    assert again.get_config() == cfg
    assert all(np.array_equal(again.get_state()[k], state[k]) for k in state)
    np.testing.assert_array_equal(again.predict(images[:2]).anomaly_maps, det.predict(images[:2]).anomaly_maps)
    broken = dict(state)
    broken.pop("net.decoder.0.weight")
    with pytest.raises(DetectorError, match="missing"):
        SSIMAutoencoder.from_state(cfg, broken)
    with pytest.raises(DetectorError, match="wrong shape"):
        SSIMAutoencoder.from_state({**cfg, "latent_dim": 17}, state)


def test_teach_save_load_and_inspect(tmp_path):
    rng = np.random.default_rng(9)
    images = part_images(7, rng)
    result = teach_detector("tiny part", images[:5], images[5:], "autoencoder", detector_params={**TINY})
    assert result.recipe.training["schedule"] == "cpu"
    folder = save_recipe(result.recipe, tmp_path / "part")
    recipe = load_recipe(folder)
    assert recipe.detector_config == result.detector.get_config()
    inspector = load_inspector(recipe, device="cpu")
    out = inspector.inspect(images[6])
    assert out.anomaly_map.shape == (48, 56)
    np.testing.assert_array_equal(out.anomaly_map, result.detector.predict([images[6]]).anomaly_maps[0])


def test_cancelled_teach_raises_and_leaves_no_recipe(tmp_path):
    images = part_images(6, np.random.default_rng(4))
    token = CancelToken()
    seen = []

    def progress(p):
        seen.append(p)
        if p.stage == "training" and p.done == 2:
            token.cancel()

    part = tmp_path / "part"
    with pytest.raises(Cancelled):
        result = teach_detector("p", images[:4], images[4:], "autoencoder", detector_params={**TINY, "epochs": 20},
                       progress=progress, cancel=token)
        save_recipe(result.recipe, part)  # never reached
    assert max(p.done for p in seen if p.stage == "training") == 2  # stopped at the next step
    assert not part.exists()


def test_onnx_export_matches_torch_and_refuses_other_weights(fitted, tmp_path):
    det, images, _ = fitted
    paths = det.export_onnx(tmp_path / "onnx")
    assert [p.name for p in paths] == ["autoencoder.onnx"] and paths[0].is_file()
    assert list((tmp_path / "onnx").iterdir()) == paths  # one self-contained file, no temporaries
    ort_det = SSIMAutoencoder.from_state(det.get_config(), det.get_state(), device="cpu",
                                         backend="onnxruntime", onnx_dir=tmp_path / "onnx")
    batch = images[:3]
    a, b = ort_det.predict(batch).anomaly_maps, det.predict(batch).anomaly_maps
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3 * float(np.abs(b).max()))
    assert ort_det.get_state().keys() == det.get_state().keys()
    other = {k: v + 0.01 for k, v in det.get_state().items()}
    with pytest.raises(DetectorError, match="other weights"):
        SSIMAutoencoder.from_state(det.get_config(), other, backend="onnxruntime", onnx_dir=tmp_path / "onnx")
    with pytest.raises(FileNotFoundError):
        SSIMAutoencoder.from_state(det.get_config(), det.get_state(), backend="onnxruntime",
                                   onnx_dir=tmp_path / "missing")
    # "auto" (station.detectors.runtime): ONNX Runtime on the CPU where a current export exists,
    # torch otherwise
    def auto(state, onnx_dir):
        plan = plan_runtime("autoencoder", det.get_config(), device="cpu", backend="auto", onnx_dir=onnx_dir)
        return build_detector("autoencoder", det.get_config(), state, **plan.options)

    assert auto(det.get_state(), tmp_path / "onnx")._onnx is not None
    tmp_empty = tmp_path / "empty"
    tmp_empty.mkdir()
    for onnx_dir in (tmp_path / "missing", tmp_empty, None):
        assert auto(det.get_state(), onnx_dir)._onnx is None
    assert auto(other, tmp_path / "onnx")._onnx is None  # an export of other weights is not used


def test_full_schedule_network_runs_end_to_end_on_a_tiny_budget():
    """The full (GPU) schedule's 256x256 object network, trained for a few samples on the CPU."""
    det = SSIMAutoencoder(schedule="full", width=8, epochs=1, samples_per_epoch=4, batch_size=4, device="cpu")
    stats = det.fit(part_images(3, np.random.default_rng(0), shape=(300, 280)))
    assert stats["input_size"] == 256 and stats["steps"] == 1
    assert det.predict(part_images(1, np.random.default_rng(1), shape=(300, 280))).anomaly_maps.shape == (1, 300, 280)


def test_prefetched_batches_come_in_the_same_order_and_pass_errors_on():
    """The GPU path draws batches on a background thread; the stream must not change."""
    def draw(n, rng):
        return rng.integers(0, 255, size=(n, 4, 4, 1), dtype=np.uint8)

    sizes = [3, 3, 2]
    plain = list(training_module._Batches(draw, np.random.default_rng(5), sizes, prefetch=False))
    batches = training_module._Batches(draw, np.random.default_rng(5), sizes, prefetch=True)
    threaded = list(batches)
    batches.close()
    assert all(np.array_equal(a, b) for a, b in zip(plain, threaded, strict=True))

    def broken(n, rng):
        raise OSError("disk gone")

    failing = training_module._Batches(broken, np.random.default_rng(0), sizes, prefetch=True)
    with pytest.raises(OSError, match="disk gone"):
        list(failing)
    failing.close()


def test_initialisation_keeps_the_signal_so_the_output_depends_on_the_input():
    torch.manual_seed(0)
    net = ConvAutoencoder(128)
    with torch.no_grad():
        out = net(torch.rand(4, 1, 128, 128))
    # With PyTorch's default initialisation this is ~1e-9: every input gives the same (mean) image.
    assert float(out.std(dim=0).mean()) > 1e-3
    assert all(not m.bias.detach().any() for m in net.modules() if isinstance(m, torch.nn.Conv2d))
