"""The line outputs on ``station inspect``: options, the saved configuration, and wiring.

Options override the saved configuration ($STATION_HOME/lineio.json, also edited on the window's
Line I/O page) for this run; ``--save-line-io`` keeps them. Passwords go in the URLs and are never
printed (:func:`station.lineio.config.redact`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from station.app.paths import AppPaths


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("line I/O (PLC and plant)")
    g.add_argument("--station-id", help="this station's name in every result id (default: saved, else the host name)")
    g.add_argument("--mqtt", metavar="URL", help="publish each result: mqtt[s]://[user:pw@]broker:1883/line1/station2")
    g.add_argument("--postgres", metavar="URL", help="forward to a central database: postgresql://user:pw@host/db")
    g.add_argument("--opcua", metavar="URL", help="OPC UA server: opc.tcp://user:pw@0.0.0.0:4840[?anonymous=1]")
    g.add_argument("--modbus", metavar="URL", help="Modbus TCP server: modbus://0.0.0.0:502")
    g.add_argument("--trigger", action="store_true",
                   help="inspect exactly one frame per trigger (OPC UA Trigger, Modbus coil 0; a genicam camera "
                        "with ?trigger=software is triggered itself)")
    g.add_argument("--trigger-timeout", type=float, metavar="S", help="a trigger's frame must come within S seconds")
    g.add_argument("--trigger-timeout-verdict", choices=["ERROR", "NG"], help="the answer when it does not")
    g.add_argument("--line-config", default=str(AppPaths.default().home / "lineio.json"),
                   help="saved line I/O settings (default: %(default)s)")
    g.add_argument("--save-line-io", action="store_true", help="save these line I/O options for later runs")
    g.add_argument("--no-line-io", action="store_true", help="no line outputs this run, whatever is saved")


def line_config(args: argparse.Namespace) -> Any:
    """The saved configuration with this run's options applied (validated)."""
    from station.lineio.config import LineConfig, load_line_config, save_line_config

    if args.no_line_io:
        return LineConfig(enabled={})
    config, problems = load_line_config(args.line_config)
    for p in problems:
        print(f"warning: {p}", file=sys.stderr)
    for name in ("mqtt", "postgres", "opcua", "modbus"):
        value = getattr(args, name)
        if value is not None:
            setattr(config, name, value)
            config.enabled[name] = bool(value)
    if args.station_id:
        config.station_id = args.station_id
    if args.trigger:
        config.trigger_mode = True
    if args.trigger_timeout is not None:
        config.trigger_timeout_s = args.trigger_timeout
    if args.trigger_timeout_verdict:
        config.trigger_timeout_verdict = args.trigger_timeout_verdict
    config.validate()
    if args.save_line_io:
        save_line_config(config, args.line_config)
    return config


def audit_refused_login(user: str) -> None:
    """A refused OPC UA log-in goes to the station's audit trail (the user name, never a password)."""
    from station.app.audit import AuditLog

    AuditLog(AppPaths.default().audit_log).record("opcua.login_refused", f"OPC UA user {user}", role="system",
                                                  note="wrong user or password")


def recipe_selector(pipeline: Any, recipe_root: Path, device: str | None, control: Any) -> Any:
    """SelectRecipe(name): load ``<recipe_root>/<name>`` (its newest version) off the inspection thread,
    then hand the new inspector's state over to the inspection thread before its next frame."""
    from station.core.recipe import load_recipe
    from station.detectors.runtime import load_inspector

    def select(name: str) -> str:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"{name!r} is not a recipe name")
        recipe = load_recipe(recipe_root / name)
        new = load_inspector(recipe, device=device)
        pipeline.call_in_inspector(lambda inspector: inspector.__dict__.update(new.__dict__))
        control.set_recipe(recipe.name, recipe.version)
        return recipe.label

    return select
