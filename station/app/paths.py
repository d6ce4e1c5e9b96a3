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

from dataclasses import dataclass
from pathlib import Path

from station.core.home import ENV_HOME, default_home

__all__ = ["ENV_HOME", "AppPaths", "default_home"]


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
