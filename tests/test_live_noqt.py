"""``station/live`` is tested without Qt: its tests run again in a fresh interpreter where PySide6,
shiboken6 and pyqtgraph cannot be imported (as on a headless line PC without them installed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

SCRIPT = r"""
import sys
class BlockQt:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6', 'PyQt5', 'PyQt6', 'pytestqt'):
            raise ImportError(f'Qt is not installed here: {name}')
        return None
sys.meta_path.insert(0, BlockQt())
import pytest
code = pytest.main(['-q', '-p', 'no:pytest-qt', '-p', 'no:cacheprovider', *sys.argv[1:]])
loaded = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph')]
print('Qt modules loaded:', loaded)
sys.exit(code or bool(loaded))
"""


def test_live_layer_tests_pass_without_pyside6():
    files = [str(TESTS / name) for name in ("test_live_dispatch.py", "test_live_session.py")]
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *files], cwd=TESTS.parent, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout and "Qt modules loaded: []" in proc.stdout
