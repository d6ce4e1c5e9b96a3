"""``station selftest``: does this installation work? One check per part of the station, pass or fail.

Meant for the person who installs a line PC: run it after installing (the installer does), read one
line per check, and the exit status says whether every required check passed (0) or not (1). It
runs from the source tree and from the built bundle alike, and proves the pieces a bundle can miss:

- ``python``      -- version, platform, frozen bundle or source tree (information)
- ``qt``          -- a QApplication on the offscreen platform draws a widget; the window's modules import;
                     the ``xcb`` (desktop) and ``offscreen`` platform plugins are present
- ``qt-xcb``      -- the desktop plugin loads with this PC's system libraries (a warning, not required:
                     a server without a desktop lacks them; the message names the missing library)
- ``synthetic``   -- the demo source opens and delivers frames
- ``detector:*``  -- each installed detector is taught on a few synthetic good frames, saved as a recipe,
                     loaded back and inspects a good and a defective frame. PatchCore uses pretrained
                     weights from the weights store when they are there; otherwise a RANDOM-initialised
                     resnet18 that checks the machinery only and says so
- ``camera``      -- harvesters opens the simulated ``viky.cti`` GenTL producer, lists its device and
                     grabs a frame (the GenApi libraries work); cameras of installed producers are listed
- ``onnxruntime`` -- the runtime's providers, and a one-node graph runs on the CPU provider
- ``device``      -- the compute device torch will use (GPU name, or the CPU); a small computation on it
- ``weights``     -- what the backbone weights store holds (information)
- ``recipe:*``    -- with ``--recipe``: that recipe loads, its weights are present, and it inspects an image
- ``golden:*``    -- with ``--recipe``: the recipe's golden parts (known OK/NG images) get their expected
                     verdicts at its threshold (skipped for a recipe without any; audited)
- ``line:*``      -- each configured line output (``lineio.json``): the MQTT broker accepts the log-in, the
                     central PostgreSQL answers and has (or gets) the schema, the OPC UA / Modbus ports can be
                     served; ``line:backlog`` warns when results wait undelivered (or were skipped)

Checks marked optional report ``warn`` instead of failing. Qt is loaded by name through importlib
so the headless CLI package keeps no import of the GUI toolkit (the import-linter contract).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import station

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
DETECTOR_FRAMES = 16  # frames grabbed from the synthetic source: good ones teach, the rest are inspected
FRAME_SIDE = 128  # small frames keep the whole self-test well under a minute on two cores


@dataclass
class CheckResult:
    name: str
    status: str  # pass / fail / warn / skip
    detail: str
    required: bool = True
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.required and self.status == FAIL


class CheckFailed(Exception):
    """A check found a problem; the message says what and, where it can, what to do."""


class Skipped(Exception):
    """A check does not apply to this installation (e.g. torch is not in this build)."""


# --- command line ----------------------------------------------------------------------------------------
def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "selftest", help="check this installation: Qt, sources, detectors, camera stack, ONNX Runtime, device",
        description="Check that this installation works: Qt (offscreen), the synthetic source, one teach and "
                    "inspection with each installed detector, the GenICam camera stack (simulated viky camera), "
                    "ONNX Runtime and the compute device. Exit status 0 when every required check passes.")
    p.add_argument("--json", action="store_true", help="print the results as JSON (on stdout)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:n] for the torch detectors (default auto)")
    p.add_argument("--require-gpu", action="store_true", help="fail unless a CUDA GPU is used")
    p.add_argument("--require-pretrained", action="store_true",
                   help="fail unless the weights store holds pretrained PatchCore backbone weights")
    p.add_argument("--recipe", action="append", default=[], type=Path, metavar="DIR",
                   help="also check that this recipe loads (weights present) and inspects; repeatable")
    p.add_argument("--skip", action="append", default=[], metavar="CHECK",
                   help="leave out a check (qt, synthetic, detectors, camera, onnxruntime, device, golden, line); "
                        "repeatable")
    from station.app.paths import AppPaths

    home = AppPaths.default()
    p.add_argument("--line-config", type=Path, default=home.home / "lineio.json",
                   help="line I/O settings whose outputs are checked (default: %(default)s)")
    p.add_argument("--db", type=Path, default=home.results_db, help="results log for the backlog check")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    results = run_checks(device=args.device, require_gpu=args.require_gpu,
                         require_pretrained=args.require_pretrained, recipes=args.recipe,
                         skip=set(args.skip), echo=None if args.json else _print_result,
                         line_config=args.line_config, results_db=args.db)
    ok = not any(r.failed for r in results)
    seconds = time.perf_counter() - t0
    if args.json:
        json.dump({"station_version": station.__version__, "ok": ok, "seconds": round(seconds, 2),
                   "checks": [asdict(r) for r in results]}, sys.stdout, indent=2, default=str)
        print()
    else:
        counts = {s: sum(r.status == s for r in results) for s in (PASS, FAIL, WARN, SKIP)}
        summary = ", ".join(f"{n} {label}" for label, n in
                            (("passed", counts[PASS]), ("failed", counts[FAIL]), ("warnings", counts[WARN]),
                             ("skipped", counts[SKIP])) if n)
        print(f"selftest {'PASSED' if ok else 'FAILED'}: {summary} in {seconds:.1f} s")
    return 0 if ok else 1


def _print_result(r: CheckResult) -> None:
    tag = {PASS: "PASS", FAIL: "FAIL" if r.required else "fail", WARN: "WARN", SKIP: "skip"}[r.status]
    lines = r.detail.splitlines() or [""]
    print(f"  {tag:<4}  {r.name:<22} {lines[0]}  ({r.seconds:.1f} s)", flush=True)
    for line in lines[1:]:
        print(f"        {'':<22} {line}", flush=True)


# --- the checks ------------------------------------------------------------------------------------------
def run_checks(device: str = "auto", require_gpu: bool = False, require_pretrained: bool = False,
               recipes: list[Path] | tuple[Path, ...] = (), skip: set[str] | None = None,
               echo: Callable[[CheckResult], None] | None = None, line_config: Path | None = None,
               results_db: Path | None = None) -> list[CheckResult]:
    """Run every check (in a sensible order) and return their results; ``echo`` sees each as it ends."""
    skip = skip or set()
    results: list[CheckResult] = []

    def check(name: str, fn: Callable[[], tuple[str, dict[str, Any]]], required: bool = True,
              group: str | None = None) -> CheckResult:
        if (group or name) in skip or name in skip:
            result = CheckResult(name, SKIP, "left out (--skip)", required)
        else:
            t = time.perf_counter()
            try:
                detail, data = fn()
                status = PASS
            except Skipped as exc:
                detail, data, status = str(exc), {}, SKIP
            except CheckFailed as exc:
                detail, data, status = str(exc), {}, FAIL if required else WARN
            except Exception as exc:  # a check must report, never crash the self-test
                detail = f"{type(exc).__name__}: {exc}"
                data = {"traceback": traceback.format_exc()}
                status = FAIL if required else WARN
            result = CheckResult(name, status, detail, required, round(time.perf_counter() - t, 2), data)
        results.append(result)
        if echo is not None:
            echo(result)
        return result

    from station.cli.selftest_detectors import (  # they import this module's names
        check_detector,
        check_device,
        check_golden,
        check_recipe,
        check_weights,
    )

    if echo is not None:
        print(f"station {station.__version__} selftest", flush=True)
    check("python", _check_python)
    qt = _QtCheck()
    check("qt", qt.run, group="qt")
    check("qt-xcb", qt.xcb_loads, required=False, group="qt")
    frames: list[Any] = []
    check("synthetic", lambda: _check_synthetic(frames))
    check("device", lambda: check_device(device, require_gpu))
    from station.detectors.base import available_detectors

    for info in available_detectors():
        check(f"detector:{info.kind}", lambda kind=info.kind: check_detector(kind, frames, device),
              group="detectors")
    check("weights", lambda: check_weights(require_pretrained), required=require_pretrained)
    check("camera", _check_camera)
    check("cameras-installed", _check_installed_cameras, required=False, group="camera")
    check("onnxruntime", _check_onnxruntime)
    for path in recipes:
        check(f"recipe:{path.name}", lambda p=path: check_recipe(p, device))
        check(f"golden:{path.name}", lambda p=path: check_golden(p, device), group="golden")
    if line_config is not None:
        from station.cli.selftest_lineio import line_checks

        for name, fn, required in line_checks(line_config, results_db or Path(), CheckFailed):
            check(name, fn, required=required, group="line")
    return results


def _check_python() -> tuple[str, dict[str, Any]]:
    frozen = bool(getattr(sys, "frozen", False))
    where = f"bundle {Path(sys.executable).resolve().parent}" if frozen else f"source {Path(station.__file__).parent}"
    data = {"station": station.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "machine": platform.machine(), "frozen": frozen, "executable": sys.executable}
    return (f"station {station.__version__}, Python {platform.python_version()} on {platform.system()} "
            f"{platform.machine()}, {where}"), data


class _QtCheck:
    """The Qt application on the offscreen platform, then the desktop (xcb) plugin on its own."""

    def __init__(self) -> None:
        self.plugins_dir: Path | None = None

    def run(self) -> tuple[str, dict[str, Any]]:
        try:
            qtcore = importlib.import_module("PySide6.QtCore")
            qtwidgets = importlib.import_module("PySide6.QtWidgets")
        except ImportError as exc:
            raise CheckFailed(f"PySide6 does not load ({exc}); the window cannot open") from exc
        app = qtwidgets.QApplication.instance()  # one already running (a test) keeps its platform
        if app is None:
            os.environ["QT_QPA_PLATFORM"] = "offscreen"  # no screen needed, the same on every PC
            app = qtwidgets.QApplication([sys.argv[0]])
        widget = qtwidgets.QLabel("station selftest")
        widget.resize(240, 60)
        widget.show()
        app.processEvents()
        image = widget.grab().toImage()
        widget.close()
        widget.deleteLater()
        app.processEvents()
        if image.width() < 1 or image.height() < 1:
            raise CheckFailed("Qt drew an empty widget")
        for module in ("pyqtgraph", "station.gui.main_window"):  # the window's own code, complete in a bundle
            importlib.import_module(module)
        self.plugins_dir = Path(qtcore.QLibraryInfo.path(qtcore.QLibraryInfo.LibraryPath.PluginsPath))
        platforms = self.plugins_dir / "platforms"
        present = {name: bool(_plugin_files(platforms, name)) for name in ("xcb", "offscreen", "windows")}
        wanted = ["windows", "offscreen"] if sys.platform == "win32" else ["xcb", "offscreen"]
        missing = [name for name in wanted if not present[name]]
        if missing:
            raise CheckFailed(f"Qt platform plugin(s) {', '.join(missing)} missing from {platforms}")
        data = {"qt": qtcore.qVersion(), "platform": app.platformName(), "plugins": str(self.plugins_dir),
                "platform_plugins": sorted(n for n, ok in present.items() if ok)}
        return (f"Qt {qtcore.qVersion()} ({app.platformName()}): widget drawn {image.width()}x{image.height()}, "
                f"window modules import, platform plugins {' + '.join(wanted)} present"), data

    def xcb_loads(self) -> tuple[str, dict[str, Any]]:
        if sys.platform != "linux":
            raise Skipped("the xcb plugin is for Linux desktops")
        if self.plugins_dir is None:
            raise Skipped("Qt did not load")
        files = _plugin_files(self.plugins_dir / "platforms", "xcb")
        if not files:
            raise CheckFailed("the xcb platform plugin is missing: the window cannot open on a desktop")
        qtcore = importlib.import_module("PySide6.QtCore")
        loader = qtcore.QPluginLoader(str(files[0]))
        if not loader.load():  # loads the library and its system dependencies; opens no display
            raise CheckFailed(f"the desktop plugin does not load: {loader.errorString()}\n"
                              "install the missing system library (Debian/Ubuntu: sudo apt-get install "
                              "libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0)")
        loader.unload()
        display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        return (f"xcb plugin loads with this PC's libraries ({'display ' + display if display else 'no display now'})",
                {"plugin": str(files[0])})


def _plugin_files(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f"*q{name}.*")) if folder.is_dir() else []


def _check_synthetic(frames: list[Any]) -> tuple[str, dict[str, Any]]:
    from station.acquisition.base import open_source

    uri = f"synthetic://demo?fps=0&size={FRAME_SIDE}&defect_rate=0.3&seed=7"
    source = open_source(uri)
    source.open()
    source.start()
    t = time.perf_counter()
    try:
        for _ in range(DETECTOR_FRAMES):
            frame = source.next_frame(timeout=2.0)
            if frame is None:
                raise CheckFailed(f"{uri} delivered no frame within 2 s")
            frames.append(frame)
    finally:
        source.stop()
        source.close()
    rate = len(frames) / max(1e-6, time.perf_counter() - t)
    shapes = {f.image.shape for f in frames}
    if shapes != {(FRAME_SIDE, FRAME_SIDE, 3)} or any(f.image.dtype.name != "uint8" for f in frames):
        raise CheckFailed(f"unexpected frames: shapes {sorted(shapes)}")
    good = sum(f.meta.get("label") == "good" for f in frames)
    return (f"{len(frames)} frames {FRAME_SIDE}x{FRAME_SIDE} RGB8 ({good} good, {len(frames) - good} defective), "
            f"{rate:.0f} frames/s"), {"uri": uri, "frames": len(frames), "fps": round(rate, 1)}


def _check_camera() -> tuple[str, dict[str, Any]]:
    from station.acquisition.genicam import GenICamSource
    from station.acquisition.gentl import list_devices, simulated_producer

    importlib.import_module("harvesters.core")
    cti = simulated_producer()
    if cti is None:
        raise CheckFailed("the simulated GenTL producer viky.cti is missing from the genicam package")
    files, devices = list_devices([cti])
    if not devices:
        raise CheckFailed(f"harvesters loaded {cti.name} but it lists no device")
    dev = devices[0]
    source = GenICamSource(dev.serial or dev.id, cti=files)
    source.open()
    try:
        source.start()
        frame = None
        deadline = time.monotonic() + 5.0
        while frame is None and time.monotonic() < deadline:
            frame = source.next_frame(timeout=1.0)
        source.stop()
    finally:
        source.close()
    if frame is None:
        raise CheckFailed(f"the simulated camera {dev.display_name} delivered no frame within 5 s")
    return (f"harvesters + {cti.name}: {len(devices)} device(s), {dev.display_name} grabbed a "
            f"{frame.image.shape[1]}x{frame.image.shape[0]} {frame.pixel_format} frame"), \
        {"producer": str(cti), "devices": [d.display_name for d in devices]}


def _check_installed_cameras() -> tuple[str, dict[str, Any]]:
    from station.acquisition.gentl import ENV_PRODUCER_PATH, list_devices, producer_files

    files = producer_files(fallback=False)
    if not files:
        raise Skipped(f"no camera vendor's GenTL producer installed ({ENV_PRODUCER_PATH} names none)")
    _, devices = list_devices(files)
    names = [d.display_name for d in devices]
    if not names:
        raise CheckFailed(f"producers {', '.join(f.name for f in files)} list no camera: check power, cable, "
                          f"network settings")
    return f"{len(names)} camera(s): {', '.join(names)}", {"producers": [str(f) for f in files], "devices": names}


def _check_onnxruntime() -> tuple[str, dict[str, Any]]:
    import numpy as np

    try:
        ort = importlib.import_module("onnxruntime")
    except ImportError as exc:
        raise CheckFailed(f"ONNX Runtime does not load ({exc})") from exc
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"])], "selftest",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2]) for n in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # old enough for every runtime the station supports
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run(None, {"a": np.array([1, 2], np.float32), "b": np.array([3, 4], np.float32)})[0]
    if out.tolist() != [4.0, 6.0]:
        raise CheckFailed(f"a one-node graph computed {out.tolist()} instead of [4, 6]")
    available = ort.get_available_providers()
    try:
        from station.core.devices import onnx_providers

        used = onnx_providers("auto")
    except ImportError:
        used = ["CPUExecutionProvider"]
    return (f"ONNX Runtime {ort.__version__}: graph runs on the CPU provider; station uses {', '.join(used)} "
            f"(available: {', '.join(available)})"), {"version": ort.__version__, "available": available,
                                                        "used": used}
