"""The ``FrameSource`` protocol, the ``Frame`` record and the registry of sources by URI scheme.

A source is named by a URI, e.g. ``genicam://<serial>?cti=<path>``, ``folder://<path>?fps=10&loop=1``
or ``synthetic://demo?defect_rate=0.2``; :func:`open_source` picks the implementation by scheme.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl, unquote, urlsplit

import numpy as np


class SourceState(str, Enum):
    CLOSED = "closed"
    CONNECTED = "connected"
    ACQUIRING = "acquiring"
    LOST = "lost"
    RECONNECTING = "reconnecting"


class SourceError(Exception):
    """A source cannot be opened or has failed (unknown camera, missing folder, bad URI ...)."""


@dataclass
class Frame:
    """One acquired image. ``image`` is ``uint8`` RGB ``(H, W, 3)`` or gray ``(H, W)``, owned by the
    frame (copied out of any driver buffer)."""

    image: np.ndarray
    frame_id: int
    timestamp: float  # seconds, time.time() at acquisition when the device gives none
    pixel_format: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. "path", "label", "mask" for replay


@runtime_checkable
class FrameSource(Protocol):
    """Open -> start -> next_frame()/latest_frame() ... -> stop -> close."""

    uri: str
    live: bool  # True for cameras (drop the oldest frame when behind), False for replay (lose none)

    @property
    def state(self) -> SourceState: ...

    def open(self) -> None: ...

    def start(self) -> None: ...

    def next_frame(self, timeout: float = 1.0) -> Frame | None:
        """The next frame, or ``None`` if none came within ``timeout`` seconds (never blocks forever).
        Raises ``StopIteration`` when a finite source is exhausted."""
        ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SourceURI:
    scheme: str
    target: str  # the part after "scheme://", unquoted (serial, path, demo name)
    params: dict[str, str]

    @classmethod
    def parse(cls, uri: str) -> SourceURI:
        if "://" not in uri:
            raise SourceError(f"{uri!r} is not a source URI; expected e.g. synthetic://demo, "
                              "folder:///path/to/images or genicam://<serial>")
        parts = urlsplit(uri)
        target = unquote(parts.netloc + parts.path)
        return cls(parts.scheme.lower(), target, dict(parse_qsl(parts.query)))


_SCHEMES: dict[str, str] = {
    "genicam": "station.acquisition.genicam:GenICamSource",
    "folder": "station.acquisition.folder:FolderSource",
    "synthetic": "station.acquisition.synthetic:SyntheticSource",
}


def register_scheme(scheme: str, target: str) -> None:
    _SCHEMES[scheme] = target


def source_schemes() -> list[str]:
    return sorted(_SCHEMES)


def open_source(uri: str) -> FrameSource:
    """Create (not yet open) the source named by ``uri``; unknown schemes fail listing the valid ones."""
    parsed = SourceURI.parse(uri)
    target = _SCHEMES.get(parsed.scheme)
    if target is None:
        close = difflib.get_close_matches(parsed.scheme, list(_SCHEMES), n=1)
        hint = f" Did you mean {close[0]}://?" if close else ""
        raise SourceError(f"unknown source type {parsed.scheme!r}.{hint} "
                          f"Available: {', '.join(s + '://' for s in source_schemes())}")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls.from_uri(uri)
