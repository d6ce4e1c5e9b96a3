"""The working geometry: resize, pad and tiles there and back, what a recipe can serve, the choice at
teach time -- without any real detector (a map that is the image itself shows every offset error)."""

from __future__ import annotations

import numpy as np
import pytest

from station.core.geometry import (
    FITS,
    Geometry,
    GeometryError,
    GeometrySpec,
    choose_geometry,
    predict_in_geometry,
    size_notice,
    split_geometry_params,
    to_working,
)
from station.detectors.base import Prediction, detector_info


def identity_predict(images):
    """A 'detector' whose anomaly map is the image's own grey value (scores: the map maximum)."""
    maps = np.stack([im.astype(np.float32) if im.ndim == 2 else im[..., 0].astype(np.float32) for im in images])
    return Prediction(maps, maps.reshape(len(maps), -1).max(1))


def ramp_image(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return ((xx * 3 + yy * 5) % 251).astype(np.uint8)


def taught(shapes, fit="resize", size=None, **kw) -> Geometry:
    spec = GeometrySpec(fits=FITS)
    opts = {"fit": fit, **({"work_size": size} if size else {}), **kw}
    return choose_geometry(spec, {}, shapes, opts)


@pytest.mark.parametrize("shape", [(40, 100), (130, 70), (64, 64), (20, 300)])
def test_tiles_stitch_back_exactly(shape):
    g = taught([shape], "tiles", size=32, tile_overlap=0.3)
    image = ramp_image(*shape)
    maps, scores = predict_in_geometry(identity_predict, [image], g)
    assert maps[0].shape == shape
    # every tile's map is a crop of the same image: the blended map must be that image, pixel for pixel
    np.testing.assert_allclose(maps[0], image.astype(np.float32), atol=1e-3)
    assert scores[0] == pytest.approx(float(image.max()))


def test_tiles_cover_and_overlap():
    g = taught([(100, 250)], "tiles", size=64, tile_overlap=0.25)
    tiles, plan = g.forward(ramp_image(100, 250))
    assert len(tiles) == g.tile_count((100, 250)) == 2 * 5 and all(t.shape == (64, 64) for t in tiles)
    xs = sorted({x for _, x in plan.corners})
    assert xs[0] == 0 and xs[-1] == 250 - 64 and max(np.diff(xs)) <= 48  # step 64 * (1 - 0.25)
    small, plan = g.forward(ramp_image(20, 30))  # smaller than one tile: padded up, map cropped back
    assert len(small) == 1 and small[0].shape == (64, 64)


def test_pad_keeps_the_aspect_and_maps_back_to_the_original_pixels():
    g = taught([(50, 200)], "pad", size=(64, 64))
    image = ramp_image(50, 200)
    work, plan = g.forward(image)
    assert work[0].shape == (64, 64)
    top, left, ch, cw = plan.box
    assert (ch, cw) == (16, 64) and top == 24  # 200:50 into 64x64: 64 wide, 16 high, centred
    maps, _ = predict_in_geometry(identity_predict, [image], g)
    assert maps[0].shape == (50, 200)
    # down to a quarter and back: the ramp survives up to interpolation (no shift of the content)
    assert np.mean(np.abs(maps[0] - image.astype(np.float32))) < 12


def test_resize_to_the_data_size_and_back():
    shapes = [(100, 240), (100, 250), (100, 260)]
    g = taught(shapes, "resize")
    assert g.size == (100, 250) and not g.delegate
    work = to_working([ramp_image(*s) for s in shapes], g)
    assert {w.shape for w in work} == {(100, 250)}  # the detector learns one size
    maps, _ = predict_in_geometry(identity_predict, [ramp_image(100, 240)], g)
    assert maps[0].shape == (100, 240)


def test_a_detector_with_its_own_size_resizes_itself_when_the_set_has_one_size():
    spec = detector_info("patchcore").geometry
    one = choose_geometry(spec, {"input_size": 256}, [(300, 400)] * 3, {})
    assert one.fit == "resize" and one.delegate and one.size == (256, 256)  # as before: identical results
    mixed = choose_geometry(spec, {"input_size": [128, 192]}, [(300, 400), (310, 420)], {})
    assert not mixed.delegate and mixed.size == (128, 192)


def test_frames_the_recipe_cannot_serve_say_what_to_do():
    g = taught([(500, 1240), (500, 1285)], "resize")
    g.check((500, 1260))
    with pytest.raises(GeometryError, match=r"600x600 .*width/height 1.00.*1240x500 .. 1285x500.*fit=pad"):
        g.check((600, 600))
    with pytest.raises(GeometryError, match=r"differs from the taught size.*binning"):
        g.check((250, 620))  # same aspect, a quarter of the pixels: another scale
    with pytest.raises(GeometryError, match="at least 8 px"):
        g.check((4, 100))
    taught([(500, 1240)], "pad").check((300, 1240))  # pad serves another aspect
    taught([(500, 1240)], "tiles", size=256).check((2048, 2048))  # tiles serve any size


def test_choice_at_teach_time_and_its_errors():
    geo, det = split_geometry_params({"fit": "pad", "tile_overlap": 0.1, "coreset_ratio": 0.1})
    assert geo == {"fit": "pad", "tile_overlap": 0.1} and det == {"coreset_ratio": 0.1}
    variation = detector_info("variation")
    with pytest.raises(GeometryError, match=r"cannot use fit=tiles: it learns per-pixel.*fit=resize or fit=pad"):
        choose_geometry(variation.geometry, {}, [(64, 64)], {"fit": "tiles"}, variation.title)
    with pytest.raises(GeometryError, match="unknown fit 'crop'"):
        choose_geometry(variation.geometry, {}, [(64, 64)], {"fit": "crop"})
    with pytest.raises(GeometryError, match="work_size"):
        choose_geometry(GeometrySpec(fits=FITS), {}, [(64, 64)], {"fit": "tiles"})
    with pytest.raises(GeometryError, match="tile_overlap"):
        choose_geometry(GeometrySpec(fits=FITS), {}, [(64, 64)], {"fit": "tiles", "work_size": 32,
                                                                  "tile_overlap": 0.95})


def test_recipe_storage_round_trip_and_old_recipes():
    g = taught([(100, 240), (120, 260)], "tiles", size=[32, 48], tile_overlap=0.2)
    assert Geometry.from_dict(g.to_dict()) == g
    old = Geometry.from_dict(None)  # a recipe taught before the geometry layer
    assert old.fit == "native" and not old.needs_mapping()
    image = ramp_image(30, 40)
    maps, _ = predict_in_geometry(identity_predict, [image], old)
    np.testing.assert_array_equal(maps[0], image.astype(np.float32))  # unchanged, as it always was
    with pytest.raises(GeometryError, match="unknown geometry fit"):
        Geometry.from_dict({"fit": "warp"})


def test_size_notice_counts_the_other_sizes():
    g = taught([(500, 1240)] * 3, "resize")
    assert size_notice([(500, 1240)] * 3, g) is None
    text = size_notice([(500, 1240), (500, 1250), (500, 1240), (510, 1240)], g)
    assert text.startswith("2 of 4 images have other sizes than the first (1240x500)") and "fit=pad" in text


def test_size_notice_offers_only_the_fits_the_detector_has():
    variation = detector_info("variation").geometry
    g = choose_geometry(variation, {}, [(500, 1240), (500, 1250)], {})
    text = size_notice([(500, 1240), (500, 1250)], g)
    assert "fit=pad" in text and "tiles" not in text


def test_tiled_recipes_keep_the_peaks_of_their_validation_maps():
    from station.core.teach import reduce_validation_map

    m = np.zeros((2048, 1500), np.float32)
    m[1000:1003, 700:703] = 5.0  # a 3x3 px peak on a big frame
    kept = reduce_validation_map(m, 256, peaks=True)
    assert max(kept.shape) <= 256 and kept.max() == 5.0
    assert reduce_validation_map(m, 256).max() < 1.0  # averaging would dilute it below the threshold
