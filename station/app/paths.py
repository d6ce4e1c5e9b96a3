"""Where the station keeps its per-user files.

Everything lives under one folder so a station is backed up (or reset) by copying (or deleting)
it: ``$STATION_HOME`` if set, else the platform's per-user data folder::

    settings.json      window and station settings (schema-versioned)
    engineer.json      the engineer-mode password hash (never the password)
    audit.jsonl        the audit log: who changed which threshold, area or recipe, when
    results.sqlite     the inspection results log
    archive/           NG images (and sampled OK images), kept within a disk quota
    models/<part>/vNNNN/   recipes
    runs/              review reports
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
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


@dataclass(frozen=True)
class AppPaths:
    """The station's per-user files under ``home``."""

    home: Path

    @classmethod
    def default(cls) -> AppPaths:
        return cls(default_home())

    @property
    def settings(self) -> Path:
        return self.home / "settings.json"

    @property
    def credentials(self) -> Path:
        return self.home / "engineer.json"

    @property
    def audit_log(self) -> Path:
        return self.home / "audit.jsonl"

    @property
    def results_db(self) -> Path:
        return self.home / "results.sqlite"

    @property
    def archive(self) -> Path:
        return self.home / "archive"

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def runs(self) -> Path:
        return self.home / "runs"

    def ensure(self) -> AppPaths:
        """Create the folders (not the files); returns ``self``."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.models.mkdir(parents=True, exist_ok=True)
        return self
