"""The synthetic demo part and its source: determinism, exact masks, variation, pacing, URI options."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from station.acquisition.base import SourceError, SourceState, open_source
from station.acquisition.synthetic import DEFECT_TYPES, SyntheticPart, SyntheticSource, export_mvtec


@pytest.fixture(scope="module")
def part() -> SyntheticPart:
    return SyntheticPart(seed=3)


def test_same_seed_and_index_give_the_same_part(part):
    a = part.render(11, "scratch")
    b = SyntheticPart(seed=3).render(11, "scratch")
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.defects == b.defects
    c = SyntheticPart(seed=4).render(11, "scratch")
    assert not np.array_equal(a.image, c.image)


def test_good_parts_vary_a_little_and_have_empty_masks(part):
    goods = [part.render(i) for i in range(6)]
    for g in goods:
        assert g.image.shape == (256, 256, 3) and g.image.dtype == np.uint8
        assert g.label == "good" and g.is_good and not g.mask.any() and g.defects == []
    diffs = [np.abs(goods[0].image.astype(int) - g.image.astype(int)).mean() for g in goods[1:]]
    assert all(d > 0.5 for d in diffs), diffs  # pose, light and texture differ from part to part ...
    assert all(d < 25 for d in diffs), diffs  # ... but it stays the same part
    assert len({tuple(round(v, 3) for v in g.pose.values()) for g in goods}) == len(goods)


def test_no_jitter_gives_identical_geometry():
    p = SyntheticPart(seed=0, jitter=0.0)
    a, b = p.render(1), p.render(2)
    assert a.pose["dx"] == b.pose["dx"] == 0 and a.pose["angle"] == 0
    assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() < 3  # sensor noise only


@pytest.mark.parametrize("kind", DEFECT_TYPES)
def test_defect_mask_is_exactly_where_the_image_changed(part, kind):
    for index in (0, 5, 9):
        bad = part.render(index, kind)
        good = part.render(index)  # same part, same pose, same noise: only the defect differs
        assert bad.label == kind and len(bad.defects) == 1 and bad.defects[0]["type"] == kind
        mask = bad.mask
        area = int(mask.sum())
        assert area >= 30, area
        assert bad.defects[0]["area_px"] == area
        x, y, w, h = bad.defects[0]["bbox"]
        ys, xs = np.nonzero(mask)
        assert (x, y, w, h) == (xs.min(), ys.min(), xs.max() - x + 1, ys.max() - y + 1)
        diff = np.abs(bad.image.astype(int) - good.image.astype(int)).max(axis=2)
        # Outside the mask grown by its anti-aliased rim nothing changed ...
        grown = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        assert diff[~grown].max() == 0
        # ... and inside it the defect is clearly visible.
        assert np.median(diff[mask]) >= 12, (kind, index, np.median(diff[mask]))


def test_defects_lie_on_the_part(part):
    for i in range(8):
        s = part.render(i, "random")
        assert s.label in DEFECT_TYPES
        centre = np.array(s.image.shape[:2]) / 2
        ys, xs = np.nonzero(s.mask)
        radius = np.hypot(xs - centre[1], ys - centre[0])
        assert radius.max() <= part.outer_r + 4 and radius.min() >= part.bore_r - 4


def test_sample_follows_the_defect_rate(part):
    labels = [part.sample(i, defect_rate=0.3).label for i in range(300)]
    rate = sum(label != "good" for label in labels) / len(labels)
    assert 0.2 < rate < 0.4
    assert set(labels) == {"good", *DEFECT_TYPES}
    assert all(part.sample(i, defect_rate=0.0).is_good for i in range(20))
    assert [part.sample(i, 0.3).label for i in range(50)] == labels[:50]


def test_good_images_for_teaching(part):
    images = part.good_images(4, start=10)
    assert len(images) == 4
    np.testing.assert_array_equal(images[2], part.render(12).image)


def test_size_scales_the_part():
    s = SyntheticPart(seed=0, size=128).render(0, "spot")
    assert s.image.shape == (128, 128, 3) and s.mask.any()
    with pytest.raises(ValueError):
        SyntheticPart(size=16)


def test_unknown_defect_is_refused(part):
    with pytest.raises(ValueError, match="unknown defect"):
        part.render(0, "dent")


def test_source_from_uri_delivers_frames_with_masks():
    src = open_source("synthetic://demo?defect_rate=0.5&fps=0&count=6&seed=2")
    assert isinstance(src, SyntheticSource) and src.live
    assert src.state is SourceState.CLOSED
    src.open()
    assert src.state is SourceState.CONNECTED
    src.start()
    assert src.state is SourceState.ACQUIRING
    frames = [src.next_frame(timeout=1.0) for _ in range(6)]
    with pytest.raises(StopIteration):
        src.next_frame(timeout=1.0)
    src.stop()
    src.close()
    assert src.state is SourceState.CLOSED
    assert [f.frame_id for f in frames] == list(range(6))
    for f in frames:
        assert f.image.shape == (256, 256, 3) and f.pixel_format == "RGB8"
        assert f.meta["mask"].shape == (256, 256)
        assert (f.meta["label"] == "good") == (not f.meta["mask"].any())
    part = SyntheticPart(seed=2)
    np.testing.assert_array_equal(frames[3].image, part.sample(3, 0.5).image)


def test_source_paces_frames_and_times_out():
    src = SyntheticSource.from_uri("synthetic://demo?fps=20")
    src.start()
    t0 = time.monotonic()
    got = [src.next_frame(timeout=1.0) for _ in range(6)]
    elapsed = time.monotonic() - t0
    assert all(f is not None for f in got)
    assert 0.2 <= elapsed < 5.0  # 5 periods of 50 ms after the first frame; the upper bound catches a stall
    slow = SyntheticSource.from_uri("synthetic://demo?fps=0.5")
    slow.start()
    assert slow.next_frame(timeout=1.0) is not None
    t0 = time.monotonic()
    assert slow.next_frame(timeout=0.1) is None  # not due yet: no blocking beyond the timeout
    assert time.monotonic() - t0 < 1.5  # the frame is 2 s away


def test_source_must_be_started():
    src = SyntheticSource.from_uri("synthetic://demo")
    with pytest.raises(SourceError, match="not acquiring"):
        src.next_frame()


@pytest.mark.parametrize("uri, message", [
    ("synthetic://widget", "unknown synthetic part"),
    ("synthetic://demo?defect_rate=2", "defect_rate"),
    ("synthetic://demo?fps=abc", "bad option value"),
    ("synthetic://demo?colour=red", "unknown option"),
    ("synthetic://demo?defects=scratch,dent", "unknown defect"),
    ("synthetic://demo?size=8", "size"),
    ("synthetic://demo?fps=-1", "fps"),
])
def test_bad_uris_fail_clearly(uri, message):
    with pytest.raises(SourceError, match=message):
        open_source(uri)


def test_defect_types_can_be_restricted():
    src = SyntheticSource.from_uri("synthetic://demo?fps=0&defect_rate=1&defects=spot&live=0")
    assert not src.live
    src.start()
    assert {src.next_frame().meta["label"] for _ in range(5)} == {"spot"}


def test_export_mvtec_layout(tmp_path):
    from station.core.datasets import MVTecCategory, load_ground_truth

    root = export_mvtec(tmp_path / "demo", n_train=3, n_test_good=2, n_per_defect=1)
    cat = MVTecCategory(root)
    assert len(cat.train_good()) == 3
    test = cat.test()
    assert sorted({s.label for s in test}) == sorted(["good", *DEFECT_TYPES])
    assert len(cat.problems) == 0
    for s in test:
        mask = load_ground_truth(s, (256, 256))
        assert mask is not None and mask.any() == s.is_anomalous


def test_export_screws_mvtec_layout(tmp_path):
    from station.acquisition.synthetic_parts import SCREW_DEFECTS, export_screws_mvtec
    from station.core.datasets import MVTecCategory, load_ground_truth

    root = export_screws_mvtec(tmp_path / "screws", size=96, n_train=2, n_test_good=1, n_per_defect=1)
    cat = MVTecCategory(root)
    assert len(cat.train_good()) == 2 and len(cat.problems) == 0
    test = cat.test()
    assert sorted({s.label for s in test}) == sorted(["good", *SCREW_DEFECTS])
    for s in test:
        mask = load_ground_truth(s, (96, 96))
        assert mask is not None and mask.any() == s.is_anomalous
