"""``station gui`` (and ``station`` alone): open the station window.

The window starts on the embedded default -- the synthetic demo camera and the demo recipe, taught on
first start -- unless a source or recipe is given or remembered. Qt is imported only when the command
runs (by name, through importlib, so the headless packages never depend on the GUI).
"""

from __future__ import annotations

import argparse
import importlib
import time

_LAUNCHED = time.monotonic()  # as early as the CLI gets: the start-up time is measured from here


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="open the station window (the default without a command)",
                       description="Open the station window: Inspect (operator), Teach and Review (engineer). "
                                   "Without options it inspects the synthetic demo part, teaching it on first start.")
    p.add_argument("--source", help="image source URI, e.g. synthetic://demo?fps=30, folder:///path, genicam://<serial>")
    p.add_argument("--recipe", help="recipe folder to inspect with (a part folder or one of its versions)")
    p.add_argument("--home", help="folder for settings, recipes, logs (default: $STATION_HOME or the per-user data folder)")
    p.add_argument("--no-autostart", dest="auto_start", action="store_false", default=None,
                   help="do not start inspecting when the window opens")
    p.add_argument("--demo-detector", help="detector the demo part is taught with on first start (default: variation)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:n] for detectors that use torch")
    p.add_argument("--kiosk", action="store_true", default=None,
                   help="operator full screen for this run: only engineer mode leaves it or closes the station "
                        "(an engineer can also switch it on for good in the window)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        app = importlib.import_module("station.gui.app")
    except ImportError as exc:
        print(f"error: the window needs PySide6 and pyqtgraph ({exc}); the headless commands work without them")
        return 2
    return app.run(home=args.home, source=args.source, recipe=args.recipe, auto_start=args.auto_start,
                   demo_detector=args.demo_detector, device=args.device, launched_at=_LAUNCHED,
                   kiosk=args.kiosk)
