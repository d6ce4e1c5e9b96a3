"""``station selftest`` from the source tree: every required check passes here, failures are reported
per check with exit status 1, and a broken recipe is a clear failure, not a crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from station.cli import selftest, selftest_detectors

REPO = Path(__file__).resolve().parents[1]
FAST = ["--skip", "qt", "--skip", "detectors", "--skip", "camera", "--skip", "onnxruntime", "--skip", "synthetic"]


def run_selftest(home: Path, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "STATION_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
    env.pop("GENICAM_GENTL64_PATH", None)  # only the simulated camera, whatever this machine has installed
    return subprocess.run([sys.executable, "-m", "station", "selftest", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> dict:
    """One complete self-test (all checks) on an empty station home, as JSON."""
    proc = run_selftest(tmp_path_factory.mktemp("home"), "--json", "--device", "cpu")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads(proc.stdout)


def test_every_required_check_passes(full_report):
    checks = {c["name"]: c for c in full_report["checks"]}
    assert full_report["ok"] is True
    for name in ("python", "qt", "synthetic", "device", "detector:variation", "camera", "onnxruntime"):
        assert checks[name]["status"] == "pass", checks[name]
    assert not [c for c in full_report["checks"] if c["required"] and c["status"] == "fail"]
    # the offscreen Qt application drew a widget, and both platform plugins ship
    assert {"xcb", "offscreen"} <= set(checks["qt"]["data"]["platform_plugins"])
    # the simulated GenTL producer listed its device and a frame came through
    assert checks["camera"]["data"]["producer"].endswith("viky.cti")
    assert checks["camera"]["data"]["devices"]
    assert "CPUExecutionProvider" in checks["onnxruntime"]["data"]["available"]
    assert checks["device"]["data"]["device"] == "cpu"


def test_each_detector_taught_and_inspected(full_report):
    checks = {c["name"]: c for c in full_report["checks"]}
    for kind in ("variation", "autoencoder", "patchcore", "padim"):
        check = checks[f"detector:{kind}"]
        assert check["status"] == "pass", check
        assert len(check["data"]["verdicts"]) == 2 and set(check["data"]["verdicts"]) <= {"OK", "NG"}
    # the variation model, taught on good frames, finds the drawn defect
    assert checks["detector:variation"]["data"]["verdicts"] == ["OK", "NG"]


def test_patchcore_without_weights_says_it_is_random(full_report):
    """An empty weights store: PatchCore runs on a random backbone and the report never calls it pretrained."""
    checks = {c["name"]: c for c in full_report["checks"]}
    patchcore = checks["detector:patchcore"]
    assert "FUNCTIONAL CHECK ONLY" in patchcore["detail"] and "not pretrained" in patchcore["detail"]
    assert patchcore["data"]["weights"]["source"] == "random"
    assert checks["weights"]["status"] == "warn" and checks["weights"]["required"] is False


def test_require_pretrained_fails_with_an_empty_store(tmp_path):
    proc = run_selftest(tmp_path, *FAST, "--require-pretrained")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL  weights" in proc.stdout and "station weights import" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith("selftest FAILED")


def test_broken_recipe_is_a_failed_check(tmp_path):
    broken = tmp_path / "part" / "v0001"
    broken.mkdir(parents=True)
    (broken / "recipe.json").write_text("{ not json", encoding="utf-8")
    proc = run_selftest(tmp_path / "home", *FAST, "--skip", "device", "--skip", "weights", "--json",
                        "--recipe", str(tmp_path / "part"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    recipe = next(c for c in report["checks"] if c["name"] == "recipe:part")
    assert recipe["status"] == "fail" and "recipe" in recipe["detail"].lower()
    assert report["ok"] is False


def test_a_good_recipe_loads_and_inspects(tmp_path):
    from station.app.demo import teach_demo_recipe

    folder = teach_demo_recipe(tmp_path / "models", n_train=8, n_validation=4)
    proc = run_selftest(tmp_path / "home", *FAST, "--skip", "device", "--skip", "weights",
                        "--recipe", str(folder.parent))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS  recipe:demo" in proc.stdout and "variation" in proc.stdout


def test_a_crashing_check_is_reported_and_the_rest_still_run(monkeypatch):
    def broken_camera():
        raise RuntimeError("driver exploded")

    monkeypatch.setattr(selftest, "_check_camera", broken_camera)
    seen = []
    results = selftest.run_checks(skip={"qt", "detectors", "synthetic", "device", "weights"}, echo=seen.append)
    by_name = {r.name: r for r in results}
    assert by_name["camera"].status == "fail" and "driver exploded" in by_name["camera"].detail
    assert "Traceback" in by_name["camera"].data["traceback"]
    assert by_name["onnxruntime"].status == "pass"  # checks after the broken one still ran
    assert [r.name for r in seen] == [r.name for r in results]
    assert any(r.failed for r in results)


def test_a_detector_without_torch_is_not_installed_rather_than_failed(monkeypatch):
    """The lite bundle has no torch: its deep detectors are skipped ("not installed"), not failures."""
    def no_torch(kind, frames, device):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr(selftest_detectors, "_teach_and_inspect", no_torch)
    result = selftest.run_checks(skip={"qt", "camera", "onnxruntime", "device", "weights"})
    by_name = {r.name: r for r in result}
    assert by_name["detector:patchcore"].status == "skip" and "not installed" in by_name["detector:patchcore"].detail
    assert not any(r.failed for r in result)


def test_an_unrelated_missing_module_is_a_failure(monkeypatch):
    def broken(kind, frames, device):
        raise ModuleNotFoundError("No module named 'scipy.ndimage'", name="scipy.ndimage")

    monkeypatch.setattr(selftest_detectors, "_teach_and_inspect", broken)
    result = selftest.run_checks(skip={"qt", "camera", "onnxruntime", "device", "weights"})
    assert {r.name: r.status for r in result}["detector:variation"] == "fail"
