"""Screenshot of the results history, from a real run: ``station inspect`` on the synthetic demo part
(taught first) fills a fresh station home's results log and NG archive, then the history dialog
opens on it with an NG part selected.

    python tools/history_screenshot.py --out docs/screenshots/history.png

Display as tools/screenshots.py: Xvfb is started if there is no ``$DISPLAY`` (else ``--platform``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshots import qt_display, save_png, wait_until  # noqa: E402

# two runs, as a line with a second camera would log them: a cleaner batch, then the demo part (newest,
# so its NG parts are at the top); (source, share of --frames)
RUNS = (("synthetic://demo?fps=40&defect_rate=0.05", 0.3), ("synthetic://demo?fps=40", 1.0))


def fill_home(home: Path, frames: int) -> None:
    env = {**os.environ, "STATION_HOME": str(home)}
    for uri, share in RUNS:
        n = max(1, round(frames * share))
        cmd = [sys.executable, "-m", "station", "inspect", "--source", uri, "--recipe", str(home / "models" / "demo"),
               "--teach-demo", "--frames", str(n), "--print", "none", "--stats-every", "0", "--durability", "normal"]
        subprocess.run(cmd, env=env, check=True, cwd=REPO, timeout=600)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots" / "history.png")
    parser.add_argument("--platform", default=None, help="Qt platform (default: xcb on an X display)")
    parser.add_argument("--size", default="1360x800", help="dialog size")
    parser.add_argument("--width", type=int, default=1200, help="width of the saved PNG")
    parser.add_argument("--frames", type=int, default=200, help="frames of the first run")
    args = parser.parse_args()
    xvfb = qt_display(args.platform, args.size)
    home = Path(tempfile.mkdtemp(prefix="station-history-"))
    try:
        fill_home(home, args.frames)
        return _shoot(args, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if xvfb is not None:
            xvfb.terminate()


def _shoot(args: argparse.Namespace, home: Path) -> int:
    from PySide6.QtWidgets import QApplication

    from station.app.paths import AppPaths
    from station.gui.history_dialog import HistoryDialog

    app = QApplication.instance() or QApplication([])  # noqa: F841 - kept alive for the run

    wait = wait_until

    paths = AppPaths(home)
    dialog = HistoryDialog(paths.results_db, paths.archive, shift_start=lambda: time.time() - 3600)
    w, h = (int(v) for v in args.size.split("x"))
    dialog.resize(w, h)
    dialog.show()
    wait(lambda: not dialog.loading and dialog.model.rowCount() > 0, 30)
    # the newest NG part with a clearly visible defect
    rows = [dialog.model.row(i) for i in range(dialog.model.rowCount())]
    pick = next((i for i, r in enumerate(rows) if r["verdict"] == "NG" and r["regions"]
                 and r["regions"][0]["area_px"] > 150), 0)
    dialog.table.selectRow(pick)
    end = time.monotonic() + 0.5
    wait(lambda: time.monotonic() > end, 2)
    size = save_png(dialog.grab().toImage(), args.out, args.width)
    print(f"{args.out}: {size // 1024} kB; {dialog.summary_label.text()}")
    dialog.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
