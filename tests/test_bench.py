"""``station bench`` on a tiny configuration: every registered detector is covered or skipped with a
reason, PatchCore is measured through torch and ONNX Runtime, and the report is complete JSON."""

from __future__ import annotations

import json

import pytest
import torch

from station.bench import BenchConfig, results_table, run_bench, run_case
from station.cli.main import main
from station.detectors import base
from station.weights import WeightsStore, random_state_dict


def tiny(**kw) -> BenchConfig:
    params = {"patchcore": {"backbone": "resnet18", "weights": "random", "input_size": 64, "coreset_ratio": 0.1}}
    return BenchConfig(**{"n_fit": 3, "n_test": 2, "repeats": 3, "warmup": 1, "threads": 2, "isolate": False,
                          "synthetic": True, "synthetic_size": 96, "params": params, **kw})


def test_patchcore_case_measures_everything():
    row = run_case("patchcore", "cpu", tiny())
    assert "error" not in row, row.get("traceback")
    assert row["fit_s"] > 0 and row["n_fit"] == 3 and row["weights"]["source"] == "random"
    assert row["native"]["backend"] == "torch"
    for backend in ("native", "onnxruntime", "onnxruntime_int8"):
        m = row[backend]
        assert m["batch1"]["n"] == 3 and 0 < m["batch1"]["p50_ms"] <= m["batch1"]["p95_ms"]
        assert m["batch8_images_per_s"] > 0
    assert row["onnxruntime"]["max_relative_difference_vs_torch"] < 1e-3
    assert row["onnxruntime_int8"]["backend"] == "onnxruntime int8"
    assert row["onnxruntime_int8"]["correlation_vs_torch"] > 0.5  # another model, seeing the same things
    assert row["threshold"]["maps"] == 20 and row["threshold"]["estimate_p50_ms"] > 0
    assert row["peak_rss_gb"] > 0


def test_unimportable_and_weightless_detectors_are_skipped(monkeypatch, tmp_path):
    monkeypatch.setitem(base._REGISTRY, "ghost", base.DetectorInfo("ghost", "station.detectors.ghost:Ghost",
                                                                   "Ghost", "not written yet"))
    assert "not importable yet" in run_case("ghost", "cpu", tiny())["skipped"]
    monkeypatch.setenv("STATION_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))  # not this PC's torch cache
    cfg = tiny(params={"patchcore": {"backbone": "resnet18", "allow_download": False, "input_size": 64}})
    assert "no backbone weights" in run_case("patchcore", "cpu", cfg)["skipped"]


def test_report_table_and_cli_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STATION_HOME", str(tmp_path / "home"))
    path = tmp_path / "r18.pth"
    torch.save(random_state_dict("resnet18", 0), path)
    sha = WeightsStore().import_file(path, allow_custom=True).sha256
    out = tmp_path / "bench.json"
    code = main(["bench", "--detector", "patchcore", "--detector", "nonexistent-kind", "--device", "cpu",
                 "--fit-images", "2", "--test-images", "2", "--repeats", "2", "--no-onnx", "--in-process",
                 "--synthetic", "-p", "patchcore.backbone=resnet18", "-p", f"patchcore.weights=custom:{sha[:16]}",
                 "-p", "patchcore.input_size=64", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "patchcore" in text and "torch" in text and "p50 ms" in text
    report = json.loads(out.read_text())
    assert report["machine"]["logical_cores"] >= 1
    kinds = {r["kind"]: r for r in report["results"]}
    assert kinds["patchcore"]["native"]["batch1"]["n"] == 2
    assert "error" in kinds["nonexistent-kind"] or "skipped" in kinds["nonexistent-kind"]
    assert "nonexistent-kind" in results_table(report)


@pytest.mark.slow
def test_cases_run_isolated_in_child_processes():
    report = run_bench(tiny(isolate=True, onnx=False, kinds=["patchcore"], devices=["cpu"]))
    (row,) = report["results"]
    assert "error" not in row, row
    assert row["native"]["batch1"]["p50_ms"] > 0
