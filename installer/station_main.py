"""Entry point of the bundled ``station`` executable (PyInstaller runs this file).

The same script starts the command line (``station <command>``) and, without a command, the window.
On Windows the windowed executable (``station-gui.exe``) has no console: its output goes to a log
file in the station's data folder instead of nowhere.
"""

from __future__ import annotations

import multiprocessing
import os
import sys


def _log_to_file_without_console() -> None:
    if sys.stdout is not None and sys.stderr is not None:
        return
    from station.app.paths import default_home

    home = default_home()
    try:
        home.mkdir(parents=True, exist_ok=True)
        stream = open(home / "station-gui.log", "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as the process
    except OSError:
        stream = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    sys.stdout = sys.stdout or stream
    sys.stderr = sys.stderr or stream


if __name__ == "__main__":
    multiprocessing.freeze_support()  # `station bench` measures in spawned processes
    _log_to_file_without_console()
    from station.cli.main import main

    sys.exit(main())
