"""Shared fixtures. Qt runs offscreen in tests; the real MVTec data is optional (tests skip cleanly)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything can load Qt
# Tests never touch a real station's settings, recipes, results or weights: a throw-away home for the
# session (tests that need their own set STATION_HOME themselves).
os.environ["STATION_HOME"] = tempfile.mkdtemp(prefix="station-test-home-")

REPO = Path(__file__).resolve().parents[1]
# The real data is read in place: $STATION_MVTEC_ROOT, else ../shared beside the checkout, else the
# development machines' shared folder (a CI clone may sit elsewhere).
_MVTEC_CANDIDATES = [REPO.parent / "shared" / "data" / "mvtec_ad", Path("/work/shared/data/mvtec_ad")]
MVTEC_ROOT = Path(os.environ.get("STATION_MVTEC_ROOT")
                  or next((p for p in _MVTEC_CANDIDATES if p.is_dir()), _MVTEC_CANDIDATES[0]))


@pytest.fixture(scope="session")
def mvtec_bottle() -> Path:
    """The real MVTec AD bottle category (read in place), or skip."""
    path = MVTEC_ROOT / "bottle"
    if not (path / "train" / "good").is_dir():
        pytest.skip(f"MVTec AD bottle not found at {path}")
    return path


@pytest.fixture
def ctx(tmp_path):
    """A station in a fresh home whose demo part is taught with the fast test detector (register it
    with ``helpers_detector.register_test_detector``); a test module may define its own ``ctx``."""
    from station.app.context import StationContext
    from station.app.paths import AppPaths

    c = StationContext.load(AppPaths(tmp_path / "home"))
    c.settings.demo_detector = "test-zscore"
    return c


@pytest.fixture(autouse=True)
def _collect_garbage_between_tests():
    """No cyclic collection during a test, one after it: the collector must never run inside a Qt call
    (it can destroy a leaked widget while Qt holds its signal-slot mutex and deadlock the GUI thread;
    station/gui/gc_guard.py explains it; the window itself collects from a GUI-thread timer)."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    yield
    if enabled:
        gc.enable()
    gc.collect()


@pytest.fixture(scope="module")
def store_home(tmp_path_factory):
    """A weights store of the test module's own (never the user's); the module points STATION_HOME at
    it for each of its tests (an autouse fixture of its own)."""
    home = tmp_path_factory.mktemp("station-home")
    patch = pytest.MonkeyPatch()
    patch.setenv("STATION_HOME", str(home))
    yield home
    patch.undo()


@pytest.fixture(scope="module")
def custom_weights(store_home, tmp_path_factory) -> str:
    """Seeded random ResNet-18 weights, saved as a torchvision state dict and imported into
    ``store_home`` like a real weights file (with the explicit custom flag); returns the detector's
    ``weights`` value."""
    import torch

    from station.weights import WeightsStore, random_state_dict

    path = tmp_path_factory.mktemp("w") / "resnet18_seed0.pth"
    torch.save(random_state_dict("resnet18", 0), path)
    stored = WeightsStore(store_home / "weights").import_file(path, allow_custom=True)
    return f"custom:{stored.sha256[:16]}"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-installer", action="store_true", default=False,
                     help="run the tests marked `installer` (builds the multi-GB bundle: slow)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-installer"):
        return
    skip = pytest.mark.skip(reason="builds the installer bundle; run with --run-installer")
    for item in items:
        if "installer" in item.keywords:
            item.add_marker(skip)
