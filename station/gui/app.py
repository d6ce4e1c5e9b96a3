"""Starting the window: the Qt application, the station context, signals, and the exit code."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)


def run(home: str | Path | None = None, source: str | None = None, recipe: str | None = None,
        auto_start: bool | None = None, demo_detector: str | None = None, device: str = "auto",
        launched_at: float | None = None, kiosk: bool | None = None) -> int:
    """Open the station window and run until it is closed; returns the exit code."""
    launched_at = time.monotonic() if launched_at is None else launched_at
    if (sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")
            and not os.environ.get("QT_QPA_PLATFORM")):
        # Qt would abort with a core dump; say what to do instead
        print("error: no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set). Run it in a "
              "desktop session, over ssh -X, under xvfb-run, or with QT_QPA_PLATFORM=offscreen for a check "
              "without a screen; `station inspect` inspects without a window.", file=sys.stderr)
        return 2
    from station.gui.system_libs import window_problem

    problem = window_problem()  # Qt would abort naming its plugin, not the missing library
    if problem:
        print(problem, file=sys.stderr)
        return 2
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from station.app.context import StationContext
    from station.app.paths import AppPaths
    from station.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Inspection station")
    app.setOrganizationName("station")
    from station.gui.gc_guard import GarbageCollector

    collector = GarbageCollector(app)  # no collection inside a Qt call (see gc_guard)
    paths = AppPaths(Path(home).expanduser()) if home else AppPaths.default()
    ctx = StationContext.load(paths)
    ctx.device = device
    if demo_detector:
        ctx.settings.demo_detector = demo_detector
    window = MainWindow(ctx, source=source, recipe=recipe, auto_start=auto_start, launched_at=launched_at,
                        kiosk=kiosk)
    window.show_station()

    # Ctrl-C or a service manager's SIGTERM closes the window the normal way (workers stopped, logs
    # closed); the timer lets the Python interpreter run its signal handlers while Qt's loop runs.
    def close(*_args: object) -> None:
        log.info("signal received: closing")
        window.quit_station()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, close)
        except (ValueError, OSError):  # not the main thread (tests) or not supported
            pass
    ticker = QTimer()
    ticker.timeout.connect(lambda: None)
    ticker.start(200)
    code = app.exec()
    ticker.stop()
    collector.stop()
    return int(code)
