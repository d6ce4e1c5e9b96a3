"""A readable report of an evaluation, one HTML file beside the raw results: what was scored with
what, the metrics table (overall and per defect type, each heading explained), the ROC and PRO
curves, and the worst misses with their overlays -- defective parts passed as OK, good parts
rejected as NG. It links the files :func:`~station.core.report.write_report` and the overlay writer
put in the same folder, so it opens in any browser and stays small (no image is embedded twice)."""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from station.core.detectability import DetectabilityTable
from station.core.evaluation import EvaluationResult, ImageRecord
from station.core.synthetic_defects import KIND_NAMES

# (heading, metric key, what it means) -- the Review window's metrics table uses the same words
METRIC_HELP: list[tuple[str, str, str]] = [
    ("image AUC", "image_roc_auc", "Area under the image-level ROC curve of the detector's image score: "
     "1.0 separates every good from every defective image at some threshold, 0.5 is chance."),
    ("pixel AUC", "pixel_roc_auc", "Area under the pixel-level ROC curve of the anomaly map against the "
     "ground-truth masks, pooled over all images."),
    ("AU-PRO", "au_pro", "Normalised area under the per-region-overlap curve up to a false-positive rate of "
     "0.3 (each ground-truth region weighted equally, as the MVTec AD evaluation)."),
    ("region overlap", "region_overlap", "At the recipe's threshold and minimum defect area: the mean share "
     "of each ground-truth defect region that the detected regions cover."),
    ("acc. good", "accuracy_good", "At the recipe's threshold: the share of good images judged OK."),
    ("acc. defective", "accuracy_defective", "At the recipe's threshold: the share of defective images "
     "judged NG."),
    ("images", "n_images", "Images scored in this subset."),
]
SUBSET_HELP = ("Each row is one subset of the test images: 'overall' is every image; a defect type's row "
               "is that type's images together with all good images, as the MVTec AD paper reports them.")
MAX_MISSES = 6

OverlayPath = Callable[[ImageRecord], "str | None"]


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return html.escape(str(v))


def worst_misses(records: Sequence[ImageRecord], limit: int = MAX_MISSES) -> tuple[list[ImageRecord],
                                                                                   list[ImageRecord]]:
    """Defective images judged OK (lowest score first: the furthest from being caught) and good
    images judged NG (highest score first)."""
    missed = sorted((r for r in records if r.is_anomalous and r.verdict == "OK"), key=lambda r: r.score)
    false_alarms = sorted((r for r in records if not r.is_anomalous and r.verdict == "NG"),
                          key=lambda r: -r.score)
    return missed[:limit], false_alarms[:limit]


def _figure(rec: ImageRecord, src: str | None) -> str:
    caption = (f"{html.escape(rec.label)} / {html.escape(rec.name)}: score {rec.score:.4g}, {rec.verdict}, "
               f"{rec.n_regions} region(s)")
    img = (f"<a href='{html.escape(src)}'><img src='{html.escape(src)}' width='480' loading='lazy' alt=''></a>"
           if src else "<p class='note'>(no overlay written)</p>")
    return f"<figure>{img}<figcaption>{caption}</figcaption></figure>"


def _misses_section(title: str, empty: str, records: list[ImageRecord], overlay: OverlayPath) -> str:
    if not records:
        return f"<h3>{title}</h3><p class='note'>{empty}</p>"
    return f"<h3>{title}</h3><div class='figs'>{''.join(_figure(r, overlay(r)) for r in records)}</div>"


def _detectability_section(table: DetectabilityTable) -> str:
    """Recall on synthetic defects: the sentences, then a table per kind (areas x contrasts)."""
    sentences = "".join(f"<li>{html.escape(s[0].upper() + s[1:])}.</li>" for s in table.sentences())
    blocks = []
    for k, kind in enumerate(table.kinds):
        head = "".join(f"<th>{c:g}</th>" for c in table.contrasts)
        rows = "".join(
            f"<tr><th>{'&lt; ' if area < table.min_defect_area_px else ''}{html.escape(table.area_text(area))}</th>"
            + "".join(f"<td>{round(float(r) * 100)} %</td>" for r in table.recall[k, a]) + "</tr>"
            for a, area in enumerate(table.areas_px))
        blocks.append(f"<table class='metrics'><caption>{html.escape(KIND_NAMES[kind])}</caption><tr><th>area / "
                      f"contrast (grey levels)</th>{head}</tr>{rows}</table>")
    return (f"<h2>What it will catch: synthetic defects</h2><p class='note'>{html.escape(table.header())}. "
            f"&lt;: below the minimum defect area (not to be found by design).</p><ul>{sentences}</ul>"
            f"<div class='figs'>{''.join(blocks)}</div>")


def render_html(result: EvaluationResult, overlay: OverlayPath, extra: dict[str, Any] | None = None,
                labelled: bool = True, files: Sequence[tuple[str, str]] = (),
                detectability: DetectabilityTable | None = None) -> str:
    """The report as one HTML document; ``overlay(record)`` gives an overlay's relative path (or
    ``None``); ``files`` lists (relative path, what it holds) of the other files of the report;
    ``detectability``: the recipe's stored recall on synthetic defects, if any."""
    extra = extra or {}
    n_bad = sum(r.is_anomalous for r in result.records)
    wrong = sum(not r.correct for r in result.records) if labelled else None
    rows = [("data", extra.get("data", "")), ("recipe", f"{result.recipe} ({extra.get('recipe_path', '')})"),
            ("threshold", f"{result.threshold:.5g}"), ("minimum defect area", f"{result.min_defect_area_px:g} px"),
            ("images", f"{len(result.records)} ({len(result.records) - n_bad} good, {n_bad} defective)"
             if labelled else f"{len(result.records)} (no ground truth)"),
            ("scoring", f"{result.timing.get('ms_per_image', 0):.0f} ms an image; metrics "
                        f"{result.timing.get('metrics_s', 0):.1f} s"),
            ("written", datetime.now().strftime("%Y-%m-%d %H:%M"))]
    if wrong is not None:
        rows.insert(5, ("verdicts", f"{len(result.records) - wrong} right, {wrong} wrong at this threshold"))
    if result.problems:
        rows.append(("skipped", f"{len(result.problems)} unreadable file(s), listed in metrics.json"))
    summary = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    parts = [f"<h1>Review of {html.escape(result.category)}</h1><table class='summary'>{summary}</table>"]
    if labelled:
        head = "".join(f"<th title='{html.escape(tip)}'>{html.escape(name)}</th>" for name, _, tip in METRIC_HELP)
        body = "".join(f"<tr><th title='{html.escape(SUBSET_HELP)}'>{html.escape(sub)}</th>"
                       + "".join(f"<td>{_fmt(m.get(key))}</td>" for _, key, _ in METRIC_HELP) + "</tr>"
                       for sub, m in result.metrics.items())
        legend = "".join(f"<dt>{html.escape(n)}</dt><dd>{html.escape(t)}</dd>" for n, _, t in METRIC_HELP)
        parts.append(f"<h2>Metrics</h2><table class='metrics'><tr><th title='{html.escape(SUBSET_HELP)}'>"
                     f"subset</th>{head}</tr>{body}</table><details><summary>What the columns mean</summary>"
                     f"<dl>{legend}<dt>subset</dt><dd>{html.escape(SUBSET_HELP)}</dd></dl></details>")
        curves = [f"<img src='{name}' width='560' alt='{name}'>" for name in ("roc.png", "pro.png")
                  if name in {f for f, _ in files}]
        if curves:
            parts.append(f"<h2>Curves</h2><div class='figs'>{''.join(curves)}</div>")
        missed, alarms = worst_misses(result.records)
        parts.append("<a name='misses'></a><h2 id='misses'>Worst misses</h2><p class='note'>Left: the image with the ground truth (red) and "
                     "the detected regions (green); right: the anomaly map over it.</p>")
        parts.append(_misses_section("Defective parts passed as OK", "none: every defective image was NG",
                                     missed, overlay))
        parts.append(_misses_section("Good parts rejected as NG", "none: every good image was OK", alarms, overlay))
    else:
        top = sorted(result.records, key=lambda r: -r.score)[:MAX_MISSES]
        parts.append(_misses_section("Highest scores", "no images", top, overlay))
    if detectability is not None:
        parts.append(_detectability_section(detectability))
    if files:
        items = "".join(f"<li><a href='{html.escape(f)}'>{html.escape(f)}</a>: {html.escape(what)}</li>"
                        for f, what in files)
        parts.append(f"<h2>Files</h2><ul>{items}</ul>")
    style = ("body{font-family:sans-serif;margin:24px;color:#202124;max-width:1400px}"
             "table{border-collapse:collapse;margin:8px 0}th,td{padding:4px 10px;border-bottom:1px solid #dadce0;"
             "text-align:left}.metrics td{text-align:right}th[title]{text-decoration:underline dotted;cursor:help}"
             ".figs{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;max-width:520px}"
             "figure img,.figs>img{max-width:100%;border:1px solid #dadce0}figcaption{font-size:90%}"
             ".note{color:#5f6368}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Review of {html.escape(result.category)}"
            f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>\n")


def write_html_report(result: EvaluationResult, out_dir: str | Path, overlay: OverlayPath,
                      extra: dict[str, Any] | None = None, labelled: bool = True,
                      detectability: DetectabilityTable | None = None) -> Path:
    """Write ``report.html`` into ``out_dir`` (beside the other files of the report); returns its path."""
    out = Path(out_dir)
    known = {"metrics.json": "every number, per image too", "metrics.csv": "the metrics table",
             "images.csv": "one row per image", "roc.png": "ROC curves", "pro.png": "PRO curve",
             "maps.npz": "the raw anomaly maps (compressed numpy archive, one array per image)",
             "overlays": "an overlay for every image, by defect type"}
    files = [(name, what) for name, what in known.items() if (out / name).exists()]
    path = out / "report.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render_html(result, overlay, extra, labelled, files, detectability), encoding="utf-8")
    os.replace(tmp, path)
    return path
