"""Memory of the station window over "teach + review + inspection" (issue 13 item 9), in one process,
driven as an engineer would drive it: the real window (offscreen Qt) in a fresh home, inspecting the
demo camera all along; the teach-in wizard imports a folder of good images (bottle's ``train/good``:
209 images of 900x900), trains, sets the threshold and saves; Review scores the test images with the
recipe just taught -- twice, as an engineer re-runs it -- and then ``--frames`` more frames are
inspected live. The process RSS is printed after each phase. Exit 1 if the RSS at the end exceeds
``--ceiling-mb`` (the benchmark's memory ceiling; unit tests carry no RSS thresholds).

    python tools/window_memory.py [--data .../mvtec_ad/bottle] [--frames 3000] [--ceiling-mb 800] [--json out.json]

Without the bottle data the demo part exported in MVTec layout stands in (smaller images, so smaller
numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BOTTLE = [REPO.parent / "shared" / "data" / "mvtec_ad" / "bottle", Path("/work/shared/data/mvtec_ad/bottle")]


def rss_mb() -> float:
    from station.bench.measure import current_rss_bytes

    rss = current_rss_bytes()
    return float("nan") if rss is None else rss / 2**20


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=next((c for c in BOTTLE if c.is_dir()), BOTTLE[0]))
    p.add_argument("--detector", default="variation")
    p.add_argument("--frames", type=int, default=3000, help="frames inspected live after the reviews")
    p.add_argument("--ceiling-mb", type=float, default=800.0)
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    home = Path(tempfile.mkdtemp(prefix="window-memory-"))
    try:
        return _run(args, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _run(args, home: Path) -> int:
    from PySide6.QtWidgets import QApplication

    from station.app.context import StationContext
    from station.app.paths import AppPaths
    from station.gui.gc_guard import GarbageCollector
    from station.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    collector = GarbageCollector(app)  # as station.gui.app runs the window  # noqa: F841
    phases: dict[str, float] = {"imports": rss_mb()}
    t0 = time.monotonic()

    from screenshots import wait_until as wait  # one event-loop wait for the window tools

    def settle(name: str, seconds: float = 3.0) -> None:
        """Let the window run (its collector's timer included), then note the RSS."""
        end = time.monotonic() + seconds
        wait(lambda: time.monotonic() > end, seconds + 1, "a pause")
        phases[name] = rss_mb()
        print(f"{time.monotonic() - t0:7.1f} s  {name:<48} {phases[name]:8.1f} MB", flush=True)

    data = args.data
    if not (data / "train" / "good").is_dir():
        from station.acquisition.synthetic import export_mvtec

        data = export_mvtec(home / "demo-mvtec", n_train=60, n_test_good=20, n_per_defect=10)
    ctx = StationContext.load(AppPaths(home / "station"))
    ctx.settings.demo_detector = args.detector
    ctx.settings.source_uri = "synthetic://demo?fps=30&defect_rate=0.3"
    window = MainWindow(ctx)
    window.resize(1280, 800)
    window.show()
    wait(lambda: window.first_verdict_s is not None, 300, "the first verdict")
    settle("window inspecting the demo")

    def inspected() -> int:
        s = window.inspect.session
        st = s.stats() if s is not None else None
        return st.inspected if st else 0

    # --- teach in the wizard: import the folder, train, threshold, save (not used now: the demo goes on)
    recipe, n_samples = _teach_in_wizard(window, data, args.detector, wait, settle)
    settle("wizard closed (recipe saved)")

    # --- review the test images with it, twice (the second run replaces the first)
    window.tabs.setCurrentWidget(window.review_stack)
    review = window.review
    review.fill_recipes()
    n_images = 0
    for run in (1, 2):
        review.set_request(data, recipe=recipe, per_type=0)
        review.score()
        wait(lambda: review.job.outcome is not None and review.outcome is not None, 3600, "the review")
        n_images = len(review.outcome.result.records)
        review.table.selectRow(0)
        settle(f"review {run} shown ({n_images} images)")

    # --- back to Inspect for --frames more frames
    window.tabs.setCurrentWidget(window.inspect)
    start = inspected()
    peak = 0.0

    def counted() -> bool:
        nonlocal peak
        peak = max(peak, rss_mb())
        return inspected() >= start + args.frames

    wait(counted, 3600, f"{args.frames} frames inspected")
    settle(f"after {args.frames} more frames inspected")
    stats = window.inspect.session.stats()
    window.close()
    app.processEvents()
    out = {"data": str(data), "detector": args.detector, "samples": n_samples, "review_images": n_images,
           "frames": args.frames, "inspected": stats.inspected, "dropped": stats.dropped, "failed": stats.failed,
           "rss_mb": {k: round(v, 1) for k, v in phases.items()}, "last_phase_peak_mb": round(peak, 1),
           "ceiling_mb": args.ceiling_mb, "wall_s": round(time.monotonic() - t0, 1),
           "load": " ".join(f"{v:.2f}" for v in os.getloadavg()), "cpus": os.cpu_count()}
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    end = list(phases.values())[-1]
    if end > args.ceiling_mb:
        print(f"FAILED: RSS {end:.0f} MB at the end, over the ceiling of {args.ceiling_mb:.0f} MB", file=sys.stderr)
        return 1
    return 0


def _teach_in_wizard(window, data: Path, detector: str, wait, settle) -> tuple[str, int]:
    """The wizard from the part's name to Finish, as an engineer clicks through it; returns the
    recipe saved and the number of samples. Nothing of the wizard is kept here once it returns."""
    window.gate.unlock_with("memory-bench")
    window.tabs.setCurrentWidget(window.teach_stack)
    wizard = window.teach.open_wizard()
    wizard.part_page.name.setText("mem-part")
    wizard.next()
    job = wizard.samples_page.import_folder(data / "train" / "good")
    wait(lambda: job.outcome is not None and not wizard.samples_page.busy, 600, "the import")
    n_samples = len(wizard.session.images)
    settle(f"wizard: {n_samples} samples imported")
    wizard.next()
    wizard.detector_page.select_kind(detector)
    wait(lambda: wizard.detector_page.isComplete(), 120, "the detector page")
    wizard.next()
    wait(lambda: wizard.train_page.isComplete(), 1800, "training")
    wizard.next()
    wait(lambda: wizard.threshold_page.panel.estimate is not None, 120, "the threshold")
    settle("wizard: trained, threshold page")
    wizard.next()
    wizard.save_page.use_now.setChecked(False)
    saved: list[str] = []
    window.teach.recipe_saved.connect(lambda path, _now: saved.append(path))
    wizard.accept()
    wait(lambda: bool(saved), 60, "the recipe saved")
    return saved[0], n_samples


if __name__ == "__main__":
    sys.exit(main())
