"""The station's state that every mode shares: paths, settings, audit log, engineer mode and the
shift's counters. A plain object -- the window's panels bind to it; nothing here imports Qt."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from station.app.audit import AuditLog
from station.app.engineer import CredentialsError, EngineerSession, PasswordStore
from station.app.events import StationEvents
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
    events: StationEvents = field(default_factory=StationEvents)

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

    # --- the station's choices: settings saved, audited, announced (the widgets only call these) ----
    def select_source(self, uri: str) -> bool:
        """Inspect from ``uri`` from now on; False if it is already the source (nothing done)."""
        uri = uri.strip()
        old = self.settings.source_uri
        if not uri or uri == old:
            return False
        self.settings.remember_source(uri)
        self.save_settings()
        self.audit.record("source.selected", "inspection source", old, uri, role=self.role)
        self.events.source_selected.emit(uri)
        return True

    def select_recipe(self, path: str, old: str | None, role: str | None = None, note: str = "") -> None:
        """Inspect with the recipe at ``path`` from now on (``old``: the one it replaces)."""
        self.audit.record("recipe.selected", "inspection recipe", old, path, role=role or self.role, note=note)
        self.settings.recipe_path = path
        self.save_settings()
        self.events.recipe_selected.emit(path)

    def keep_recipe(self, current: str | None, refused: str, problems: list[str], role: str | None = None) -> None:
        """The engineer kept the recipe in use instead of switching to ``refused`` (it did not fit the
        camera's frames: ``problems``)."""
        self.audit.record("recipe.kept", "inspection recipe", current, refused, role=role or self.role,
                          note="; ".join(problems))

    def recipe_saved(self, path: str | Path) -> None:
        """A recipe version was saved (by the wizard, a re-tune, a review): every list shows it."""
        self.events.recipes_changed.emit(str(path))

    def remember_review(self, folder: str, max_per_type: int) -> None:
        """Review starts from this data folder and sample size next time."""
        self.settings.review_folder = folder
        self.settings.review_max_per_type = int(max_per_type)
        self.save_settings()

    def set_kiosk(self, on: bool) -> None:
        """Switch the operator's full-screen mode (remembered; leaving it is for engineers)."""
        if bool(on) == self.settings.kiosk:
            return
        self.audit.record("window.kiosk", "operator full screen", self.settings.kiosk, bool(on), role=self.role)
        self.settings.kiosk = bool(on)
        self.save_settings()
        self.events.kiosk_changed.emit(bool(on))

    # --- engineer mode: every log-in, lock and password change is audited (never a password) --------
    def unlock_engineer(self, password: str) -> bool:
        """Unlock engineer mode; on first use ``password`` becomes the password. False if wrong.
        Raises ``CredentialsError`` for a corrupt password file or an unacceptable first password."""
        if not self.engineer.store.is_set():
            self.engineer.set_first_password(password)
            self.audit.record("engineer.password_set", "engineer mode", None, "set", role="engineer")
        elif not self.engineer.unlock(password):
            self.audit.record("engineer.unlock_failed", "engineer mode", "locked", "locked", role="operator")
            return False
        self.audit.record("engineer.unlock", "engineer mode", "locked", "unlocked", role="engineer")
        return True

    def lock_engineer(self) -> None:
        if self.engineer.unlocked:
            self.engineer.lock()
            self.audit.record("engineer.lock", "engineer mode", "unlocked", "locked", role="engineer")

    def engineer_expired(self) -> bool:
        """True (and locked, audited) when the auto-lock time passed without engineer activity."""
        if not self.engineer.expired():
            return False
        self.audit.record("engineer.auto_lock", "engineer mode", "unlocked", "locked", role="system")
        return True

    def change_engineer_password(self, old: str, new: str) -> None:
        """Raises ``CredentialsError`` (wrong current password, too short, ...); audited either way."""
        try:
            self.engineer.change_password(old, new)
        except CredentialsError as exc:  # the reason only: never a password
            self.audit.record("engineer.password_change_failed", "engineer mode", role="engineer", note=str(exc))
            raise
        self.audit.record("engineer.password_changed", "engineer mode", None, "changed", role="engineer")
