"""The installer: build recipe files, the Linux install script, and (only with ``--run-installer``)
the real bundle build followed by the bundle's own self-test with no Python environment on PATH.

The fast tests install a stand-in bundle whose ``station`` executable runs this source tree, so the
install script's logic -- prefix, launcher, menu entry, weights imported through ``station weights
import`` (hash check and all), recipes placed and checked, uninstall -- is tested in CI in seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
INSTALLER = REPO / "installer"
INSTALL_SH = INSTALLER / "install_linux.sh"
BUILD_SH = INSTALLER / "build_linux.sh"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux install script")


# --- the build recipe's files ------------------------------------------------------------------------------
@pytest.mark.parametrize("script", [INSTALL_SH, BUILD_SH], ids=lambda p: p.name)
@linux_only
def test_shell_scripts_parse_and_are_executable(script):
    assert os.access(script, os.X_OK), f"{script} is not executable"
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and "Options:" in proc.stdout, proc.stdout + proc.stderr


def test_build_requirements_are_exact_pins_outside_the_runtime_lock():
    pins = [line.split(";")[0].strip() for line in (INSTALLER / "requirements-build.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert pins and all("==" in p for p in pins), pins
    assert any(p.lower().startswith("pyinstaller==6.") for p in pins)
    runtime = (REPO / "requirements.lock").read_text().lower()
    assert "pyinstaller" not in runtime


def test_spec_is_valid_python_and_keeps_the_needed_parts():
    spec = (INSTALLER / "station.spec").read_text()
    compile(spec, "station.spec", "exec")
    for needed in ('collect_submodules("station")', "viky", "genicam", "STATION_BUNDLE_TORCH", "station-gui"):
        assert needed in spec, needed
    compile((INSTALLER / "station_main.py").read_text(), "station_main.py", "exec")


def test_windows_recipe_is_complete():
    iss = (INSTALLER / "windows" / "station.iss").read_text()
    for needed in ("[Setup]", "[Files]", "[Icons]", "station-gui.exe", "station.ico", "weights import",
                   "selftest"):
        assert needed in iss, needed
    ps1 = (INSTALLER / "windows" / "build_windows.ps1").read_text()
    assert "requirements-build.txt" in ps1 and "station.spec" in ps1 and "ISCC" in ps1


def test_icon_and_desktop_entry():
    res = REPO / "resources"
    assert (res / "station.svg").read_text().lstrip().startswith("<?xml")
    png = (res / "station.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png[16:20], "big") == 256 and int.from_bytes(png[20:24], "big") == 256
    assert (res / "station.ico").read_bytes()[:4] == b"\x00\x00\x01\x00"
    entry = (res / "station.desktop").read_text().splitlines()
    assert entry[0] == "[Desktop Entry]"
    keys = dict(line.split("=", 1) for line in entry[1:] if "=" in line)
    assert keys["Type"] == "Application" and keys["Exec"] == "@EXEC@" and keys["Icon"] == "@ICON@"
    assert keys["Terminal"] == "false"
    validator = shutil.which("desktop-file-validate")
    if validator:
        filled = REPO / "build" / "station-validate.desktop"
        filled.parent.mkdir(exist_ok=True)
        filled.write_text("\n".join(entry).replace("@EXEC@", "/usr/local/bin/station")
                          .replace("@ICON@", "/opt/station/share/station.svg") + "\n")
        proc = subprocess.run([validator, str(filled)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


# --- the install script on a stand-in bundle -------------------------------------------------------------
@pytest.fixture
def fake_bundle(tmp_path) -> Path:
    """A bundle folder laid out like the built one whose ``station`` runs this source tree."""
    root = tmp_path / "bundle"
    (root / "station").mkdir(parents=True)
    exe = root / "station" / "station"
    exe.write_text(f"#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m station \"$@\"\n")
    exe.chmod(0o755)
    shutil.copy(INSTALL_SH, root / "install_linux.sh")
    shutil.copytree(REPO / "resources", root / "resources")
    return root


def install(bundle: Path, tmp: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("STATION_HOME", "GENICAM_GENTL64_PATH")}
    env["HOME"] = str(tmp / "user")  # nothing lands in the real home, whoever runs the test
    proc = subprocess.run(["bash", str(bundle / "install_linux.sh"), "--prefix", str(tmp / "opt"),
                           "--bin-dir", str(tmp / "bin"), "--apps-dir", str(tmp / "apps"), *args],
                          capture_output=True, text=True, timeout=600, env=env)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@linux_only
def test_install_creates_program_launcher_and_menu_entry(fake_bundle, tmp_path):
    proc = install(fake_bundle, tmp_path, "--home", str(tmp_path / "data"), "--no-selftest")
    assert (tmp_path / "opt" / "app" / "station").is_file()
    assert (tmp_path / "opt" / "share" / "station.svg").is_file()
    entry = (tmp_path / "apps" / "station.desktop").read_text()
    assert f"Exec={tmp_path / 'bin' / 'station'}" in entry and f"Icon={tmp_path / 'opt/share/station.svg'}" in entry
    launcher = tmp_path / "bin" / "station"
    assert os.access(launcher, os.X_OK) and "station-launcher" in launcher.read_text()
    out = subprocess.run([str(launcher), "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("station "), out.stdout + out.stderr
    assert "done:" in proc.stdout
    # the launcher points the station at the installation's data folder
    env = {k: v for k, v in os.environ.items() if k != "STATION_HOME"}  # as on a line PC: not set
    where = subprocess.run([str(launcher), "weights", "list"], capture_output=True, text=True, timeout=120, env=env)
    assert str(tmp_path / "data" / "weights") in where.stdout, where.stdout + where.stderr


@linux_only
def test_an_update_keeps_the_data_folder(fake_bundle, tmp_path):
    install(fake_bundle, tmp_path, "--home", str(tmp_path / "data"), "--no-selftest")
    proc = install(fake_bundle, tmp_path, "--no-selftest")  # the update forgets --home
    assert "keeping the station data folder" in proc.stdout
    assert f'STATION_HOME:-{tmp_path / "data"}' in (tmp_path / "bin" / "station").read_text()


@linux_only
def test_install_refuses_a_folder_without_the_program(tmp_path):
    root = tmp_path / "bundle"
    root.mkdir()
    shutil.copy(INSTALL_SH, root / "install_linux.sh")
    proc = install(root, tmp_path, "--no-selftest", check=False)
    assert proc.returncode == 2 and "station/station not found" in proc.stderr
    assert not (tmp_path / "opt" / "app").exists()


@linux_only
def test_offline_weights_go_through_the_station_import(fake_bundle, tmp_path):
    weights = tmp_path / "resnet18-random.pth"
    subprocess.run([sys.executable, "-m", "station", "weights", "random", str(weights), "--backbone", "resnet18"],
                   cwd=REPO, check=True, capture_output=True, timeout=300)
    home = tmp_path / "data"
    # not torchvision's published file: the station's import refuses it, and the installer says so
    proc = install(fake_bundle, tmp_path, "--home", str(home), "--weights", str(weights), "--no-selftest",
                   check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "not one of torchvision's published weight files" in proc.stderr
    assert "were not imported" in proc.stderr
    assert not list((home / "weights").glob("*.pth"))
    # accepted when the maintenance person says it is custom on purpose; stored under its hash
    install(fake_bundle, tmp_path, "--home", str(home), "--weights", str(weights), "--allow-custom-weights",
            "--no-selftest")
    stored = list((home / "weights").glob("custom-resnet18-*.pth"))
    assert len(stored) == 1 and stored[0].with_suffix(".json").is_file()


@linux_only
def test_offline_recipes_are_placed_checked_and_never_overwritten(fake_bundle, tmp_path):
    from station.app.demo import teach_demo_recipe

    offline = tmp_path / "offline"
    version = teach_demo_recipe(offline / "models", n_train=8, n_validation=4)
    home = tmp_path / "data"
    proc = install(fake_bundle, tmp_path, "--home", str(home), "--offline", str(offline), "--no-selftest")
    placed = home / "models" / "demo" / version.name
    assert (placed / "recipe.json").is_file(), proc.stdout
    # again: the same recipe is recognised, not copied twice
    proc = install(fake_bundle, tmp_path, "--home", str(home), "--recipe", str(version), "--no-selftest")
    assert "already installed" in proc.stdout
    # a different recipe under the same version number is refused
    meta = json.loads((version / "recipe.json").read_text())
    meta["notes"] = "changed"
    (version / "recipe.json").write_text(json.dumps(meta))
    proc = install(fake_bundle, tmp_path, "--home", str(home), "--recipe", str(version.parent), "--no-selftest",
                   check=False)
    assert proc.returncode == 2 and "already exists with other content" in proc.stderr


@linux_only
def test_install_runs_the_selftest_with_the_placed_recipe(fake_bundle, tmp_path):
    from station.app.demo import teach_demo_recipe

    version = teach_demo_recipe(tmp_path / "src" / "models", n_train=8, n_validation=4)
    proc = install(fake_bundle, tmp_path, "--home", str(tmp_path / "data"), "--recipe", str(version.parent))
    assert "PASS  recipe:demo" in proc.stdout and "selftest PASSED" in proc.stdout, proc.stdout + proc.stderr


@linux_only
def test_uninstall_keeps_the_data(fake_bundle, tmp_path):
    home = tmp_path / "data"
    install(fake_bundle, tmp_path, "--home", str(home), "--no-selftest")
    (home / "models" / "keep.txt").write_text("recipes stay")
    proc = install(fake_bundle, tmp_path, "--uninstall")
    assert "removed" in proc.stdout
    assert not (tmp_path / "opt").exists() and not (tmp_path / "bin" / "station").exists()
    assert not (tmp_path / "apps" / "station.desktop").exists()
    assert (home / "models" / "keep.txt").is_file()


# --- the real build (pytest --run-installer) ---------------------------------------------------------------
def _stripped_env(home: Path) -> dict[str, str]:
    """The environment of a line PC: no venv, pyenv or conda on PATH, no PYTHONPATH/PYTHONHOME."""
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep)
            if p and not any(s in p for s in ("venv", "pyenv", "conda", ".local/bin"))]
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYENV_VERSION", "GENICAM_GENTL64_PATH")}
    env.update(PATH=os.pathsep.join(path), STATION_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    return env


@pytest.mark.installer
@linux_only
@pytest.mark.timeout(7200)
def test_built_bundle_passes_its_selftest_without_python(tmp_path):
    """installer/build_linux.sh, then the bundle's `station --version` and `station selftest` with no
    Python environment reachable, then an install from the built folder. STATION_INSTALLER_LITE=1
    builds the bundle without torch instead."""
    lite = os.environ.get("STATION_INSTALLER_LITE") == "1"
    cmd = ["bash", str(BUILD_SH), "--no-selftest"]
    if sys.prefix != sys.base_prefix:  # running in a venv that holds the runtime packages: reuse it
        cmd += ["--runtime-venv", sys.prefix]
    if lite:
        cmd.append("--no-torch")
    build = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=7000)
    assert build.returncode == 0, build.stdout[-5000:] + build.stderr[-5000:]
    out_dir = Path(build.stdout.strip().splitlines()[-1].removeprefix("output: "))
    exe = out_dir / "station" / "station"
    assert exe.is_file(), build.stdout[-2000:]

    env = _stripped_env(tmp_path / "home")
    assert not any("venv" in p for p in env["PATH"].split(os.pathsep))
    version = subprocess.run([str(exe), "--version"], cwd=out_dir, env=env, capture_output=True, text=True,
                             timeout=300)
    assert version.returncode == 0 and version.stdout.startswith("station "), version.stdout + version.stderr
    proc = subprocess.run(["./station/station", "selftest", "--json"], cwd=out_dir, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    report = json.loads(proc.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["ok"] and checks["python"]["data"]["frozen"] is True
    for name in ("qt", "synthetic", "camera", "onnxruntime", "detector:variation"):
        assert checks[name]["status"] == "pass", checks[name]
    torch_kinds = ("detector:patchcore", "detector:autoencoder", "device")
    assert all(checks[k]["status"] == ("skip" if lite else "pass") for k in torch_kinds), \
        {k: checks[k]["detail"] for k in torch_kinds}

    # and the built folder installs and starts through its launcher
    inst = subprocess.run(["bash", str(out_dir / "install_linux.sh"), "--prefix", str(tmp_path / "opt"),
                           "--bin-dir", str(tmp_path / "bin"), "--apps-dir", str(tmp_path / "apps"),
                           "--no-selftest"], env={**env, "HOME": str(tmp_path / "user")},
                          capture_output=True, text=True, timeout=1800)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    started = subprocess.run([str(tmp_path / "bin" / "station"), "--version"], env=env, capture_output=True,
                             text=True, timeout=300)
    assert started.returncode == 0 and started.stdout.startswith("station ")
