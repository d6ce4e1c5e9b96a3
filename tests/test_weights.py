"""The backbone weights store: import with hash checks, custom weights only when allowed, downloads
(simulated: no internet in tests), clear errors, and recipes that find exactly their weights again."""

from __future__ import annotations

import pickle
import shutil
import urllib.error
from pathlib import Path

import pytest
import torch

from station.cli.main import main
from station.weights import (
    PublishedWeights,
    WeightsError,
    WeightsStore,
    catalogue,
    file_sha256,
    load_recorded,
    load_weights,
    random_state_dict,
    station_home,
    tensor_fingerprint,
)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("STATION_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch-hub"))  # never the user's cache
    return tmp_path / "home"


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory) -> Path:
    """Seeded random ResNet-18 weights saved as a torchvision-format state dict."""
    path = tmp_path_factory.mktemp("w") / "resnet18_seed0.pth"
    torch.save(random_state_dict("resnet18", 0), path)
    return path


@pytest.fixture
def fake_published(resnet18_file, monkeypatch) -> PublishedWeights:
    """Pretend torchvision publishes our random file (its name carries our file's hash prefix), so
    the real verification path runs without downloading anything."""
    sha = file_sha256(resnet18_file)
    fake = PublishedWeights("resnet18", "IMAGENET1K_V1", f"https://example.invalid/models/resnet18-{sha[:8]}.pth")
    real = catalogue.published_weights

    def published(backbone: str) -> list[PublishedWeights]:
        return [fake] if backbone == "resnet18" else real(backbone)

    monkeypatch.setattr(catalogue, "published_weights", published)
    return fake


def test_home_follows_the_environment(home):
    assert station_home() == home
    assert WeightsStore().root == home / "weights"


def test_published_weights_come_from_torchvision_enums():
    w = catalogue.find_published("wide_resnet50_2")
    assert w.name == "IMAGENET1K_V1"
    assert w.file == "wide_resnet50_2-95faca4d.pth" and w.hash_prefix == "95faca4d"
    assert catalogue.find_published("wide_resnet50_2", "Wide_ResNet50_2_Weights.IMAGENET1K_V2").name == "IMAGENET1K_V2"
    with pytest.raises(WeightsError, match="available"):
        catalogue.find_published("resnet18", "IMAGENET1K_V9")
    with pytest.raises(WeightsError, match="unknown backbone"):
        catalogue.find_published("vgg11")


def test_random_weights_are_seeded_and_fingerprinted():
    a, b, c = random_state_dict("resnet18", 0), random_state_dict("resnet18", 0), random_state_dict("resnet18", 1)
    assert tensor_fingerprint(a) == tensor_fingerprint(b) != tensor_fingerprint(c)
    state, info = load_weights("resnet18", "random", seed=0, store=WeightsStore("/nonexistent"))
    assert info["source"] == "random" and info["seed"] == 0
    assert info["sha256"] == tensor_fingerprint(a)
    assert tensor_fingerprint(load_recorded(info)) == info["sha256"]


def test_custom_weights_are_refused_without_the_flag(home, resnet18_file):
    with pytest.raises(WeightsError, match="--allow-custom"):
        WeightsStore().import_file(resnet18_file)
    assert not (home / "weights").exists() or not list((home / "weights").iterdir())


def test_custom_import_round_trip(home, resnet18_file):
    stored = WeightsStore().import_file(resnet18_file, allow_custom=True)
    assert stored.source == "custom" and stored.backbone == "resnet18"  # inferred from the shapes
    assert stored.path.parent == home / "weights" and stored.sha256 == file_sha256(resnet18_file)
    state, info = load_weights("resnet18", f"custom:{stored.sha256[:12]}")
    assert info == stored.info()
    ref = torch.load(resnet18_file, weights_only=True)
    assert all(torch.equal(state[k], ref[k]) for k in ref)
    # by the original path too, and the recipe's record leads back to the same file
    assert load_weights("resnet18", str(resnet18_file))[1]["sha256"] == stored.sha256
    again = load_recorded(info)
    assert torch.equal(again["conv1.weight"], ref["conv1.weight"])
    # importing twice is harmless
    assert WeightsStore().import_file(resnet18_file, allow_custom=True).path == stored.path


def test_custom_weights_must_fit_the_backbone(home, resnet18_file):
    with pytest.raises(WeightsError, match="does not fit the wide_resnet50_2"):
        WeightsStore().import_file(resnet18_file, allow_custom=True, backbone="wide_resnet50_2")
    stored = WeightsStore().import_file(resnet18_file, allow_custom=True)
    with pytest.raises(WeightsError, match="no imported custom weights"):
        load_weights("resnet50", f"custom:{stored.sha256[:12]}")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickles_and_junk_are_refused(home, tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError, match="not a readable weights file"):
        WeightsStore().import_file(junk, allow_custom=True)
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump({"conv1.weight": Path("/")}, f)  # an arbitrary object: weights_only refuses it
    with pytest.raises(WeightsError, match="pickled objects are refused|not a readable"):
        WeightsStore().import_file(evil, allow_custom=True)


def test_renamed_torchvision_file_with_wrong_content_is_refused(home, resnet18_file, tmp_path):
    fake = tmp_path / "resnet18-f37072fd.pth"  # torchvision's real file name, other content
    shutil.copy(resnet18_file, fake)
    with pytest.raises(WeightsError, match="does not start with the published f37072fd"):
        WeightsStore().import_file(fake, allow_custom=True)


def test_published_file_is_verified_and_found(home, resnet18_file, fake_published, tmp_path):
    stored = WeightsStore().import_file(resnet18_file)  # recognised by its hash: no flag needed
    assert stored.source == "torchvision" and stored.path.name == fake_published.file
    state, info = load_weights("resnet18", "imagenet", allow_download=False)
    assert info["source"] == "torchvision" and info["name"] == "IMAGENET1K_V1"
    assert tensor_fingerprint(load_recorded(info, allow_download=False)) == tensor_fingerprint(state)
    # the stored file is later damaged: the recipe's record no longer matches -> refused
    with open(stored.path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(WeightsError):
        load_recorded(info, allow_download=False)


def test_missing_weights_say_how_to_get_them(home):
    with pytest.raises(WeightsError) as err:
        load_weights("wide_resnet50_2", "imagenet", allow_download=False)
    text = str(err.value)
    assert "station weights download --backbone wide_resnet50_2" in text
    assert "station weights import wide_resnet50_2-95faca4d.pth" in text
    with pytest.raises(WeightsError, match="--allow-custom"):
        load_recorded({"backbone": "resnet18", "source": "custom", "name": "x.pth", "sha256": "ab" * 32})


def test_download_uses_the_hash_prefix_and_reports_failures(home, resnet18_file, fake_published, monkeypatch):
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, hash_prefix))
        shutil.copy(resnet18_file, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    state, info = load_weights("resnet18", "imagenet", progress=False)  # downloaded on first use
    assert calls == [(fake_published.url, fake_published.hash_prefix)]
    assert (home / "weights" / fake_published.file).is_file() and info["source"] == "torchvision"
    load_weights("resnet18", "imagenet", progress=False)
    assert len(calls) == 1  # second use: from the store

    def offline(url, dst, hash_prefix=None, progress=True):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError, match="could not download .*`station weights import"):
        load_weights("wide_resnet50_2", "imagenet", progress=False)
    assert not list((home / "weights").glob(".download-*"))  # no half files left


def test_cli_import_list_and_errors(home, resnet18_file, capsys):
    assert main(["weights", "import", str(resnet18_file)]) == 2
    assert "--allow-custom" in capsys.readouterr().err
    assert main(["weights", "import", str(resnet18_file), "--allow-custom"]) == 0
    out = capsys.readouterr().out
    assert "custom" in out and "weights=custom:" in out
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "resnet18_seed0.pth" in out and "not downloaded" in out
    assert main(["weights", "import", str(resnet18_file.parent / "missing.pth")]) == 2
    assert "not found" in capsys.readouterr().err


def test_cli_writes_seeded_random_weights(tmp_path, capsys):
    out = tmp_path / "r18.pth"
    assert main(["weights", "random", str(out), "--backbone", "resnet18", "--seed", "3"]) == 0
    assert "RANDOM" in capsys.readouterr().out
    saved = torch.load(out, weights_only=True)
    assert tensor_fingerprint(saved) == tensor_fingerprint(random_state_dict("resnet18", 3))
