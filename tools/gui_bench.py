"""Benchmark of the station window against the acceptance criteria of issue 6 (offscreen Qt).

1. start-up: ``station gui`` in a fresh home (the demo part is taught first) and again (the recipe is
   there): wall time from launching the process to the first verdict on screen, then SIGTERM and the
   time the process takes to exit;
2. display: the demo source at 30 frames/s inspected with the demo recipe; frames shown per second,
   frames inspected per second, latency p50/p95, dropped and failed frames;
3. threshold control: the demo recipe's 20 validation maps; time from moving the minimum-area control
   to the new threshold being shown, over a sweep of areas;
4. closing mid-training: SIGTERM while the demo part is being taught on first start; exit time and
   whether the models folder holds only complete recipes.

    python tools/gui_bench.py [--detector variation] [--seconds 20] [--json out.json]

The machine's load (1-minute load average, CPU count) is printed with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load() -> str:
    try:
        a, b, c = os.getloadavg()
        return f"load average {a:.2f} {b:.2f} {c:.2f} on {os.cpu_count()} CPUs"
    except OSError:
        return "load average unknown"


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", STATION_HOME=str(home))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests"), env.get("PYTHONPATH", "")])
    return env


def _launch(home: Path, detector: str) -> subprocess.Popen:
    code = ("import sys\n"
            f"if {detector!r}.startswith('test-'):\n"
            "    from helpers_detector import register_test_detector; register_test_detector()\n"
            "from station.cli.main import main\n"
            f"sys.exit(main(['-v', 'gui', '--demo-detector', {detector!r}]))\n")
    return subprocess.Popen([sys.executable, "-c", code], env=_env(home), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)


def _wait_line(proc: subprocess.Popen, needle: str, timeout: float) -> tuple[float | None, list[str]]:
    """Read the process's output on a thread until a line holds ``needle``; returns when it came."""
    import queue
    import threading

    if not hasattr(proc, "_lines"):
        proc._lines = queue.Queue()  # type: ignore[attr-defined]

        def pump() -> None:
            for line in proc.stdout:
                proc._lines.put((time.monotonic(), line.rstrip("\n")))  # type: ignore[attr-defined]

        threading.Thread(target=pump, daemon=True).start()
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            t, line = proc._lines.get(timeout=0.1)  # type: ignore[attr-defined]
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        lines.append(line)
        if needle in line:
            return t, lines
    return None, lines


def _terminate(proc: subprocess.Popen) -> float:
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return float("inf")
    return time.monotonic() - t0


def bench_startup(detector: str) -> dict:
    out = {}
    home = Path(tempfile.mkdtemp(prefix="gui-bench-"))
    for run in ("first start (demo taught)", "second start"):
        t0 = time.monotonic()
        proc = _launch(home, detector)
        try:
            t_first, lines = _wait_line(proc, "first verdict shown", 180)
            if t_first is None:
                raise RuntimeError("no verdict:\n" + "\n".join(lines[-30:]))
            time.sleep(2.0)  # inspecting
            exit_s = _terminate(proc)
        finally:
            if proc.poll() is None:  # never leave a window running behind a failed measurement
                proc.kill()
                proc.wait()
        out[run] = {"launch_to_first_verdict_s": round(t_first - t0, 2), "exit_after_sigterm_s": round(exit_s, 2),
                    "exit_code": proc.returncode}
    return out


def bench_close_mid_training(detector: str) -> dict:
    home = Path(tempfile.mkdtemp(prefix="gui-bench-"))
    proc = _launch(home, detector)
    try:
        t_teach, lines = _wait_line(proc, "teaching the demo part", 60)
        if t_teach is None:
            raise RuntimeError("demo teaching did not start:\n" + "\n".join(lines[-30:]))
        time.sleep(0.3)
        exit_s = _terminate(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    from station.core.recipe import load_recipe, versions

    demo = home / "models" / "demo"
    complete = []
    for _, folder in versions(demo):
        load_recipe(folder)  # raises if corrupt
        complete.append(folder.name)
    leftovers = [p.name for p in demo.glob(".saving-*")] if demo.exists() else []
    return {"exit_after_sigterm_s": round(exit_s, 2), "exit_code": proc.returncode,
            "recipe_versions_left": complete, "temporary_folders_left": leftovers}


def bench_in_process(detector: str, seconds: float) -> dict:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    if detector.startswith("test-"):
        sys.path.insert(0, str(REPO / "tests"))
        from helpers_detector import register_test_detector

        register_test_detector()
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from station.app.context import StationContext
    from station.app.paths import AppPaths
    from station.core.recipe import load_recipe
    from station.core.teach import validation_estimator
    from station.gui.main_window import MainWindow
    from station.gui.threshold_panel import ThresholdPanel

    app = QApplication.instance() or QApplication([])

    def spin(cond, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                return False
            loop = QEventLoop()
            QTimer.singleShot(5, loop.quit)
            loop.exec()
        return True

    home = Path(tempfile.mkdtemp(prefix="gui-bench-"))
    ctx = StationContext.load(AppPaths(home))
    ctx.settings.demo_detector = detector
    ctx.settings.source_uri = "synthetic://demo?fps=30&defect_rate=0.2"
    window = MainWindow(ctx)
    window.resize(1280, 820)
    window.show()
    if not spin(lambda: window.first_verdict_s is not None, 180):
        raise RuntimeError(f"no verdict; problems: {window.errors.messages}")
    spin(lambda: False, 3.0)  # warm up
    panel = window.inspect
    shown0, cam0, t0 = panel.frames_shown, panel.camera_frames_shown, time.monotonic()
    snap0 = ctx.counters.snapshot()
    load_during = load()
    spin(lambda: False, seconds)
    elapsed = time.monotonic() - t0
    snap = ctx.counters.snapshot()
    stats = panel.session.pipeline.stats()
    display = {
        "source_fps": 30,
        "seconds": round(elapsed, 1),
        "camera_view_fps": round((panel.camera_frames_shown - cam0) / elapsed, 1),
        "results_shown_fps": round((panel.frames_shown - shown0) / elapsed, 1),
        "inspected_fps": round((snap.total - snap0.total) / elapsed, 1),
        "latency_p50_ms": round(snap.latency_p50_ms, 1),
        "latency_p95_ms": round(snap.latency_p95_ms, 1),
        "inspect_p50_ms": round(stats.inspect_p50_ms, 1) if stats.inspect_p50_ms else None,
        "dropped": snap.dropped - snap0.dropped,
        "failed": snap.failed,
        "machine": load_during,
    }
    t_close = time.monotonic()
    window.close()
    close_s = time.monotonic() - t_close

    recipe = load_recipe(ctx.models_dir / "demo")
    estimator = validation_estimator(recipe)
    shape = tuple(recipe.validation["image_shape"])
    thr = ThresholdPanel()
    thr.resize(1000, 500)
    thr.show()
    thr.set_validation(estimator.estimate, recipe.validation_maps(), shape, recipe.min_defect_area_px,
                       pixel_size_mm=recipe.pixel_size_mm)
    spin(lambda: thr.estimate is not None, 10)
    thr.response_ms.clear()
    areas = [round(5 * 1.15 ** k, 1) for k in range(30)]
    for area in areas:  # one step at a time, as a user drags: wait for each answer
        request = thr.set_area_px(area)
        spin(lambda r=request, a=area: thr.estimate is not None and thr.estimate.min_defect_area_px == a
             and thr.worker.latest_id == r, 10)
        app.processEvents()
    times = sorted(thr.response_ms)
    threshold = {
        "validation_images": len(estimator),
        "map_shape": list(recipe.validation_maps()[0].shape),
        "steps": len(times),
        "response_p50_ms": round(statistics.median(times), 1),
        "response_p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
        "response_max_ms": round(times[-1], 1),
        "machine": load(),
    }
    thr.shutdown()
    return {"display": display, "close_mid_inspection_s": round(close_s, 2), "threshold_control": threshold,
            "detector": recipe.detector_kind}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detector", default="variation")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to measure the display rate")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--skip-startup", action="store_true")
    args = parser.parse_args()
    results: dict = {"machine_before": load()}
    if not args.skip_startup:
        results["startup"] = bench_startup(args.detector)
        results["close_mid_training"] = bench_close_mid_training(args.detector)
    results.update(bench_in_process(args.detector, args.seconds))
    results["machine_after"] = load()
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
