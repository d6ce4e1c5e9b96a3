"""The station's state that every mode shares: paths, settings, audit log, engineer mode and the
shift's counters. A plain object -- the window's panels bind to it; nothing here imports Qt."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from station.app.audit import AuditLog
from station.app.engineer import EngineerSession, PasswordStore
from station.app.paths import AppPaths
from station.app.settings import Settings, load_settings, save_settings
from station.live.shift import ShiftCounters

log = logging.getLogger(__name__)


@dataclass
class StationContext:
    paths: AppPaths
    settings: Settings
    audit: AuditLog
    engineer: EngineerSession
    counters: ShiftCounters = field(default_factory=ShiftCounters)
    settings_writable: bool = True
    problems: list[str] = field(default_factory=list)  # found while loading; shown by the window
    device: str = "auto"  # compute device preference for deep detectors

    @classmethod
    def load(cls, paths: AppPaths | None = None) -> StationContext:
        """Load everything; never raises for a bad settings file (its problem is in ``problems``)."""
        paths = (paths or AppPaths.default()).ensure()
        loaded = load_settings(paths.settings)
        settings = loaded.settings
        engineer = EngineerSession(PasswordStore(paths.credentials), auto_lock_s=60.0 * settings.engineer_auto_lock_min)
        return cls(paths=paths, settings=settings, audit=AuditLog(paths.audit_log), engineer=engineer,
                   counters=ShiftCounters(paths.home / "shift.json"),  # the shift survives a restart
                   settings_writable=loaded.writable, problems=list(loaded.problems))

    @property
    def models_dir(self) -> Path:
        return Path(self.settings.models_dir).expanduser() if self.settings.models_dir else self.paths.models

    @property
    def role(self) -> str:
        return "engineer" if self.engineer.unlocked else "operator"

    def save_settings(self) -> None:
        if not self.settings_writable:
            log.info("settings not saved: the file is from a newer station")
            return
        try:
            save_settings(self.settings, self.paths.settings)
        except OSError as exc:
            log.warning("could not save the settings: %s", exc)
            self.problems.append(f"could not save the settings to {self.paths.settings}: {exc}")
