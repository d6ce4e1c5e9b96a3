"""The input watch: is this frame like the frames the recipe was taught on, before it is judged?

Every frame is measured (:func:`station.core.frame_stats.measure`: brightness, contrast, sharpness,
part present in the region of interest -- about a millisecond, on the inspection thread) and
compared with the ranges the teach images set (the recipe's ``input_profile``). A frame outside any
range -- the lamp failed, the lens is fogged or out of focus, the fixture is empty or the part lies
elsewhere -- is **not judged**: its verdict is ``OUT_OF_RANGE`` (:data:`OUT_OF_RANGE`) with the
reason, it is never reported OK, and it is not NG either (nothing was found on it; the part must be
looked at again). A recipe taught before the profile existed has no ranges: the watch is off, and
says so once in the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from station.core.frame_stats import MEASURES, measure, profile_thumbnail
from station.core.recipe import Recipe
from station.live.result import OUT_OF_RANGE

log = logging.getLogger(__name__)

__all__ = ["OUT_OF_RANGE", "PREFIX", "InputCheck", "InputWatch"]

PREFIX = "input out of range: "  # every reason starts so (the results log's error column)

_WORDS = {  # what a value below / above the range means, for the operator
    "brightness": ("too dark", "too bright"),
    "contrast": ("too little contrast", "too much contrast"),
    "sharpness": ("blurred", "too noisy or too sharp"),
    "presence": ("no part or part out of place", "no part or part out of place"),
}


@dataclass
class InputCheck:
    """One frame's measures and, when it is out of range, why (empty: in range)."""

    measures: dict[str, float] = field(default_factory=dict)
    problem: str = ""


class InputWatch:
    """The taught ranges of one recipe; :meth:`check` a frame against them (inspection thread)."""

    def __init__(self, recipe: Recipe) -> None:
        profile = recipe.input_profile or {}
        self.recipe_label = recipe.label
        self.roi = recipe.preprocessing.get("roi")
        self.measures: dict[str, dict[str, Any]] = {}
        self.thumbnail: np.ndarray | None = None
        if profile.get("measures"):
            self.thumbnail = profile_thumbnail(profile)
            self.measures = {k: v for k, v in profile["measures"].items()
                             if k in MEASURES and (k != "presence" or self.thumbnail is not None)}
        self.enabled = bool(self.measures)
        if self.enabled:
            log.info("input watch on for %s: %s", recipe.label, self.describe())
        else:
            log.warning("input watch off for %s: the recipe was taught before input profiles were stored "
                        "(teach it again to have dark, blurred or empty frames refused)", recipe.label)

    def describe(self) -> str:
        return "; ".join(f"{k} {v['range'][0]:.3g}..{v['range'][1]:.3g}" for k, v in self.measures.items())

    def check(self, image: np.ndarray) -> InputCheck:
        """Measure ``image`` and compare it with the taught ranges."""
        if not self.enabled:
            return InputCheck()
        values = measure(image, self.roi, self.thumbnail)
        problems = []
        # presence first: without the part in place, its light and focus say nothing more
        for name, spec in sorted(self.measures.items(), key=lambda kv: kv[0] != "presence"):
            v = values.get(name)
            lo, hi = spec["range"]
            if v is None or lo <= v <= hi:
                continue
            below = v < lo
            problems.append(f"{_WORDS[name][0 if below else 1]} ({name} {v:.3g}, taught "
                            f"{spec['min']:.3g}..{spec['max']:.3g}, accepted {lo:.3g}..{hi:.3g})")
            if name == "presence":
                break
        reason = f"{PREFIX}{'; '.join(problems)}" if problems else ""
        return InputCheck(values, reason)
