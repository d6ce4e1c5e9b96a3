"""Screenshots of the station window's three modes, taken from the running program, for the README.

Runs the real window on a display -- an X server (Xvfb is started if there is no ``$DISPLAY`` and it
is installed) with ``QT_QPA_PLATFORM=xcb``, or ``--platform offscreen`` -- in a fresh station home, so
it shows what a new user sees: the demo part taught on first start and inspected live, the teach-in
wizard's region of interest and its threshold page with a live preview, and a review of an MVTec AD
category (the real bottle if ``shared/data`` has it, else the demo part exported in MVTec layout).

    python tools/screenshots.py --out docs/screenshots

Needs on a bare Debian/Ubuntu: ``apt-get install -y xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0
libxkbcommon-x11-0 libxcb-xinerama0 libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-shape0``.
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
MAX_PNG_BYTES = 280 * 1024  # the README's images stay small


def start_xvfb(size: str) -> subprocess.Popen | None:
    if os.environ.get("DISPLAY") or not shutil.which("Xvfb"):
        return None
    display = ":97"
    proc = subprocess.Popen(["Xvfb", display, "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    os.environ["DISPLAY"] = display
    return proc


def qt_display(platform: str | None, size: str) -> subprocess.Popen | None:
    """Pick the Qt platform before Qt loads: ``platform`` if given, else an X display (Xvfb started
    when there is none and it is installed; the caller terminates it), else offscreen."""
    if platform:
        os.environ["QT_QPA_PLATFORM"] = platform
        return None
    xvfb = start_xvfb(size)
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb" if os.environ.get("DISPLAY") else "offscreen")
    return xvfb


def wait_until(cond, timeout: float, what: str = "the window") -> None:
    """Run the Qt event loop until ``cond()`` holds; a TimeoutError names what did not come."""
    from PySide6.QtCore import QEventLoop, QTimer

    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        loop = QEventLoop()
        QTimer.singleShot(20, loop.quit)
        loop.exec()


def save_png(image, path: Path, width: int) -> int:
    """Save a QImage as a small PNG (scaled to ``width``, 256-colour palette if Pillow is there)."""
    from PySide6.QtCore import Qt

    if image.width() > width:
        image = image.scaledToWidth(width, Qt.TransformationMode.SmoothTransformation)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".full.png")
    image.save(str(tmp), "PNG")
    try:
        from PIL import Image

        for colors in (256, 192, 128):
            with Image.open(tmp) as im:
                im.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT,
                                           dither=Image.Dither.NONE).save(path, optimize=True)
            if path.stat().st_size <= MAX_PNG_BYTES:
                break
        tmp.unlink()
    except ImportError:
        tmp.replace(path)
    return path.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--platform", default=None, help="Qt platform (default: xcb on an X display)")
    parser.add_argument("--size", default="1360x860", help="window size")
    parser.add_argument("--width", type=int, default=1200, help="width of the saved PNGs")
    parser.add_argument("--detector", default="variation", help="detector for the demo and the review")
    bottles = [REPO.parent / "shared" / "data" / "mvtec_ad" / "bottle", Path("/work/shared/data/mvtec_ad/bottle")]
    parser.add_argument("--bottle", type=Path, default=next((b for b in bottles if b.is_dir()), bottles[0]),
                        help="the MVTec AD bottle category for the review shots (else the demo part in MVTec layout)")
    parser.add_argument("--per-type", type=int, default=4, help="review: test images per defect type")
    parser.add_argument("--screens", default="1024x768,1920x1080",
                        help="window sizes for Inspect, the parameter page, the summary and the review report shots")
    parser.add_argument("--kiosk", action="store_true",
                        help="only Inspect, in the operator's full screen on a screen of --size (inspect_kiosk_<size>.png)")
    args = parser.parse_args()
    args.screen_sizes = [tuple(int(v) for v in s.split("x")) for s in args.screens.split(",") if s]
    sizes = [tuple(int(v) for v in args.size.split("x")), *args.screen_sizes]
    screen = f"{max(w for w, _ in sizes)}x{max(h for _, h in sizes)}"

    xvfb = qt_display(args.platform, args.size if args.kiosk else screen)
    home = Path(tempfile.mkdtemp(prefix="station-shots-"))
    try:
        return _shoot(args, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if xvfb is not None:
            xvfb.terminate()


def _shoot(args, home: Path) -> int:
    if args.detector.startswith("test-"):
        sys.path.insert(0, str(REPO / "tests"))
        from helpers_detector import register_test_detector

        register_test_detector()
    from PySide6.QtWidgets import QApplication

    from station.app.context import StationContext
    from station.app.paths import AppPaths
    from station.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])  # noqa: F841 - kept alive for the run

    wait = wait_until

    def pause(seconds: float) -> None:
        end = time.monotonic() + seconds
        wait(lambda: time.monotonic() > end, seconds + 1, "a pause")

    ctx = StationContext.load(AppPaths(home))
    ctx.settings.demo_detector = args.detector
    ctx.settings.source_uri = "synthetic://demo?fps=30&defect_rate=0.3"
    ctx.settings.recent_sources = [ctx.settings.source_uri, "synthetic://demo?fps=30&defect_rate=0"]
    window = MainWindow(ctx, kiosk=args.kiosk or None)
    w, h = (int(v) for v in args.size.split("x"))
    window.resize(w, h)
    if args.kiosk:
        window.show_station()
    else:
        window.show()
    shots: dict[str, int] = {}

    def at_sizes(name: str, widget=None, prepare=None) -> None:
        """``name_<w>x<h>.png`` of ``widget`` (the window) at each of ``--screens``, full size;
        ``prepare()`` runs once the widget has its size (e.g. a scroll)."""
        widget = widget or window
        for sw, sh in args.screen_sizes:
            widget.resize(sw, sh)
            pause(0.6)
            if prepare is not None:
                prepare()
                pause(0.3)
            image = widget.grab().toImage()
            shots[f"{name}_{sw}x{sh}"] = save_png(image, args.out / f"{name}_{sw}x{sh}.png", image.width())
        widget.resize(w, h)
        pause(0.3)

    # --- Inspect: wait for an NG part with its outline and heatmap on screen
    wait(lambda: window.first_verdict_s is not None, 120, "the first verdict")
    pause(4.0)
    panel = window.inspect
    wait(lambda: ctx.counters.snapshot().total > 60 and panel.ng_strip.count() >= 6, 60, "NG parts in the strip")

    def showing_ng() -> bool:
        latest = panel.session.latest() if panel.session else None
        return (panel.verdict.verdict == "NG" and latest is not None and latest.sequence == panel._shown_seq
                and len(latest.result.regions) >= 1 and latest.result.regions[0].area_px > 80)

    if args.kiosk:  # the whole screen, at its own size
        wait(showing_ng, 60, "an NG part on screen")
        panel.display_timer.stop()
        pause(0.3)
        shots[f"inspect_kiosk_{args.size}"] = save_png(window.grab().toImage(),
                                                       args.out / f"inspect_kiosk_{args.size}.png", w)
        window.quit_station()
        return _summary(shots, args)
    wait(showing_ng, 60, "an NG part on screen")
    panel.display_timer.stop()  # hold the NG frame for the picture; the numbers keep counting
    pause(0.3)
    shots["inspect"] = save_png(window.grab().toImage(), args.out / "inspect.png", args.width)  # the alarm: NG
    at_sizes("inspect")  # the same frame held at each screen size
    panel.display_timer.start()

    def showing_ok() -> bool:  # normal running: an OK part, tile and image of the same frame
        return panel.shown is not None and panel.shown.verdict == "OK" and panel.verdict.verdict == "OK"

    wait(showing_ok, 60, "an OK part on screen")
    panel.display_timer.stop()
    pause(0.3)
    shots["inspect_ok"] = save_png(window.grab().toImage(), args.out / "inspect_ok.png", args.width)
    at_sizes("inspect_ok")
    panel.display_timer.start()

    # --- Teach: the wizard's threshold page with a live preview
    window.gate.unlock_with("screenshot-pw")
    window.tabs.setCurrentWidget(window.teach_stack)
    wizard = window.teach.open_wizard()
    wizard.part_page.name.setText("washer-b")
    wizard.part_page.picker.set_uri("synthetic://demo?fps=30&defect_rate=0")
    wizard.part_page.pixel_size.setValue(0.2)
    wizard.next()
    wizard.samples_page.target.setValue(40)
    wizard.samples_page.start_capture()
    wait(lambda: not wizard.samples_page.busy and len(wizard.session.images) >= 40, 60, "the captured samples")
    wizard.next()
    wizard.detector_page.select_kind(args.detector)
    wait(lambda: wizard.detector_page.isComplete(), 120, "the detector to load")
    # the region of interest around the washer (the demo image is 256 px): the belt's edges stay out
    roi = wizard.detector_page.roi_editor
    roi.rect.setSize((224, 252), finish=False)
    roi.rect.setPos((16, 2))  # pose jitter included; a finished move (as a mouse release): the session takes it
    pause(0.3)
    shots["teach_roi"] = save_png(window.grab().toImage(), args.out / "teach_roi.png", args.width)
    at_sizes("teach_params")
    wizard.next()
    wait(lambda: wizard.train_page.isComplete(), 300, "training")
    wizard.next()
    thr = wizard.threshold_page
    wait(lambda: thr.panel.estimate is not None, 30, "the threshold")
    thr.panel.set_area_px(60.0)
    wait(lambda: thr.panel.estimate is not None and thr.panel.estimate.min_defect_area_px == 60.0, 30, "re-estimation")
    thr.preview_source.setCurrentText("synthetic://demo?fps=30&defect_rate=0.5")
    thr.start_preview()
    wait(lambda: thr.preview_verdict.verdict == "NG", 60, "an NG preview")
    thr.timer.stop()
    pause(0.3)
    shots["teach"] = save_png(window.grab().toImage(), args.out / "teach.png", args.width)
    wizard.next()  # the summary of what Finish would save
    pause(0.3)
    at_sizes("teach_summary")
    wizard.reject()

    # --- Review: an MVTec category scored, a defective image selected
    window.tabs.setCurrentWidget(window.review_stack)
    review = window.review
    data = args.bottle if (args.bottle / "train" / "good").is_dir() else None
    if data is None:
        from station.acquisition.synthetic import export_mvtec

        data = export_mvtec(home / "demo-mvtec", n_train=40, n_test_good=8, n_per_defect=4)
    recipe = _teach_category(data, args.detector, ctx)
    review.fill_recipes()
    review.set_request(data, recipe=recipe, per_type=args.per_type)
    review.score()
    wait(lambda: review.outcome is not None, 600, "review scoring")
    from PySide6.QtCore import Qt

    review.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    records = review.outcome.result.records
    for row in range(review.proxy.rowCount()):
        rec = records[review.proxy.index(row, 0).data(Qt.ItemDataRole.UserRole)]
        if rec.label != "good" and rec.verdict == "NG" and rec.overlaps:
            review.table.selectRow(row)
            break
    review.bottom_tabs.setCurrentIndex(0)
    pause(0.5)
    shots["review"] = save_png(window.grab().toImage(), args.out / "review.png", args.width)
    review.bottom_tabs.setCurrentIndex(1)
    pause(0.5)
    shots["review_curves"] = save_png(window.grab().toImage(), args.out / "review_curves.png", args.width)
    review.bottom_tabs.setCurrentIndex(0)
    at_sizes("review")
    # the readable report, exported as the Export button does, shown as Qt's rich-text engine renders it
    # (a browser lays the figures out side by side)
    job = review.export(home / "report")
    wait(lambda: job.outcome is not None, 300, "the report export")
    from PySide6.QtCore import QUrl
    from PySide6.QtWidgets import QTextBrowser

    browser = QTextBrowser()
    browser.setWindowTitle("report.html")
    browser.setSearchPaths([str(home / "report")])
    browser.setSource(QUrl.fromLocalFile(str(home / "report" / "report.html")))
    browser.show()
    at_sizes("review_report", browser, lambda: browser.verticalScrollBar().setValue(0))
    at_sizes("review_report_misses", browser, lambda: browser.scrollToAnchor("misses"))
    report_bytes = sum(f.stat().st_size for f in (home / "report").rglob("*") if f.is_file())
    print(f"review report: {report_bytes / 1e6:.1f} MB for {len(review.outcome.result.records)} images "
          f"(raw maps not included)")
    browser.close()

    window.close()
    print(f"first verdict {window.first_verdict_s:.1f} s after launch (fresh home: demo taught first)")
    return _summary(shots, args)


def _summary(shots: dict[str, int], args) -> int:
    for name, size in shots.items():
        print(f"{args.out / (name + '.png')}: {size / 1024:.0f} KB")
    return 0


def _teach_category(data: Path, kind: str, ctx) -> str:
    """A recipe for ``data`` (a quick one: at most 60 training images), saved under the models dir."""
    from station.app.review import teach_from_category
    from station.core.datasets import MVTecCategory

    return str(teach_from_category(MVTecCategory(data), kind, ctx.models_dir, max_train=60, audit=ctx.audit))


if __name__ == "__main__":
    sys.exit(main())
