"""The drift watch: a warning *before* the false rejects climb, when the light ages, the lens gets dirty
or the parts change.

What is watched, against what the recipe was taught on:

- the image **score** of every OK part against the recipe's validation scores (held-out good images,
  ``recipe.validation["scores"]``);
- the frame's **brightness, contrast and sharpness** (:mod:`station.core.frame_stats`, measured by
  the input watch anyway) against the teach images (``recipe.input_profile``), for every frame with
  the part in place.

Why these, and why a CUSUM
--------------------------
A false reject is a tail event: a good part whose map crosses the threshold, which is set at the top
of the validation maps. Counting rejects to see their rate rise by 1 % takes hundreds of parts, and
each one counted is a good part thrown away. The bulk of the distributions moves first: when the lamp
dims by 3 %, *every* frame is 3 % darker and every OK part scores a little higher, long before
scores cross the threshold. So the watch follows the bulk, frame by frame, in units of the taught
standard deviation (``z = (x - mean) / sd``).

Each value feeds a two-sided tabular CUSUM (Page 1954): ``S+ = max(0, S+ + z - k)``,
``S- = max(0, S- - z - k)``, alarm when either exceeds the **alarm level** ``h``. Among all detectors
with the same false-alarm rate, the CUSUM has the smallest worst-case delay for a step change
(Lorden 1971, Moustakides 1986) -- a new lamp, a knocked lens, a new batch of parts -- and a slow drift
accumulates in it the same way. An EWMA of the same values (``lambda`` 0.1) is kept only to tell the
operator the recent level; it does not decide.

- ``k`` = 0.5 sd: tuned to shifts of about one taught standard deviation, the size that starts false
  rejects (a larger one is caught sooner; one beyond the accepted range is not judged at all, see
  :mod:`station.live.input_watch`). The taught mean and sd are estimates from the teach set, and a
  CUSUM run on estimates alarms far more often than its nominal rate (a 40-image teach set gave a
  false sharpness alarm within 30 frames): the sd is taken at its upper 95 % bound and ``k`` grows
  by two standard errors of the mean, ``2 / sqrt(n)`` (:class:`Cusum`).
- Delay ~ ``(h + 1.17) / (delta - k)`` frames for a shift of ``delta`` sd; frames between false alarms
  ~ ``exp(2 k (h + 1.17)) / (2 k^2)`` per side for normal data (Siegmund's approximation). With the
  default ``h`` = 12: at least 10^6 frames (9 hours at 30 frames/s) between false alarms per statistic
  and side, and a 2 sd shift caught within about 11 frames (180 teach images).
- Each ``z`` is clipped to +-4 sd, so one wild frame (a hand in the picture) adds at most a third of
  ``h``, and NG parts never feed the score (their defects would look like drift). The NG cut trims
  only the top of the OK scores; their bulk still shows the shift.

Before 1 % extra false rejects: the false rejects let through before the warning are about the extra
rate times the delay, and the delay shrinks as the shift (and with it the extra rate) grows. On the
demo recipe (``synthetic://demo``, whose per-frame brightness varies by 1.7 %) a lamp dimmed by 3 %
makes the recipe reject about 1 good part in 8; it is a 1.7 sd brightness shift, warned about 13
frames after the change, with 1 false reject before the warning -- the run's false-reject rate up by
0.8 % then. A lamp dimmed by 20 % is out of the accepted range: no frame is judged, no part is
rejected (the input watch answers at the first frame). ``tests/test_drift_watch.py`` counts both.

The alarm level is a setting (``drift_alarm_level``; 0: off). A warning ends when every statistic has
fallen back below half the level (the CUSUM falls by about ``k`` per frame back in control).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from station.core.inspection import InspectionResult
from station.core.recipe import Recipe
from station.live.input_watch import InputCheck

log = logging.getLogger(__name__)

DEFAULT_ALARM_LEVEL = 12.0
REFERENCE_K = 0.5
CLIP_Z = 4.0
EWMA_LAMBDA = 0.1
MIN_VALIDATION_SCORES = 5
WATCHED_INPUTS = ("brightness", "contrast", "sharpness")
# the least spread a statistic is given, as a share of its level: below that a change is not worth a
# warning, and the sharpness of a small teach set is the least certain (noise, texture)
SD_FLOOR = {"score": 0.05, "brightness": 0.01, "contrast": 0.015, "sharpness": 0.03}
_WHAT = {  # what a drift of each statistic means, up and down
    "score": ("the OK parts score higher than the validation parts: false rejects will follow",
              "the OK parts score lower than the validation parts: defects may be missed"),
    "brightness": ("the frames are getting brighter", "the frames are getting darker (lamp, exposure)"),
    "contrast": ("the contrast is rising", "the contrast is falling (lamp, glare, fogged lens)"),
    "sharpness": ("the frames are getting sharper or noisier", "the frames are getting blurred (focus, dirty lens)"),
}


def sd_upper(sd: float, n: int) -> float:
    """The upper 95 % confidence bound of a standard deviation estimated from ``n`` values (chi-square,
    Wilson-Hilferty): a teach set of 40 images easily underestimates the spread by a fifth."""
    if n < 2:
        return float(sd)
    nu = n - 1.0
    chi2_05 = nu * (1.0 - 2.0 / (9.0 * nu) - 1.645 * math.sqrt(2.0 / (9.0 * nu))) ** 3
    return float(sd) * math.sqrt(nu / max(chi2_05, 1e-9))


class Cusum:
    """Two-sided tabular CUSUM of values standardised by the taught ``mean`` and ``sd`` of ``n`` values.

    The taught values are estimates, and a CUSUM with estimated parameters alarms far more often than
    its nominal rate: ``sd`` is taken at its upper 95 % bound (and at least ``floor`` of the level),
    and the reference grows by two standard errors of the taught mean (``k + 2 / sqrt(n)``)."""

    def __init__(self, mean: float, sd: float, n: int = 0, k: float = REFERENCE_K, clip: float = CLIP_Z,
                 floor: float = 0.01) -> None:
        self.mean = float(mean)
        self.sd = max(sd_upper(sd, n), floor * abs(self.mean), 1e-9)
        self.k = float(k) + (2.0 / math.sqrt(n) if n >= 2 else 0.0)
        self.clip = float(clip)
        self.high = 0.0
        self.low = 0.0
        self.ewma = float(mean)
        self.n = 0

    def update(self, x: float) -> None:
        z = float(np.clip((float(x) - self.mean) / self.sd, -self.clip, self.clip))
        self.high = max(0.0, self.high + z - self.k)
        self.low = max(0.0, self.low - z - self.k)
        self.ewma += EWMA_LAMBDA * (float(x) - self.ewma)
        self.n += 1

    @property
    def level(self) -> float:
        return max(self.high, self.low)

    @property
    def rising(self) -> bool:
        return self.high >= self.low


@dataclass(frozen=True)
class DriftState:
    """The watch's state after a frame: ``warning`` empty when nothing drifts."""

    warning: str = ""
    levels: tuple[tuple[str, float], ...] = ()


class DriftWatch:
    """One run's drift statistics for ``recipe`` (see the module docstring). Not thread-safe: fed on
    the inspection thread, one frame at a time."""

    def __init__(self, recipe: Recipe, alarm_level: float = DEFAULT_ALARM_LEVEL) -> None:
        self.alarm_level = float(alarm_level)
        self.recipe_label = recipe.label
        self.stats: dict[str, Cusum] = {}
        scores = np.asarray(recipe.validation.get("scores") or [], dtype=np.float64)
        scores = scores[np.isfinite(scores)]
        off = []
        if len(scores) >= MIN_VALIDATION_SCORES:
            self.stats["score"] = Cusum(float(scores.mean()), float(scores.std(ddof=1)), len(scores),
                                        floor=SD_FLOOR["score"])
        else:
            off.append(f"score (the recipe holds {len(scores)} validation scores)")
        profile = recipe.input_profile or {}
        measures = profile.get("measures") or {}
        for name in WATCHED_INPUTS:
            if name in measures:
                self.stats[name] = Cusum(measures[name]["mean"], measures[name]["sd"],
                                         int(profile.get("n_images") or 0), floor=SD_FLOOR[name])
        if not measures:
            off.append("brightness, contrast, sharpness (no input profile: taught before it was stored)")
        self.enabled = self.alarm_level > 0 and bool(self.stats)
        self._alarmed: set[str] = set()
        self._presence_range = (measures.get("presence") or {}).get("range")
        if self.alarm_level <= 0:
            log.info("drift watch off for %s (alarm level 0)", recipe.label)
        elif off:
            log.warning("drift watch for %s without %s", recipe.label, "; ".join(off))
        self.state = DriftState()

    def observe(self, check: InputCheck, result: InspectionResult | None) -> DriftState:
        """Feed one frame (its input measures and, when it was judged, its result); the new state."""
        if not self.enabled:
            return self.state
        m = check.measures
        present = "presence" not in m or self._presence_range is None or m["presence"] >= self._presence_range[0]
        if present:  # an empty fixture says nothing about the light
            for name in WATCHED_INPUTS:
                if name in self.stats and name in m:
                    self.stats[name].update(m[name])
        if result is not None and not result.is_ng and "score" in self.stats:
            self.stats["score"].update(result.score)
        h = self.alarm_level
        for name, c in self.stats.items():
            if name not in self._alarmed and c.level > h:
                self._alarmed.add(name)
                log.warning("drift (%s): %s; CUSUM %.1f > alarm level %g", self.recipe_label,
                            self._describe(name, c), c.level, h)
            elif name in self._alarmed and c.level < h / 2:
                self._alarmed.discard(name)
                log.info("drift (%s): %s back in the taught range", self.recipe_label, name)
        text = "; ".join(self._describe(n, self.stats[n]) for n in self.stats if n in self._alarmed)
        self.state = DriftState(f"drift: {text}" if text else "",
                                tuple((n, round(c.level, 2)) for n, c in self.stats.items()))
        return self.state

    def _describe(self, name: str, c: Cusum) -> str:
        what = _WHAT[name][0 if c.rising else 1]
        return f"{what} ({name} recently {c.ewma:.3g}, taught {c.mean:.3g} ± {c.sd:.2g})"
