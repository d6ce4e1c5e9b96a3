"""The one folder a station keeps its per-user files in (``$STATION_HOME``).

It sits in the core because the lowest layers need it too (the backbone weights store lives under
it); the layout of what is inside is ``station.app.paths``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_HOME = "STATION_HOME"


def default_home() -> Path:
    """``$STATION_HOME``, else ``%LOCALAPPDATA%\\station`` (Windows), ``~/Library/Application
    Support/station`` (macOS) or ``$XDG_DATA_HOME/station`` (``~/.local/share/station``)."""
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "station"
