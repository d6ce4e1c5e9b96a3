"""The headless core never imports Qt: import every non-GUI module with Qt made unimportable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import importlib, pkgutil, sys
class BlockQt:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6', 'PyQt5', 'PyQt6'):
            raise ImportError(f'Qt import blocked in the headless core: {name}')
        return None
sys.meta_path.insert(0, BlockQt())
import station
failed = []
for m in pkgutil.walk_packages(station.__path__, 'station.'):
    if m.name.startswith('station.gui'):
        continue
    try:
        importlib.import_module(m.name)
    except ImportError as exc:
        if 'Qt import blocked' in str(exc):
            failed.append(f'{m.name}: {exc}')
print('\n'.join(failed))
sys.exit(1 if failed else 0)
"""


def test_core_imports_without_qt():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_import_linter_contract():
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        import pytest

        pytest.skip("import-linter not installed")
    proc = subprocess.run([str(exe)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
