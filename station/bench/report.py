"""The benchmark's results as a plain-text table."""

from __future__ import annotations

from typing import Any


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def results_table(report: dict[str, Any]) -> str:
    """One line per detector, device and backend; skipped or failed cases say why."""
    head = ["detector", "device", "backend", "fit s", "p50 ms", "p95 ms", "b8 img/s", "b32 img/s",
            "peak RSS GB", "CUDA GB", "thresh ms"]
    rows = [head]
    notes = []
    for r in report["results"]:
        kind, device = r["kind"], r["device"]
        if "skipped" in r or "error" in r:
            reason = r.get("skipped") or r.get("error")
            rows.append([kind, device, "-", "-", "-", "-", "-", "-", "-", "-", "-"])
            notes.append(f"{kind} on {device}: {'skipped' if 'skipped' in r else 'FAILED'}: {reason}")
            continue
        thresh = (r.get("threshold") or {}).get("estimate_p50_ms")
        for key in ("native", "onnxruntime", "onnxruntime_int8"):
            m = r.get(key)
            if not m:
                continue
            first = key == "native"
            rows.append([
                kind, device, m.get("backend", key), _fmt(r.get("fit_s")) if first else "",
                _fmt(m["batch1"]["p50_ms"]), _fmt(m["batch1"]["p95_ms"]),
                _fmt(m.get("batch8_images_per_s")), _fmt(m.get("batch32_images_per_s")),
                _fmt(r.get("peak_rss_gb"), 2) if first else "",
                _fmt(r.get("cuda_max_allocated_gb"), 2) if first else "",
                _fmt(thresh, 2) if first else "",
            ])
        if r.get("onnxruntime"):
            notes.append(f"{kind} on {device}: ONNX Runtime vs torch max relative map difference "
                         f"{r['onnxruntime']['max_relative_difference_vs_torch']:.1e}")
        if r.get("onnxruntime_int8"):
            m = r["onnxruntime_int8"]
            notes.append(f"{kind} on {device}: int8 model vs torch: mean relative map difference "
                         f"{m['mean_relative_difference_vs_torch']:.1%}, correlation {m['correlation_vs_torch']:.3f} "
                         f"(an int8 recipe version has its own threshold: station export --int8)")
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    m = report.get("machine", {})
    summary = (f"machine: {m.get('cpu', '?')}, {m.get('logical_cores', '?')} logical cores, "
               f"{m.get('torch_threads', '?')} torch threads, load {m.get('load_average_1_5_15', '?')}"
               + (f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU"))
    data = next((r.get("data") for r in report["results"] if r.get("data")), None)
    n_fit = next((r.get("n_fit") for r in report["results"] if r.get("n_fit")), None)
    if data:
        summary += f"\ndata: {data}; fit on {n_fit} images; latency = predict([image]), preprocessing to map"
    return "\n".join([summary, "", *lines, *([""] + notes if notes else [])])
