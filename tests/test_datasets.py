"""Data folders: MVTec layout, plain folders, and clear messages for broken input."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_data import make_mvtec_category

from station.core.datasets import (
    DatasetError,
    ImageFolder,
    MVTecCategory,
    Problems,
    iter_images,
    load_ground_truth,
    open_dataset,
    split_validation,
)
from station.core.images import ImageLoadError, load_image


def test_mvtec_layout(tmp_path):
    root = make_mvtec_category(tmp_path / "part", n_train=5, n_good_test=2, n_defect=2, size=32)
    cat = open_dataset(root)
    assert isinstance(cat, MVTecCategory)
    assert len(cat.train_good()) == 5
    test = cat.test()
    assert {s.label for s in test} == {"good", "spot", "scratch"} and len(test) == 6
    assert all(s.mask_path is not None for s in test if s.is_anomalous)
    s = next(s for s in test if s.is_anomalous)
    gt = load_ground_truth(s, (32, 32))
    assert gt.dtype == bool and gt.any()
    good = next(s for s in test if not s.is_anomalous)
    assert not load_ground_truth(good, (32, 32)).any()
    assert cat.defect_types() == ["scratch", "spot"]


def test_corrupt_and_missing_files_are_reported_not_raised(tmp_path):
    root = make_mvtec_category(tmp_path / "part", n_train=3, n_good_test=1, n_defect=1, size=32)
    (root / "train" / "good" / "001.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (root / "ground_truth" / "spot" / "000_mask.png").unlink()
    cat = MVTecCategory(root)
    problems = Problems()
    loaded = list(iter_images(cat.train_good(), "rgb", problems))
    assert len(loaded) == 2 and len(problems) == 1
    assert "001.png" in str(problems.items[0][0]) and "corrupt" in problems.items[0][1]
    test = cat.test()
    assert len(cat.problems) == 1 and "mask" in cat.problems.items[0][1] and "missing" in cat.problems.items[0][1]
    spot = next(s for s in test if s.label == "spot")
    assert spot.mask_path is None and load_ground_truth(spot, (32, 32)) is None


def test_clear_errors_for_missing_and_empty_folders(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        open_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        ImageFolder(tmp_path / "empty").samples()
    (tmp_path / "cat" / "train" / "good").mkdir(parents=True)
    with pytest.raises(DatasetError, match="holds no images"):
        open_dataset(tmp_path / "cat").train_good()
    with pytest.raises(DatasetError, match="no test images"):
        MVTecCategory(tmp_path / "cat").test()
    (tmp_path / "root" / "bottle" / "train").mkdir(parents=True)
    with pytest.raises(DatasetError, match="bottle"):  # the MVTec root instead of a category: say which
        MVTecCategory(tmp_path / "root")


def test_plain_folder_recursive(tmp_path):
    root = make_mvtec_category(tmp_path / "x", n_train=2, n_good_test=1, n_defect=1, size=16)
    folder = open_dataset(root / "train")
    assert isinstance(folder, ImageFolder) and len(folder.samples()) == 2


def test_load_image_modes_and_errors(tmp_path):
    root = make_mvtec_category(tmp_path / "x", n_train=1, n_good_test=0, n_defect=0, size=16)
    path = root / "train" / "good" / "000.png"
    assert load_image(path, "rgb").shape == (16, 16, 3)
    assert load_image(path, "gray").shape == (16, 16)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageLoadError, match="empty"):
        load_image(empty)
    with pytest.raises(ImageLoadError, match="not found"):
        load_image(tmp_path / "missing.png")


def test_validation_split_is_deterministic_and_disjoint(tmp_path):
    root = make_mvtec_category(tmp_path / "x", n_train=20, n_good_test=0, n_defect=0, size=8)
    samples = MVTecCategory(root).train_good()
    a_train, a_val = split_validation(samples, 0.1, seed=3)
    b_train, b_val = split_validation(samples, 0.1, seed=3)
    assert a_val == b_val and len(a_val) == 2 and len(a_train) == 18
    assert not set(a_val) & set(a_train)
    assert split_validation(samples[:1], 0.5) == (samples[:1], [])
    assert np.all([s in samples for s in a_val])
