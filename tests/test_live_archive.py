"""The NG image archive: PNG files, OK sampling, the disk quota with oldest-first clean-up."""

from __future__ import annotations

import time

import numpy as np
import pytest

from station.core.images import load_image
from station.live.archive import ImageArchive


def _noise(rng, shape=(64, 64, 3)):
    return rng.integers(0, 256, shape, dtype=np.uint8)  # incompressible: predictable PNG sizes


def test_images_are_written_as_png_and_read_back(tmp_path, rng):
    archive = ImageArchive(tmp_path / "img")
    image = _noise(rng)
    path = archive.store(image, 17, "NG", time.time())
    assert path.is_file() and path.name.endswith("_17_NG.png") and path.parent.parent == tmp_path / "img"
    np.testing.assert_array_equal(load_image(path), image)
    assert archive.written == 1 and archive.usage_bytes == path.stat().st_size
    assert "NG archive 0 of 1024 MB (1 images" in archive.describe()


def test_ok_parts_are_sampled(tmp_path):
    archive = ImageArchive(tmp_path, ok_every=3)
    wanted = [archive.wants("OK") for _ in range(9)]
    assert wanted == [False, False, True] * 3
    assert archive.wants("NG") and archive.wants("ERROR")
    assert not ImageArchive(tmp_path / "none").wants("OK")


def test_quota_deletes_the_oldest_first(tmp_path, rng):
    one = 64 * 64 * 3
    archive = ImageArchive(tmp_path, quota_mb=3.5 * one / 2**20)  # room for three images
    paths = [archive.store(_noise(rng), i, "NG", time.time() + i) for i in range(6)]
    kept = sorted(p.name for p in tmp_path.glob("*/*.png"))
    assert kept == sorted(p.name for p in paths[3:])
    assert archive.deleted == 3 and archive.usage_bytes <= archive.quota_bytes
    assert "3 so far" in archive.describe()
    # A new run takes stock of what is there and keeps enforcing the quota.
    ImageArchive(tmp_path, quota_mb=1.5 * one / 2**20)
    assert [p.name for p in tmp_path.glob("*/*.png")] == [paths[5].name]


def test_write_errors_do_not_stop_the_archive(tmp_path, rng):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    archive = ImageArchive(tmp_path)
    archive.root = blocker  # a path that cannot hold folders: every write fails
    assert archive.store(_noise(rng), 1, "NG") is None
    assert archive.skipped == 1 and archive.written == 0


def test_bad_quota():
    with pytest.raises(ValueError):
        ImageArchive("/tmp/x", quota_mb=0)
