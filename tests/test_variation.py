"""The variation model on a drawn part: good parts in varying poses stay calm, defects stand out,
the part mask keeps the background out, recipes round-trip exactly, teaching can be cancelled, and
bad input gives clear errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from station.core.progress import Cancelled, CancelToken
from station.core.recipe import load_recipe, save_recipe
from station.detectors.base import Detector, create_detector
from station.detectors.runtime import load_inspector, teach_detector
from station.detectors.variation import VariationModel

SIZE = 160
CENTRE = (SIZE - 1) / 2.0
RADIUS = int(0.38 * SIZE)


def _canonical_part(seed: int = 7) -> np.ndarray:
    """A colour washer-like part on a plain light background (float32 RGB), in its reference pose."""
    rng = np.random.default_rng(seed)
    img = np.empty((SIZE, SIZE, 3), np.float32)
    img[:] = (205.0, 200.0, 190.0)
    part = np.zeros((SIZE, SIZE), np.uint8)
    c = SIZE // 2
    cv2.circle(part, (c, c), RADIUS, 1, -1)
    cv2.circle(part, (c, c), 14, 0, -1)  # the hole
    texture = cv2.GaussianBlur(rng.standard_normal((SIZE, SIZE)).astype(np.float32), (0, 0), 1.5)
    texture *= 18.0 / texture.std()
    for ch, base in enumerate((95.0, 80.0, 60.0)):
        img[:, :, ch] = np.where(part > 0, base + texture, img[:, :, ch])
    cv2.rectangle(img, (c + 20, c - 8), (c + 50, c - 2), (170.0, 150.0, 90.0), -1)  # a printed mark
    cv2.circle(img, (c - 30, c + 25), 6, (30.0, 30.0, 35.0), -1)  # a drilled hole
    return img


_PART = _canonical_part()


def render(rng: np.random.Generator, defect: tuple[int, int] | None = None, gray: bool = False,
           max_angle: float = 8.0, max_shift: float = 6.0, extra=None) -> np.ndarray:
    """A good part in a random pose with light and sensor noise; ``defect`` = (x, y) in the image
    draws a dark spot there (after posing, so it is where the caller says)."""
    angle = rng.uniform(-max_angle, max_angle)
    m = cv2.getRotationMatrix2D((CENTRE, CENTRE), angle, 1.0)
    m[:, 2] += rng.uniform(-max_shift, max_shift, 2)
    img = cv2.warpAffine(_PART, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=(205.0, 200.0, 190.0))
    img = img * rng.uniform(0.97, 1.03) + rng.normal(0.0, 2.0, img.shape)
    if defect is not None:
        cv2.circle(img, defect, 5, (20.0, 25.0, 30.0), -1)
    if extra is not None:
        extra(img)
    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return cv2.cvtColor(out, cv2.COLOR_RGB2GRAY) if gray else out


SMALL = {"work_side": 128, "align_side": 96}  # keeps the tests fast


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    train = [render(rng) for _ in range(16)]
    good = [render(rng) for _ in range(5)]
    spots = [(60, 50), (110, 95), (75, 115), (100, 60)]
    bad = [render(rng, defect=s) for s in spots]
    return train, good, bad, spots


@pytest.fixture(scope="module")
def fitted(data):
    model = VariationModel(**SMALL)
    model.fit(data[0])
    return model


def test_is_a_registered_detector():
    model = create_detector("variation", **SMALL)
    assert isinstance(model, VariationModel) and isinstance(model, Detector)
    assert model.kind == "variation"


def test_good_parts_stay_calm_and_defects_stand_out(data, fitted):
    _, good, bad, spots = data
    g = fitted.predict(good)
    b = fitted.predict(bad)
    assert g.anomaly_maps.shape == (len(good), SIZE, SIZE) and g.anomaly_maps.dtype == np.float32
    assert np.allclose(g.scores, g.anomaly_maps.reshape(len(good), -1).max(axis=1))  # score = map max
    assert b.scores.min() > 2.0 * g.scores.max()
    for amap, (x, y) in zip(b.anomaly_maps, spots, strict=True):
        py, px = np.unravel_index(int(np.argmax(amap)), amap.shape)
        assert np.hypot(px - x, py - y) < 8, "the peak lies on the defect"


def test_alignment_is_needed_for_posed_parts(data):
    train, good, bad, _ = data
    plain = VariationModel(**SMALL, align="none", local_alignment=False, tolerance_px=0)
    plain.fit(train)
    aligned = VariationModel(**SMALL)
    aligned.fit(train)

    def separation(model):
        return model.predict(bad).scores.min() / model.predict(good).scores.max()

    assert separation(aligned) > 1.5 * separation(plain)


def test_gray_images_and_the_median_variant(data):
    rng = np.random.default_rng(5)
    train = [render(rng, gray=True) for _ in range(16)]
    # two training parts carry the same flaw: the robust statistics must not learn it as normal
    train[3] = render(rng, defect=(60, 50), gray=True, max_angle=0, max_shift=0)
    train[9] = render(rng, defect=(60, 50), gray=True, max_angle=0, max_shift=0)
    good = [render(rng, gray=True) for _ in range(4)]
    bad = [render(rng, defect=(60, 50), gray=True, max_angle=0, max_shift=0)]
    scores = {}
    for stat in ("mean", "median"):
        model = VariationModel(**SMALL, statistic=stat)
        model.fit(train)
        pred = model.predict(good + bad)
        assert pred.anomaly_maps.shape == (5, SIZE, SIZE)
        scores[stat] = pred.scores[-1] / pred.scores[:-1].max()
    assert scores["median"] > 2.0
    assert scores["median"] > 1.5 * scores["mean"]


def test_mask_keeps_the_background_out(data):
    train, _, _, _ = data
    rng = np.random.default_rng(11)

    def stain(img):  # a dark stain on the background, outside the part
        cv2.circle(img, (12, 14), 7, (40.0, 40.0, 40.0), -1)

    stained = render(rng, extra=stain, max_shift=2)
    on_part = render(rng, defect=(60, 50), max_shift=2)
    unmasked = VariationModel(**SMALL)
    unmasked.fit(train)
    assert unmasked.predict([stained]).anomaly_maps[0][14, 12] > 3.0

    polygon = [[[CENTRE + RADIUS * np.cos(t), CENTRE + RADIUS * np.sin(t)] for t in np.linspace(0, 2 * np.pi, 40)]]
    for mask in ("auto", polygon):
        model = VariationModel(**SMALL, mask=mask)
        stats = model.fit(train)
        assert 0.3 < stats["mask_fraction"] < 0.8
        maps = model.predict([stained, on_part]).anomaly_maps
        assert maps[0][:30, :30].max() == 0.0  # the stain no longer counts
        assert maps[1].max() > 3.0 * maps[0].max()  # a defect on the part still does


def test_mask_as_array_and_bad_masks(data):
    train, good, _, _ = data
    mask = np.zeros((SIZE, SIZE), bool)
    mask[20:140, 20:140] = True
    model = VariationModel(**SMALL, mask=mask)
    model.fit(train)
    amap = model.predict(good[:1]).anomaly_maps[0]
    assert amap[:5, :5].max() == 0.0 and amap[60:100, 60:100].max() > 0.0
    assert model.get_config()["mask"] == "array"
    with pytest.raises(ValueError, match="unknown mask"):
        VariationModel(mask="everything")
    with pytest.raises(ValueError, match="polygons"):
        VariationModel(mask=[[[0, 0], [1, 1]]])
    with pytest.raises(ValueError, match="covers no pixel"):
        VariationModel(mask=np.zeros((SIZE, SIZE), bool))
    wrong = VariationModel(**SMALL, mask=np.ones((50, 50), bool))
    with pytest.raises(ValueError, match="the mask is 50x50 but the images are 160x160"):
        wrong.fit(train)


def test_recipe_round_trip_gives_identical_maps(tmp_path, data):
    train, good, bad, _ = data
    polygon = [[[20, 20], [140, 20], [140, 140], [20, 140]]]
    result = teach_detector("washer", train[:12], train[12:], "variation",
                   detector_params={**SMALL, "mask": polygon, "statistic": "median"})
    config = result.recipe.detector_config
    assert json.loads(json.dumps(config)) == config  # plain JSON
    assert all(isinstance(v, np.ndarray) for v in result.detector.get_state().values())
    folder = save_recipe(result.recipe, tmp_path / "washer")
    loaded = load_recipe(folder)
    inspector = load_inspector(loaded)
    assert inspector.detector.get_config() == config
    images = good + bad
    before = result.detector.predict(images)
    after = inspector.detector.predict(images)
    assert np.array_equal(before.anomaly_maps, after.anomaly_maps)
    assert np.array_equal(before.scores, after.scores)
    verdicts = [r.verdict.value for r in inspector.inspect_batch(images)]
    assert verdicts == ["OK"] * len(good) + ["NG"] * len(bad)


def test_auto_mask_round_trips_without_the_images(data):
    train, good, _, _ = data
    model = VariationModel(**SMALL, mask="auto")
    model.fit(train)
    again = VariationModel.from_state(model.get_config(), model.get_state())
    assert again.get_config()["mask"] == "auto"
    assert np.array_equal(model.predict(good).anomaly_maps, again.predict(good).anomaly_maps)


def test_fit_reports_progress_and_cancel_stops_it(data):
    train = data[0]
    seen = []
    model = VariationModel(**SMALL)
    stats = model.fit(train, progress=seen.append)
    assert {p.stage for p in seen} == {"aligning", "learning"}
    assert [p.done for p in seen] == list(range(1, len(seen) + 1)) and seen[-1].done == seen[-1].total
    assert stats["n_images"] == len(train) and stats["alignment"]["not_refined"] == 0
    json.dumps(stats)

    token = CancelToken()

    def cancel_soon(p):
        if p.done >= 3:
            token.cancel()

    fresh = VariationModel(**SMALL)
    with pytest.raises(Cancelled):
        fresh.fit(train, progress=cancel_soon, cancel=token)
    assert not fresh.is_fitted
    with pytest.raises(RuntimeError, match="not taught"):
        fresh.predict(train[:1])


def test_bad_input_gives_clear_errors(data, fitted):
    train = data[0]
    model = VariationModel(**SMALL)
    with pytest.raises(ValueError, match="at least one image"):
        model.fit([])
    with pytest.raises(ValueError, match="at least 2 good images"):
        model.fit(train[:1])
    with pytest.raises(ValueError, match=r"same size.*160x160x3: images 0, 1.*100x120x3: images 2"):
        model.fit([train[0], train[1], np.zeros((120, 100, 3), np.uint8)])
    with pytest.raises(ValueError, match="same size"):
        model.fit([train[0], cv2.cvtColor(train[1], cv2.COLOR_RGB2GRAY)])
    with pytest.raises(ValueError, match="pixel type float64"):
        model.fit([t.astype(np.float64) for t in train])
    with pytest.raises(ValueError, match="expected"):
        model.fit([np.zeros((160, 160, 4), np.uint8)] * 2)
    with pytest.raises(ValueError, match="taught on 160x160"):
        fitted.predict([np.zeros((100, 100, 3), np.uint8)])
    with pytest.raises(ValueError, match="at least one image"):
        fitted.predict([])
    for bad in ({"align": "affine"}, {"statistic": "mode"}, {"levels": 0}, {"abs_floor": 0},
                {"tolerance_px": -1}, {"work_side": 4}):
        with pytest.raises(ValueError):
            VariationModel(**bad)
    with pytest.raises(TypeError):
        create_detector("variation", k=3.0)  # unknown parameter


def test_broken_state_gives_clear_errors(fitted):
    config, state = fitted.get_config(), fitted.get_state()
    with pytest.raises(ValueError, match="lacks reference"):
        VariationModel.from_state(config, {k: v for k, v in state.items() if k != "reference"})
    with pytest.raises(ValueError, match="flow reference"):
        VariationModel.from_state(config, {k: v for k, v in state.items() if k != "flow_reference"})
    with pytest.raises(ValueError, match="not understood"):
        VariationModel.from_state({**config, "colour": "pink"}, state)
    with pytest.raises(ValueError, match="holds none"):
        VariationModel.from_state({**config, "mask": "array"}, state)
    with pytest.raises(ValueError, match="mask='array'"):
        VariationModel(mask="array")


def test_mean_image_shows_the_learned_part(fitted):
    mean = fitted.mean_image()
    assert mean.shape == (SIZE, SIZE, 3) and mean.dtype == np.uint8
    assert mean[5, 5].mean() > 180 and mean[int(CENTRE) - 40, int(CENTRE)].mean() < 130


def test_non_square_images(data):
    train, good, _, _ = data
    crop = (slice(20, 140), slice(None))  # 160 wide, 120 high
    rng = np.random.default_rng(21)
    bad = render(rng, defect=(60, 50), max_shift=3)[crop]
    model = VariationModel(**SMALL)
    model.fit([t[crop] for t in train])
    pred = model.predict([g[crop] for g in good[:3]] + [bad])
    assert pred.anomaly_maps.shape == (4, 120, 160)
    assert pred.scores[-1] > 2.0 * pred.scores[:-1].max()
    py, px = np.unravel_index(int(np.argmax(pred.anomaly_maps[-1])), (120, 160))
    assert np.hypot(px - 60, py - 30) < 8
