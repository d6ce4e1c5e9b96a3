"""What the line outputs are and where they go: one small JSON file (``lineio.json``), versioned.

Every output is a URL, credentials included (``mqtt://user:secret@broker:1883/line1/station2``). The
file therefore holds passwords: it is written readable by its owner only (mode 0600), and anything
meant for a person -- logs, the window, the audit trail, ``station selftest`` -- shows a URL only
through :func:`redact`, which replaces the password with ``***``.

Like the station settings, a bad file never keeps the station from starting: it is reported and the
defaults (every output off) are used.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
OUTPUTS = ("mqtt", "postgres", "opcua", "modbus")
SCHEMES = {"mqtt": ("mqtt", "mqtts"), "postgres": ("postgresql", "postgres"), "opcua": ("opc.tcp",),
           "modbus": ("modbus", "modbus+tcp")}
TIMEOUT_VERDICTS = ("ERROR", "NG")


class LineConfigError(ValueError):
    """An output URL or option that cannot work; the message says what is wrong and how it should look."""


def default_station_id() -> str:
    return socket.gethostname().split(".")[0] or "station"


@dataclass
class LineConfig:
    """The station's line outputs. An empty URL is an output that is not configured."""

    station_id: str = field(default_factory=default_station_id)
    mqtt: str = ""
    postgres: str = ""
    opcua: str = ""
    modbus: str = ""
    enabled: dict[str, bool] = field(default_factory=lambda: {name: True for name in OUTPUTS})
    trigger_mode: bool = False  # inspect exactly one frame per trigger instead of every frame
    trigger_timeout_s: float = 2.0  # a trigger whose frame has not come by then is answered with ...
    trigger_timeout_verdict: str = "ERROR"  # ... this verdict (ERROR or NG) and a clear error
    max_backlog: int = 100_000  # results a forwarder keeps owing; older ones are skipped, loudly
    backlog_warning: int = 1_000  # from this many undelivered results on, the window and selftest warn

    def active(self) -> dict[str, str]:
        """The configured and switched-on outputs: name -> URL (with credentials: do not print)."""
        return {name: getattr(self, name) for name in OUTPUTS
                if getattr(self, name) and self.enabled.get(name, True)}

    def validate(self) -> None:
        """Raise :class:`LineConfigError` for the first output or option that cannot work."""
        if not self.station_id.strip() or any(c in self.station_id for c in "/#+ "):
            raise LineConfigError(f"station id {self.station_id!r}: give a name without spaces, '/', '#' or '+'")
        if self.trigger_timeout_verdict not in TIMEOUT_VERDICTS:
            raise LineConfigError(f"trigger timeout verdict must be ERROR or NG, not {self.trigger_timeout_verdict!r}")
        if self.trigger_timeout_s <= 0:
            raise LineConfigError("the trigger timeout must be > 0 s")
        if self.max_backlog < 1:
            raise LineConfigError("the backlog bound must be at least 1 result")
        for name, url in self.active().items():
            parse_output(name, url)


@dataclass(frozen=True)
class OutputURL:
    scheme: str
    host: str
    port: int | None
    path: str  # without the leading "/"
    username: str
    password: str = field(repr=False)
    params: dict[str, str] = field(default_factory=dict)


DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883, "opc.tcp": 4840, "modbus": 502, "modbus+tcp": 502,
                 "postgresql": 5432, "postgres": 5432}


def parse_output(name: str, url: str) -> OutputURL:
    """Split an output URL; raises :class:`LineConfigError` with an example of a valid one."""
    example = {"mqtt": "mqtt://[user:password@]broker:1883/line1/station2[?ca=ca.pem]",
               "postgres": "postgresql://user:password@host:5432/database",
               "opcua": "opc.tcp://[user:password@]0.0.0.0:4840[?anonymous=1&security=none]",
               "modbus": "modbus://0.0.0.0:5020[?unit=1]"}[name]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise LineConfigError(f"{name}: cannot read {redact(url)!r} ({exc}); expected {example}") from None
    if parts.scheme.lower() not in SCHEMES[name] or not parts.hostname:
        raise LineConfigError(f"{name}: {redact(url)!r} is not a {name} address; expected {example}")
    scheme = parts.scheme.lower()
    return OutputURL(scheme, parts.hostname, port or DEFAULT_PORTS.get(scheme), unquote(parts.path.lstrip("/")),
                     unquote(parts.username or ""), unquote(parts.password or ""), dict(parse_qsl(parts.query)))


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (and ``password=`` query values too)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.split(':', 1)[0]}:***@{host}"
        query = "&".join(f"{k}=***" if k.lower() in ("password", "pass", "pwd") else f"{k}={v}"
                         for k, v in parse_qsl(parts.query, keep_blank_values=True))
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unreadable address>"


def load_line_config(path: str | Path) -> tuple[LineConfig, list[str]]:
    """The saved configuration and the problems found reading it (never raises for a bad file)."""
    path = Path(path)
    if not path.exists():
        return LineConfig(), []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        msg = f"line I/O settings {path} unreadable ({exc}); every output is off"
        log.warning(msg)
        return LineConfig(), [msg]
    if int(data.get("schema_version", 0)) > SCHEMA_VERSION:
        msg = f"line I/O settings {path} are from a newer station; every output is off"
        log.warning(msg)
        return LineConfig(), [msg]
    defaults, values, problems = LineConfig(), {}, []
    for f in fields(LineConfig):
        if f.name not in data:
            continue
        value, default = data[f.name], getattr(defaults, f.name)
        ok = (isinstance(value, type(default)) and not isinstance(value, bool) or isinstance(default, bool)
              and isinstance(value, bool) or isinstance(default, float) and isinstance(value, int))
        if f.name == "enabled":
            ok = isinstance(value, dict) and all(isinstance(v, bool) for v in value.values())
        if ok:
            values[f.name] = value
        else:
            problems.append(f"line I/O settings: {f.name!r} has a bad value; using the default")
    config = LineConfig(**values)
    try:
        config.validate()
    except LineConfigError as exc:
        problems.append(f"line I/O settings: {exc}")
    for p in problems:
        log.warning(p)
    return config, problems


def save_line_config(config: LineConfig, path: str | Path) -> None:
    """Write atomically, readable by the owner only (the file holds passwords)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"schema_version": SCHEMA_VERSION, **asdict(config)}, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def describe(config: LineConfig) -> dict[str, Any]:
    """The configuration as a person may see it (passwords redacted)."""
    d = asdict(config)
    for name in OUTPUTS:
        d[name] = redact(d[name]) if d[name] else ""
    return d


def split_credentials(url: str) -> tuple[str, str, str]:
    """``(url without user and password, user, password)`` -- for a form with separate fields."""
    try:
        parts = urlsplit(url)
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
    except ValueError:
        return url, "", ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), user, password


def with_credentials(url: str, user: str, password: str) -> str:
    """``url`` with ``user`` and ``password`` put in (percent-encoded); empty user: none."""
    from urllib.parse import quote

    bare, _, _ = split_credentials(url.strip())
    if not bare or not user:
        return bare
    parts = urlsplit(bare)
    cred = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return urlunsplit((parts.scheme, f"{cred}@{parts.netloc}", parts.path, parts.query, parts.fragment))
