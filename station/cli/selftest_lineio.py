"""``station selftest``'s line I/O checks: every configured output (``line:mqtt``, ``line:postgres``,
``line:opcua``, ``line:modbus``) and the forwarders' backlog (``line:backlog``, a warning)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

CheckFn = Callable[[], tuple[str, dict[str, Any]]]


def line_checks(config_path: Path, results_db: Path, failed: type[Exception]) -> list[tuple[str, CheckFn, bool]]:
    """(name, check, required) for each configured output; ``failed`` is the self-test's failure type."""
    from station.lineio import checks
    from station.lineio.config import load_line_config

    config, problems = load_line_config(config_path)
    out: list[tuple[str, CheckFn, bool]] = []

    def wrap(fn: CheckFn) -> CheckFn:
        def run() -> tuple[str, dict[str, Any]]:
            try:
                return fn()
            except checks.LinkCheckError as exc:
                raise failed(str(exc)) from None
        return run

    if problems:
        def bad() -> tuple[str, dict[str, Any]]:
            raise failed("; ".join(problems))
        out.append(("line:settings", bad, True))
    active = config.active()
    if "mqtt" in active:
        out.append(("line:mqtt", wrap(lambda: checks.check_mqtt(active["mqtt"], config.station_id)), True))
    if "postgres" in active:
        out.append(("line:postgres", wrap(lambda: checks.check_postgres(active["postgres"], config.station_id)), True))
    for name in ("opcua", "modbus"):
        if name in active:
            out.append((f"line:{name}", wrap(lambda n=name: checks.check_server_port(n, active[n])), True))
    if active:
        out.append(("line:backlog", wrap(lambda: checks.check_backlog(config, results_db)), False))
    return out
