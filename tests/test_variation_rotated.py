"""The variation model on freely lying parts (issue 12, item 3): a screw at any angle over the full
circle and anywhere in the frame, on a textured background under changing light.

Acceptance: taught on 40 good screws, image ROC AUC >= 0.98 and pixel ROC AUC >= 0.95 on rendered
scratches, spots, missing thread and broken tips -- where the rigid alignment, even searching the
whole circle, stays far below. Also: ``align="auto"`` picks the free-pose mode for the screw and
records it, the recipe round-trips bit-identically, the background never counts, a part at the
border or in a larger frame is handled, and a nearly symmetric part is not smeared.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from station.acquisition.synthetic import SyntheticPart
from station.acquisition.synthetic_parts import SCREW_DEFECTS, SyntheticScrew
from station.core.metrics import pixel_curves, roc_auc
from station.core.recipe import load_recipe, save_recipe
from station.detectors.runtime import load_inspector, teach_detector
from station.detectors.variation import VariationModel

SIZE = 192
SMALL = {"work_side": 192}


@pytest.fixture(scope="module")
def screw() -> SyntheticScrew:
    return SyntheticScrew(seed=5, size=SIZE, background="textured")


@pytest.fixture(scope="module")
def test_set(screw):
    base = 1_000_000
    goods = [screw.render(base + i) for i in range(16)]
    bads = [screw.render(base + (k + 1) * 10_000 + i, kind) for k, kind in enumerate(SCREW_DEFECTS) for i in range(5)]
    return goods + bads


@pytest.fixture(scope="module")
def taught_recipe(screw):
    """Taught as the station does (40 good screws; 6 more held out for the threshold)."""
    return teach_detector("screw", screw.good_images(40), screw.good_images(6, start=40), "variation",
                 detector_params=SMALL, preprocessing={"color_mode": "gray"})  # align="auto"


@pytest.fixture(scope="module")
def taught(taught_recipe):
    return taught_recipe.detector, taught_recipe.recipe.training


def metrics(model: VariationModel, samples) -> tuple[float, float]:
    pred = model.predict([s.image for s in samples])
    labels = np.array([not s.is_good for s in samples])
    pixel = pixel_curves(list(pred.anomaly_maps), [s.mask for s in samples]).pixel_roc_auc()
    return roc_auc(pred.scores, labels), pixel


def test_freely_rotated_screw_meets_the_acceptance_numbers(taught, test_set):
    model, stats = taught
    assert model.alignment == "shape" and stats["alignment"]["mode"] == "shape"
    assert "turned" in stats["alignment"]["chosen"]
    image_auc, pixel_auc = metrics(model, test_set)
    print(f"free pose: image ROC AUC {image_auc:.3f}, pixel ROC AUC {pixel_auc:.3f}; {stats['alignment']}")
    assert image_auc >= 0.98
    assert pixel_auc >= 0.95
    assert stats["alignment"]["median_correlation"] > 0.85


def test_the_rigid_alignment_cannot_do_it(screw, test_set):
    """The same data with today's rigid fit over the whole circle: what the free-pose mode fixes."""
    model = VariationModel(**SMALL, align="rigid", max_rotation_deg=180)
    model.fit(screw.good_images(40))
    image_auc, pixel_auc = metrics(model, test_set)
    assert image_auc < 0.9 and pixel_auc < 0.95, (image_auc, pixel_auc)


def test_auto_keeps_fixtured_parts_rigid_and_the_choice_is_recorded(tmp_path, taught):
    washer = SyntheticPart(seed=1, size=128)
    rigid = VariationModel(work_side=128, align_side=96)
    stats = rigid.fit(washer.good_images(12))
    assert rigid.alignment == "rigid" and stats["alignment"]["mode"] == "rigid"
    assert rigid.get_config()["align_chosen"] == "rigid"
    model, _ = taught
    config = model.get_config()
    assert config["align"] == "auto" and config["align_chosen"] == "shape"


def test_recipe_round_trip_gives_identical_maps(tmp_path, taught_recipe, test_set):
    model = taught_recipe.detector
    inspector = load_inspector(load_recipe(save_recipe(taught_recipe.recipe, tmp_path / "screw")))
    loaded = inspector.detector
    assert loaded.alignment == "shape" and loaded.get_config() == model.get_config()
    images = [s.image for s in test_set[12:20]]
    np.testing.assert_array_equal(model.predict(images).anomaly_maps, loaded.predict(images).anomaly_maps)
    verdicts = [r.verdict.value for r in inspector.inspect_batch(images)]
    assert verdicts[:4] == ["OK"] * 4 and verdicts[4:].count("NG") >= 3
    state = model.get_state()
    assert state["mask"].any() and state["mask"].mean() < 0.6  # the part mask lives in the recipe


def test_old_rigid_recipes_still_load(tmp_path):
    washer = SyntheticPart(seed=2, size=128)
    model = VariationModel(work_side=128, align="rigid")
    model.fit(washer.good_images(6))
    config = model.get_config()
    del config["pose_method"]  # a recipe written before the free-pose mode existed
    old = VariationModel.from_state(config, model.get_state())
    assert old.alignment == "rigid" and old.pose_method == "shape"
    image = washer.render(50, "spot").image
    np.testing.assert_allclose(old.predict([image]).anomaly_maps, model.predict([image]).anomaly_maps, atol=1e-5)


def test_the_background_never_counts(taught, screw):
    """A dark blot on the textured background beside a good screw, under a much dimmer light."""
    model, _ = taught
    good = screw.render(2_000_000)
    blotted = good.image.copy()
    # far from the screw: the corner farthest from its centre
    corner = (int(SIZE - 1 - round(good.pose["x"]) > SIZE / 2) * (SIZE - 30) + 15,
              int(SIZE - 1 - round(good.pose["y"]) > SIZE / 2) * (SIZE - 30) + 15)
    cv2.circle(blotted, corner, 9, 10, -1)
    dim = np.clip(good.image.astype(np.float32) * 0.7, 0, 255).astype(np.uint8)
    maps = model.predict([good.image, blotted, dim]).anomaly_maps
    assert maps[1, corner[1] - 9:corner[1] + 10, corner[0] - 9:corner[0] + 10].max() == 0.0
    reference = maps[0].max()
    assert maps[1].max() == pytest.approx(reference, rel=0.05)
    assert maps[2].max() < 2.0 * reference + 0.5  # the light level is normalised on the part


def test_part_at_the_border_and_in_a_larger_frame(taught, screw):
    model, _ = taught
    sample = screw.render(1_000_000 + 1 * 10_000 + 2, "scratch")
    # a larger frame (the same scale): the screw pasted into a bigger image of the same background
    big = np.pad(sample.image, ((40, 8), (8, 60)), mode="reflect")
    pred = model.predict([big])
    assert pred.anomaly_maps.shape == (1, SIZE + 48, SIZE + 68)
    ys, xs = np.nonzero(sample.mask)
    py, px = np.unravel_index(int(np.argmax(pred.anomaly_maps[0])), pred.anomaly_maps.shape[1:])
    assert np.hypot(px - 8 - xs.mean(), py - 40 - ys.mean()) < 12
    # the part cut by the frame: what lies outside the image gets no verdict, nothing breaks
    ix = int(round(sample.pose["x"]))
    cut = sample.image[:, max(0, ix - 20):]
    amap = model.predict([cut]).anomaly_maps[0]
    assert amap.shape == cut.shape and np.isfinite(amap).all()


def test_full_circle_pose_is_sub_pixel(taught):
    """The located frames of the training images agree with the renderer's poses: every relative
    angle is found over the full circle, to under a pixel at the part's rim."""
    model, stats = taught
    screw = SyntheticScrew(seed=5, size=SIZE, background="textured")
    framing = model._free.framing
    angles = []
    for i in range(0, 40, 4):
        sample = screw.render(i)
        loc = model._free.locate(sample.image)
        angle = np.degrees(np.arctan2(loc.matrix[1, 0], loc.matrix[0, 0]))
        angles.append((angle - sample.pose["angle"] + 180.0) % 360.0 - 180.0)
    spread = np.abs((np.array(angles) - np.median(angles) + 180) % 360 - 180)
    rim = 60 * SIZE / 256  # the screw's half length, pixels
    assert np.radians(spread.max()) * rim < 1.0, angles  # under a pixel at the rim
    assert framing.scale == pytest.approx(1.0, abs=0.05)


def near_symmetric_part(rng: np.random.Generator, angle: float, dx: float, dy: float) -> np.ndarray:
    """A square plate with four holes (90-degree symmetric) and one small mark that breaks it."""
    img = np.full((160, 160), 190.0, np.float32)
    plate = np.zeros((160, 160), np.float32)
    cv2.rectangle(plate, (50, 50), (110, 110), 1.0, -1)
    for cx, cy in ((62, 62), (98, 62), (62, 98), (98, 98)):
        cv2.circle(plate, (cx, cy), 5, 0.0, -1)
    img = img - 120.0 * plate
    cv2.rectangle(img, (76, 54), (84, 60), 200.0, -1)  # the mark
    m = cv2.getRotationMatrix2D((79.5, 79.5), angle, 1.0)
    m[:, 2] += (dx, dy)
    out = cv2.warpAffine(cv2.GaussianBlur(img, (0, 0), 0.8), m, (160, 160), borderValue=190.0)
    return np.clip(out + rng.normal(0, 2.0, out.shape), 0, 255).astype(np.uint8)


def test_a_nearly_symmetric_part_is_not_smeared():
    rng = np.random.default_rng(3)
    train = [near_symmetric_part(rng, rng.uniform(0, 360), *rng.uniform(-25, 25, 2)) for _ in range(16)]
    model = VariationModel(work_side=160, align="shape")
    stats = model.fit(train)
    assert stats["alignment"]["with_rival_poses"] > 0  # the symmetry was seen ...
    mean = model.mean_image().astype(np.float32)
    plate = float(np.percentile(mean, 5))
    # ... and resolved: the mark stays as bright and sharp in the mean part as in one part
    assert mean.max() - plate > 0.8 * (200.0 - 70.0), (mean.max(), plate)
    good = near_symmetric_part(rng, 123.0, 10.0, -7.0)
    bad = good.copy()
    cv2.circle(bad, (80, 80), 4, 250, -1)
    pred = model.predict([good, bad])
    assert pred.scores[1] > 2.0 * pred.scores[0]


def test_bad_parameters_give_clear_errors():
    with pytest.raises(ValueError, match="unknown alignment"):
        VariationModel(align="spin")
    with pytest.raises(ValueError, match="unknown pose method"):
        VariationModel(pose_method="magic")
    model = VariationModel(align="rigid")
    config = dict(model.get_config(), align_chosen="warp")
    with pytest.raises(ValueError, match="alignment choice"):
        VariationModel.from_state(config, {})
