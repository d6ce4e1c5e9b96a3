"""``station selftest`` checks for the configured line outputs: can each be reached or served, and is
any forwarder's backlog over its warning level. Each check returns a one-line detail and data, or
raises :class:`LinkCheckError` with the reason (never a password: addresses go through ``redact``)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

from station.lineio.config import LineConfig, parse_output, redact
from station.lineio.outbox import cursors


class LinkCheckError(Exception):
    pass


def check_mqtt(url: str, station_id: str, timeout: float = 5.0) -> tuple[str, dict[str, Any]]:
    from station.lineio.mqtt import make_client, topics

    client, u = make_client(url, f"station-{station_id}-selftest")
    answered, reason = threading.Event(), []
    client.on_connect = lambda _c, _u, _f, rc, _p: (reason.append(str(rc) if rc.is_failure else ""), answered.set())
    try:
        client.connect(u.host, u.port, keepalive=10)
    except (OSError, ValueError) as exc:
        raise LinkCheckError(f"{redact(url)}: cannot connect ({exc})") from None
    client.loop_start()
    try:
        if not answered.wait(timeout):
            raise LinkCheckError(f"{redact(url)}: the broker did not answer within {timeout:g} s")
        if reason and reason[0]:
            raise LinkCheckError(f"{redact(url)}: the broker refused the log-in ({reason[0]})")
    finally:
        client.disconnect()
        client.loop_stop()
    result_topic, status_topic = topics(url, station_id)
    return f"{redact(url)}: broker accepts the log-in; results on {result_topic}", {"topic": result_topic}


def check_postgres(url: str, station_id: str) -> tuple[str, dict[str, Any]]:
    from station.lineio.central import CentralError, connect, migrate

    try:
        conn = connect(url)
    except CentralError as exc:
        raise LinkCheckError(str(exc)) from None
    try:
        before = migrate(conn)
        n = conn.execute("SELECT COUNT(*) FROM results WHERE station_id = %s", (station_id,)).fetchone()[0]
    except CentralError as exc:
        raise LinkCheckError(str(exc)) from None
    finally:
        conn.close()
    return (f"{redact(url)}: schema {before or 'created'}, {n} results of {station_id}",
            {"rows": int(n), "schema_before": before})


def check_server_port(name: str, url: str) -> tuple[str, dict[str, Any]]:
    """The server's port can be opened here (or is served already, e.g. by the running station)."""
    u = parse_output(name, url)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((u.host, int(u.port or 0)))
        except PermissionError:
            raise LinkCheckError(f"{redact(url)}: port {u.port} needs administrator rights; use a port above 1023 "
                                 "or grant CAP_NET_BIND_SERVICE") from None
        except OSError as exc:
            try:
                with socket.create_connection(("127.0.0.1" if u.host in ("0.0.0.0", "") else u.host, int(u.port)),
                                              timeout=1.0):
                    return f"{redact(url)}: port {u.port} is served already (the running station?)", {"in_use": True}
            except OSError:
                raise LinkCheckError(f"{redact(url)}: cannot listen on {u.host}:{u.port} ({exc})") from None
    if name == "opcua" and not (u.username or u.params.get("anonymous") in ("1", "true", "yes")):
        raise LinkCheckError(f"{redact(url)}: no user and password; anonymous clients need ?anonymous=1")
    return f"{redact(url)}: port {u.port} free to listen on", {"in_use": False}


def check_backlog(config: LineConfig, db_path: str | Path) -> tuple[str, dict[str, Any]]:
    rows = cursors(db_path)
    if not rows:
        return "no forwarder has run yet", {"cursors": []}
    over = [c for c in rows if c["pending"] >= config.backlog_warning or c["skipped"]]
    text = "; ".join(f"{c['name']}: {c['pending']} waiting" + (f", {c['skipped']} skipped over the bound"
                                                                 if c["skipped"] else "") for c in rows)
    if over:
        raise LinkCheckError(f"results not delivered: {text} (warning level {config.backlog_warning}, "
                             f"bound {config.max_backlog})")
    return text, {"cursors": rows}
