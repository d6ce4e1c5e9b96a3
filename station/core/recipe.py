"""Recipes: everything needed to inspect one taught part, as versioned, human-readable data.

Layout on disk (one folder per part, one sub-folder per saved version, older versions kept)::

    models/<part>/v0001/recipe.json         metadata, detector parameters, threshold, statistics
    models/<part>/v0001/tensors.safetensors learned arrays (never a pickle)

A version is written into a hidden temporary folder and renamed into place in one step, so a crash
or a cancelled teach-in never leaves a half-written version; ``recipe.json`` records the SHA-256 of
the tensor file so a truncated or altered file is detected on load.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import station
from station.core.units import px_to_mm2

SCHEMA_VERSION = 1
RECIPE_FILE = "recipe.json"
TENSORS_FILE = "tensors.safetensors"
_VERSION_DIR = re.compile(r"^v(\d{4,})$")
VALIDATION_PREFIX = "_validation/"  # state keys of the stored validation maps (not the detector's)
GOLDEN_PREFIX = "_golden/"  # state keys of the golden parts' images (station.core.golden)
_NOT_DETECTOR = (VALIDATION_PREFIX, GOLDEN_PREFIX)


class RecipeError(Exception):
    """A recipe is missing, corrupt, truncated, or from a newer station."""


@dataclass
class Recipe:
    """A taught part. ``state`` holds the detector's arrays; the rest is stored as JSON."""

    name: str
    detector_kind: str
    detector_config: dict[str, Any]
    threshold: float
    min_defect_area_px: float
    preprocessing: dict[str, Any] = field(default_factory=lambda: {"color_mode": "rgb", "roi": None})
    pixel_size_mm: float | None = None
    validation: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, Any] | None = None  # identity of pretrained weights the detector was taught with
    camera: dict[str, Any] = field(default_factory=dict)  # camera settings (URI options: exposure, gain ...)
    golden: dict[str, Any] = field(default_factory=dict)  # known parts and their verdicts (core.golden)
    # what the teach images looked like (core.frame_stats); empty in recipes taught before it: no input watch
    input_profile: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    station_version: str = station.__version__
    version: int = 0  # assigned on save
    state: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    path: Path | None = field(default=None, repr=False, compare=False)  # where it was loaded from/saved to

    def metadata(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("state")
        d.pop("path")
        return {"schema_version": SCHEMA_VERSION, **d}

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    def detector_state(self) -> dict[str, np.ndarray]:
        """The detector's own arrays (the stored validation maps and golden parts left out)."""
        return {k: v for k, v in self.state.items() if not k.startswith(_NOT_DETECTOR)}

    def validation_maps(self) -> list[np.ndarray]:
        return [self.state[k] for k in sorted(self.state) if k.startswith(VALIDATION_PREFIX)]

    def min_defect_area_mm2(self) -> float | None:
        if not self.pixel_size_mm:
            return None
        return px_to_mm2(self.min_defect_area_px, self.pixel_size_mm)


# --- migrations: each takes schema n and returns schema n + 1 --------------------------------------
_MIGRATIONS: dict[int, Any] = {}


def _migrate(meta: dict[str, Any], source: Path) -> dict[str, Any]:
    version = meta.get("schema_version")
    if not isinstance(version, int):
        raise RecipeError(f"{source}: no valid schema_version; not a station recipe?")
    if version > SCHEMA_VERSION:
        raise RecipeError(
            f"{source}: written by a newer station (recipe schema {version}, this station reads up to "
            f"{SCHEMA_VERSION}); update the station to load it")
    while version < SCHEMA_VERSION:
        meta = _MIGRATIONS[version](meta)
        version = meta["schema_version"]
    return meta


def state_digest(state: dict[str, np.ndarray]) -> str:
    """A SHA-256 over the names, types, shapes and bytes of arrays (independent of their order): ties
    a derived file (an ONNX export) to exactly the learned state it was made from."""
    h = hashlib.sha256()
    for key in sorted(state):
        a = np.ascontiguousarray(state[key])
        h.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    if os.name == "posix":
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def version_number(folder: str | Path) -> int | None:
    """The version a folder named ``vNNNN`` holds, or None for any other name."""
    m = _VERSION_DIR.match(Path(folder).name)
    return int(m.group(1)) if m else None


def versions(part_dir: str | Path) -> list[tuple[int, Path]]:
    """Saved versions of a part, oldest first (temporary and foreign folders ignored)."""
    p = Path(part_dir)
    if not p.is_dir():
        return []
    out = []
    for child in p.iterdir():
        m = _VERSION_DIR.match(child.name)
        if m and child.is_dir():
            out.append((int(m.group(1)), child))
    return sorted(out)


def save_recipe(recipe: Recipe, part_dir: str | Path, attach: dict[str, Path] | None = None,
                copies: dict[str, Path] | None = None) -> Path:
    """Save ``recipe`` as the next version under ``part_dir`` atomically; returns the version folder.
    ``attach``: folders moved into the version folder under the given names before it appears (e.g.
    the ONNX export an int8 version cannot inspect without), on the same file system as ``part_dir``;
    ``copies``: folders copied in the same way (see :func:`exports_of`)."""
    from safetensors.numpy import save_file

    part = Path(part_dir)
    part.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".saving-", dir=part))
    try:
        for name, folder in (attach or {}).items():
            shutil.move(str(folder), str(tmp / name))
        for name, folder in (copies or {}).items():
            shutil.copytree(folder, tmp / name)
        tensors = {k: np.ascontiguousarray(v) for k, v in recipe.state.items()}
        save_file(tensors, str(tmp / TENSORS_FILE))
        existing = versions(part)
        number = (existing[-1][0] + 1) if existing else 1
        meta = recipe.metadata()
        meta["version"] = number
        meta["tensors"] = {"file": TENSORS_FILE, "sha256": _sha256(tmp / TENSORS_FILE),
                           "keys": sorted(tensors)}
        with open(tmp / RECIPE_FILE, "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2, default=_json_default)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        with open(tmp / TENSORS_FILE, "rb") as f:
            os.fsync(f.fileno())
        while True:  # another writer may have taken the number meanwhile
            target = part / f"v{number:04d}"
            try:
                os.rename(tmp, target)  # atomic on one file system; fails if target exists
                break
            except OSError:
                if not target.exists():
                    raise
                number += 1
                meta["version"] = number
                with open(tmp / RECIPE_FILE, "w", encoding="utf-8") as f:
                    json.dump(meta, f, indent=2, default=_json_default)
        _fsync_dir(part)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    recipe.version = number
    recipe.path = target
    return target


def exports_of(recipe: Recipe) -> dict[str, Path]:
    """The exports saved beside ``recipe``'s version (its ``onnx`` folder), for ``save_recipe(copies=...)``
    of a version with the same detector state (e.g. re-tuned): they stay valid for it, and an int8
    version cannot inspect without its own."""
    folder = recipe.path / "onnx" if recipe.path is not None else None
    return {"onnx": folder} if folder is not None and folder.is_dir() else {}


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def resolve_recipe_dir(path: str | Path) -> Path:
    """The version folder that ``path`` names: a version folder, its ``recipe.json``, or a part
    folder (its newest version)."""
    p = Path(path)
    if p.is_file() and p.name == RECIPE_FILE:
        return p.parent
    if not p.exists():
        raise RecipeError(f"{p}: recipe not found")
    if (p / RECIPE_FILE).is_file():
        return p
    found = versions(p)
    if not found:
        raise RecipeError(f"{p}: no saved recipe versions here (expected v0001/{RECIPE_FILE} ...)")
    return found[-1][1]


def load_recipe(path: str | Path) -> Recipe:
    """Load a recipe (see :func:`resolve_recipe_dir` for what ``path`` may be).

    Raises
    ------
    RecipeError
        For a missing, unreadable, corrupt, truncated or newer-schema recipe, naming an intact older
        version where there is one.
    """
    folder = resolve_recipe_dir(path)
    try:
        return _load_version(folder)
    except RecipeError as exc:
        older = [v for v in versions(folder.parent) if v[1] != folder and v[1].name < folder.name]
        if older:
            raise RecipeError(f"{exc}. The previous version {older[-1][1]} may be loaded instead.") from exc
        raise


def _load_version(folder: Path) -> Recipe:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    meta_path = folder / RECIPE_FILE
    try:
        text = meta_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{meta_path}: missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{meta_path}: unreadable ({exc})") from exc
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecipeError(f"{meta_path}: corrupt or truncated JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(meta, dict):
        raise RecipeError(f"{meta_path}: not a recipe (expected a JSON object)")
    meta = _migrate(meta, meta_path)
    tensors_info = meta.pop("tensors", None) or {}
    meta.pop("schema_version", None)
    tensor_path = folder / tensors_info.get("file", TENSORS_FILE)
    if not tensor_path.is_file():
        raise RecipeError(f"{tensor_path}: tensor file missing")
    expected = tensors_info.get("sha256")
    if expected and _sha256(tensor_path) != expected:
        raise RecipeError(f"{tensor_path}: checksum mismatch; the file is truncated or was altered")
    try:
        state = load_file(str(tensor_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise RecipeError(f"{tensor_path}: unreadable tensor file ({exc})") from exc
    required = {"name": str, "detector_kind": str, "detector_config": dict, "threshold": (int, float),
                "min_defect_area_px": (int, float)}
    for key, typ in required.items():
        if not isinstance(meta.get(key), typ):
            raise RecipeError(f"{meta_path}: field {key!r} is missing or of the wrong type")
    known = {f for f in Recipe.__dataclass_fields__ if f not in ("state", "path")}
    unknown = set(meta) - known
    for k in unknown:  # tolerate extra fields written by tools; they are not used
        meta.pop(k)
    recipe = Recipe(**meta, state=state)
    recipe.path = folder
    return recipe
