"""What a person picks a camera from: the GenICam devices that ``station cameras`` finds (with vendor,
model and serial), the demo part, and folders used before -- each with its source URI -- and the
camera settings (exposure, gain, frame rate, format and size) a recipe keeps and applies when a live
camera inspects with it.

A recipe's settings are URI options (``exposure``, ``gain`` ... as :data:`SETTING_FEATURES` names
them), so a camera applies them the way it applies a URI's, and a source URI that names an option
itself keeps its own value.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from station.acquisition.base import SourceError
from station.acquisition.genicam import GenICamSource
from station.acquisition.genicam_features import SETTING_FEATURES, FeatureInfo
from station.acquisition.gentl import GenTLHub, list_devices

DEMO_SOURCE = "synthetic://demo?fps=30&defect_rate=0"


@dataclass(frozen=True)
class SourceChoice:
    """One entry of the camera list."""

    label: str  # "Machine Vision Games Ltd. Viky (serial 0)"
    uri: str
    kind: str  # "genicam", "demo", "folder" or "other"
    detail: str = ""  # e.g. the device's access state


def _kind(uri: str) -> str:
    scheme = urlsplit(uri).scheme
    return {"genicam": "genicam", "synthetic": "demo", "folder": "folder"}.get(scheme, "other")


def describe_uri(uri: str) -> str:
    """A label for a URI that is not a discovered camera."""
    kind = _kind(uri)
    if kind == "folder":
        return f"Folder {urlsplit(uri).path or uri[len('folder://'):]}"
    if kind == "demo":
        return "Demo part (simulated camera)"
    return uri


def discover_sources(recent: Sequence[str] = (), cti: Sequence[str | os.PathLike[str]] = (),
                     hub: GenTLHub | None = None) -> tuple[list[SourceChoice], list[str]]:
    """The camera list: GenICam devices first, then the demo part, then ``recent`` URIs not already
    listed; and the problems met (no producer, a listing that failed), one line each."""
    choices: list[SourceChoice] = []
    problems: list[str] = []
    try:
        _files, devices = list_devices(cti, hub=hub)
    except SourceError as exc:
        problems.append(f"GenICam: {exc}")
        devices = []
    except Exception as exc:  # noqa: BLE001 - a broken producer must not take the list with it
        problems.append(f"GenICam: the camera listing failed ({exc})")
        devices = []
    for d in devices:
        target = d.serial or d.id
        name = " ".join(p for p in (d.vendor, d.model) if p) or d.display_name or d.id
        choices.append(SourceChoice(f"{name} (serial {d.serial or '?'})", f"genicam://{target}", "genicam",
                                    d.access))
    choices.append(SourceChoice(describe_uri(DEMO_SOURCE), DEMO_SOURCE, "demo"))
    listed = {c.uri for c in choices}
    for uri in recent:
        if uri and uri not in listed:
            choices.append(SourceChoice(describe_uri(uri), uri, _kind(uri)))
            listed.add(uri)
    return choices, problems


def folder_uri(path: str | os.PathLike[str]) -> str:
    return f"folder://{os.fspath(path)}"


def read_camera_settings(uri: str, hub: GenTLHub | None = None) -> list[tuple[str, FeatureInfo]]:
    """``(URI option, feature)`` for every setting a recipe can keep, read from the camera of ``uri``
    (opened for the moment, without acquiring). Features the device lacks come back with
    ``present=False``. Raises :class:`SourceError` if the camera cannot be opened."""
    if _kind(uri) != "genicam":
        raise SourceError(f"{uri}: camera settings need a GenICam camera")
    src = GenICamSource.from_uri(uri)
    if hub is not None:
        src.hub = hub
    src.open()
    try:
        infos = src.features(SETTING_FEATURES.values())
    finally:
        src.close()
    return list(zip(SETTING_FEATURES, infos, strict=True))


def with_camera_settings(uri: str, settings: dict[str, Any] | None) -> str:
    """``uri`` with a recipe's camera ``settings`` added as options; only for GenICam URIs, and an
    option the URI names itself keeps the URI's value."""
    if not settings or _kind(uri) != "genicam":
        return uri
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    named = {k for k, _ in query}
    extra = [(k, _fmt(v)) for k, v in settings.items() if k in SETTING_FEATURES and k not in named]
    if not extra:
        return uri
    return urlunsplit(parts._replace(query=urlencode(query + extra, safe=":/")))


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def recipe_camera_settings(recipe_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The camera settings a saved recipe keeps (read from its JSON only: no tensors are loaded);
    ``{}`` when it keeps none or cannot be read (loading the recipe itself will say why)."""
    import json

    from station.core.recipe import RECIPE_FILE, resolve_recipe_dir

    try:
        meta = json.loads((resolve_recipe_dir(recipe_path) / RECIPE_FILE).read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - the inspection's own recipe load reports a broken recipe
        return {}
    camera = meta.get("camera") if isinstance(meta, dict) else None
    return dict(camera) if isinstance(camera, dict) else {}
