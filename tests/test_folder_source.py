"""Folder replay: MVTec categories with labels and masks, plain folders, pacing, loop, bad files."""

from __future__ import annotations

import time

import numpy as np
import pytest

from station.acquisition.base import SourceError, SourceState, open_source
from station.acquisition.folder import FolderSource
from station.acquisition.synthetic import export_mvtec
from station.core.images import save_image


@pytest.fixture(scope="module")
def category(tmp_path_factory):
    return export_mvtec(tmp_path_factory.mktemp("data") / "washer", n_train=4, n_test_good=2, n_per_defect=1)


def _drain(src, limit=100):
    out = []
    for _ in range(limit):
        try:
            f = src.next_frame(timeout=2.0)
        except StopIteration:
            break
        if f is not None:
            out.append(f)
    return out


def test_mvtec_test_split_carries_labels_and_masks(category):
    src = open_source(f"folder://{category}")
    assert isinstance(src, FolderSource) and not src.live
    src.start()
    frames = _drain(src)
    assert len(frames) == 6 and src.labelled
    assert [f.frame_id for f in frames] == list(range(1, 7))
    for f in frames:
        assert f.image.shape == (256, 256, 3) and f.pixel_format == "RGB8"
        assert f.meta["mask"].dtype == bool
        assert f.meta["mask"].any() == (f.meta["label"] != "good")
        assert f.meta["path"].endswith(".png")
    assert sorted({f.meta["label"] for f in frames}) == ["contamination", "good", "missing", "scratch", "spot"]


def test_train_split_and_loop(category):
    src = FolderSource(category, split="train", loop=True)
    src.start()
    frames = [src.next_frame() for _ in range(10)]
    assert all(f.meta["label"] == "good" for f in frames)
    assert src.loops == 2 and frames[4].meta["path"] == frames[0].meta["path"]
    assert frames[9].frame_id == 10  # frame ids keep counting over loops
    both = FolderSource(category, split="all")
    both.open()
    assert len(both) == 10


def test_pacing(category):
    src = FolderSource(category, fps=25, split="train", loop=True)
    src.start()
    t0 = time.monotonic()
    for _ in range(6):
        assert src.next_frame(timeout=1.0) is not None
    assert 0.18 <= time.monotonic() - t0 < 5.0  # paced; the upper bound only catches a stall, on any load
    slow = FolderSource(category, fps=0.5, split="train")
    slow.start()
    slow.next_frame()
    t0 = time.monotonic()
    assert slow.next_frame(timeout=0.05) is None
    assert time.monotonic() - t0 < 1.5  # the frame is 2 s away: returning before it means no blocking


def test_plain_folder_with_a_corrupt_file(tmp_path):
    folder = tmp_path / "shots"
    save_image(folder / "a.png", np.full((20, 30), 7, np.uint8))
    (folder / "b.png").write_bytes(b"not a png")
    save_image(folder / "sub" / "c.png", np.zeros((20, 30, 3), np.uint8))
    src = open_source(f"folder://{folder}?mode=rgb")
    src.start()
    frames = _drain(src)
    assert [f.meta["path"].rsplit("/", 1)[-1] for f in frames] == ["a.png", "c.png"]
    assert all(f.image.shape == (20, 30, 3) for f in frames)
    assert frames[0].meta["label"] is None and frames[0].meta["mask"] is None
    assert len(src.problems) == 1 and "b.png" in str(src.problems.items[0][0])
    looping = FolderSource(folder, loop=True)
    looping.start()
    assert len([looping.next_frame() for _ in range(9)]) == 9 and looping.loops == 4
    assert len(looping.problems) == 1  # reported once, not on every pass


def test_nothing_readable_fails_clearly(tmp_path):
    (tmp_path / "x.png").write_bytes(b"")
    (tmp_path / "y.png").write_bytes(b"junk")
    src = FolderSource(tmp_path, loop=True)
    src.start()
    with pytest.raises(SourceError, match="none of the 2 images can be read"):
        src.next_frame()


@pytest.mark.parametrize("uri, message", [
    ("folder:///no/such/folder", "not found"),
    ("folder://", "no folder given"),
    ("folder:///tmp?fps=fast", "fps must be a number"),
    ("folder:///tmp?split=val", "split must be"),
    ("folder:///tmp?speed=2", "unknown option"),
])
def test_bad_uris(uri, message):
    with pytest.raises(SourceError, match=message):
        src = open_source(uri)
        src.open()


def test_empty_folder(tmp_path):
    src = FolderSource(tmp_path)
    with pytest.raises(SourceError, match="holds no images"):
        src.open()
    assert src.state is SourceState.CLOSED


def test_real_mvtec_bottle(mvtec_bottle):
    src = open_source(f"folder://{mvtec_bottle}?split=test")
    src.open()
    assert len(src) == 83 and not src.problems.items
    defective = next(i for i, s in enumerate(src.samples) if s.is_anomalous)
    src._position = defective  # jump to the first defective part
    src.start()
    f = src.next_frame()
    assert f.image.shape == (900, 900, 3) and f.meta["label"] != "good"
    assert f.meta["mask"].shape == (900, 900) and f.meta["mask"].any()
