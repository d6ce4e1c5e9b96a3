"""What a detector parameter means, for the people who set it: a label, a unit, a tooltip and, for a
choice, the values offered.

The meaning has one home: the detector class's numpy-style docstring (its ``Parameters`` section),
which the detectors already keep. This module reads it; it adds only presentation -- short labels
and units for parameter names that the docstrings spell as code (``std_factor``), and the rule that a
text parameter whose description quotes its values (````"rigid"``, ``"translation"`` or ``"none"````)
is a choice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Labels and units of the parameter names the shipped detectors use; any other name is shown
# capitalised with its underscores as spaces (a new detector works without an entry here).
LABELS: dict[str, tuple[str, str]] = {
    "work_side": ("Working resolution", "px"),
    "align": ("Alignment", ""),
    "max_rotation_deg": ("Largest rotation", "°"),
    "align_side": ("Alignment resolution", "px"),
    "align_passes": ("Alignment passes", ""),
    "local_alignment": ("Local alignment (optical flow)", ""),
    "flow_sigma": ("Flow smoothing", "px"),
    "flow_max_shift": ("Largest flow shift", "px"),
    "statistic": ("Statistic", ""),
    "levels": ("Scales", ""),
    "tolerance_px": ("Misalignment tolerance", "px"),
    "std_factor": ("Deviation factor", "× std"),
    "abs_floor": ("Deviation floor", "gray levels"),
    "input_blur": ("Input smoothing", "px"),
    "texture": ("Texture channel", ""),
    "texture_sigma": ("Texture smoothing", "px"),
    "map_blur": ("Map smoothing", "px"),
    "mode": ("Part type", ""),
    "schedule": ("Training schedule", ""),
    "color": ("Colour", ""),
    "stride": ("Patch stride", "px"),
    "latent_dim": ("Latent code size", ""),
    "width": ("Network width", "channels"),
    "ssim_window": ("SSIM window", "px"),
    "ssim_kernel": ("SSIM weighting", ""),
    "anomaly_map": ("Anomaly map", ""),
    "max_shift": ("Largest shift", "of the side"),
    "mirror": ("Mirroring", ""),
    "holdout_fraction": ("Held out for the best epoch", "of the images"),
    "seed": ("Random seed", ""),
    "backbone": ("Backbone network", ""),
    "weights": ("Backbone weights", ""),
    "layout": ("Feature layout", ""),
    "embedding_dim": ("Feature size", ""),
    "input_size": ("Input size", "px"),
    "interpolation": ("Resizing", ""),
    "coreset_ratio": ("Memory bank share", "of the patches"),
    "coreset_dim": ("Coreset projection", "dimensions"),
    "num_neighbors": ("Neighbours for the score", ""),
    "sigma": ("Map smoothing", "px"),
    "batch_size": ("Batch size", "images"),
    "precision": ("Precision", ""),
    "allow_download": ("Download weights if missing", ""),
    "onnx_precision": ("ONNX precision", ""),
}
_QUOTED = re.compile(r'``"([^"`]*)"``')


@dataclass(frozen=True)
class ParamText:
    label: str
    unit: str = ""
    tooltip: str = ""
    choices: tuple[str, ...] = ()
    editable: bool = False  # a choice that also takes other values (e.g. a weights name)


def docstring_parameters(doc: str | None) -> dict[str, str]:
    """The ``Parameters`` section of a numpy-style docstring: name -> description (one line of text).
    A line naming several parameters (``flow_sigma, flow_max_shift``) gives each the shared text."""
    lines = (doc or "").expandtabs().splitlines()
    heads = [i for i in range(len(lines) - 1)
             if lines[i].strip() == "Parameters" and set(lines[i + 1].strip()) == {"-"}]
    if not heads:
        return {}
    body = lines[heads[0] + 2:]
    indent = min((len(x) - len(x.lstrip()) for x in body if x.strip()), default=0)
    out: dict[str, str] = {}
    names: list[str] = []
    for i, line in enumerate(body):
        if not line.strip():
            continue
        if len(line) - len(line.lstrip()) > indent:
            for n in names:
                out[n] = (out.get(n, "") + " " + line.strip()).strip()
            continue
        if i + 1 < len(body) and set(body[i + 1].strip()) == {"-"}:
            break  # the next section
        names = [n.strip() for n in line.split(":")[0].split(",")]
        names = [n for n in names if n.isidentifier()]
    return out


def _plain(text: str) -> str:
    return text.replace("``", "")


def param_text(name: str, default: object, description: str = "") -> ParamText:
    """Label, unit, tooltip and choices of one parameter (see the module doc)."""
    label, unit = LABELS.get(name, (name.replace("_", " ").capitalize(), ""))
    choices: tuple[str, ...] = ()
    editable = False
    if isinstance(default, str) and description:
        quoted = list(dict.fromkeys(_QUOTED.findall(description)))
        fixed = [q for q in quoted if "<" not in q and ":" not in q]
        # a description that also names free forms (``"custom:<sha256 prefix>"``) takes other values
        editable = len(fixed) != len(quoted)
        if default not in fixed and fixed:
            fixed.insert(0, default)
            editable = True
        if len(fixed) >= 2:
            choices = tuple(fixed)
    tip = _plain(description)
    if tip:
        tip = f"<b>{name}</b>: {tip}"
    return ParamText(label, unit, tip, choices, editable)
