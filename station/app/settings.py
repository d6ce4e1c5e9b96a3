"""The station's settings: a small JSON file with a ``schema_version``, migrated when older.

Settings must never keep the station from starting. :func:`load_settings` therefore reports every
problem instead of raising: an unreadable or corrupt file is moved aside (``settings.json.bad-<time>``,
kept for the service engineer) and the defaults are used; a field of the wrong type falls back to its
default alone; a file from a newer station is used for nothing but left untouched (``writable`` is
False so the older station never overwrites it).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DEMO_SOURCE_URI = "synthetic://demo?fps=30&defect_rate=0.2"
MAX_RECENT = 10


@dataclass
class Settings:
    """What the station remembers between runs."""

    source_uri: str = DEMO_SOURCE_URI
    recent_sources: list[str] = field(default_factory=lambda: [DEMO_SOURCE_URI])
    recipe_path: str | None = None  # a recipe version or part folder; None: the demo recipe
    models_dir: str | None = None  # None: <home>/models
    auto_start: bool = True  # start inspecting as soon as the window is up (a line station reboots)
    engineer_auto_lock_min: float = 15.0  # engineer mode locks itself after this long without use
    review_folder: str = ""
    review_max_per_type: int = 0  # 0: every test image; else a quick look at a few per defect type
    ng_strip_size: int = 12
    archive_quota_mb: float = 500.0  # NG images kept on disk (oldest deleted beyond); 0: none kept
    demo_detector: str = "variation"  # the detector the demo part is taught with on first start
    stop_line_after_failures: int = 10  # stop inspecting after this many frames in a row fail; 0: never
    dropped_warning_percent: float = 5.0  # warn when more than this share of camera frames is not inspected
    kiosk: bool = False  # the window fills the screen; only engineer mode leaves it or closes the station
    input_watch: bool = True  # a frame unlike the teach images (dark, blurred, no part) is not judged
    # the drift watch's CUSUM alarm level in taught standard deviations (station.live.drift): lower warns
    # sooner and more often falsely; 12 is ~10^6 frames between false alarms per statistic; 0: off
    drift_alarm_level: float = 12.0

    def remember_source(self, uri: str) -> None:
        self.source_uri = uri
        self.recent_sources = [uri, *[u for u in self.recent_sources if u != uri]][:MAX_RECENT]


@dataclass
class LoadedSettings:
    settings: Settings
    problems: list[str]
    writable: bool = True  # False for a file from a newer station: never overwrite it


# --- migrations: each takes a dict of schema n and returns one of schema n + 1 ---------------------
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _types_ok(value: Any, default: Any, name: str) -> bool:
    """A loose check against the default's type (``None`` defaults accept ``str``)."""
    if name in ("recipe_path", "models_dir"):
        return value is None or isinstance(value, str)
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, list):
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, type(default))


def _move_aside(path: Path) -> Path | None:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.bad-{stamp}")
    try:
        os.replace(path, target)
        return target
    except OSError as exc:
        log.warning("could not move the bad settings file %s aside: %s", path, exc)
        return None


def load_settings(path: str | Path) -> LoadedSettings:
    """Read the settings at ``path``; never raises for a bad file (see the module docstring)."""
    path = Path(path)
    defaults = Settings()
    if not path.exists():
        return LoadedSettings(defaults, [])
    problems: list[str] = []

    def bad(reason: str) -> LoadedSettings:
        moved = _move_aside(path)
        msg = f"settings file {path} {reason}; using the defaults"
        if moved is not None:
            msg += f" (the bad file was kept as {moved.name})"
        log.warning(msg)
        return LoadedSettings(defaults, [msg])

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return bad(f"is unreadable ({exc})")
    except json.JSONDecodeError as exc:
        return bad(f"is corrupt (line {exc.lineno}: {exc.msg})")
    if not isinstance(data, dict):
        return bad("is not a settings file (expected a JSON object)")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        return bad("has no valid schema_version")
    if version > SCHEMA_VERSION:
        msg = (f"settings file {path} was written by a newer station (schema {version}, this one reads up "
               f"to {SCHEMA_VERSION}); using the defaults and leaving the file as it is")
        log.warning(msg)
        return LoadedSettings(defaults, [msg], writable=False)
    try:
        while version < SCHEMA_VERSION:
            data = MIGRATIONS[version](dict(data))
            version = data["schema_version"]
            log.info("settings migrated to schema %d", version)
    except Exception as exc:  # a migration must not keep the station from starting either
        return bad(f"could not be migrated from schema {version} ({type(exc).__name__}: {exc})")

    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name not in data:
            continue
        default = getattr(defaults, f.name)
        if _types_ok(data[f.name], default, f.name):
            values[f.name] = data[f.name]
        else:
            problems.append(f"settings: {f.name!r} has a bad value {data[f.name]!r}; using {default!r}")
    for p in problems:
        log.warning(p)
    settings = Settings(**values)
    settings.recent_sources = settings.recent_sources[:MAX_RECENT] or [settings.source_uri]
    return LoadedSettings(settings, problems)


def save_settings(settings: Settings, path: str | Path) -> None:
    """Write atomically (temporary file + rename), so a crash leaves the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"schema_version": SCHEMA_VERSION, **asdict(settings)}, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
