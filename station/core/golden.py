"""Golden parts: known OK and NG parts stored in the recipe with the verdict each must get.

Before a recipe inspects anything on the line -- at shift start, after a recipe change, on demand --
the station inspects its golden parts with the recipe *as it will run* (its threshold and minimum
defect area) and compares the verdicts. One wrong verdict means the recipe cannot be trusted: a
threshold edited far too high lets the NG golden part pass, a camera that moved or a lens that got
dirty makes the OK part fail. What then happens is the recipe's choice (``on_failure``): ``block``
(the default) stops inspection with the reason, ``warn`` runs on with a warning.

Stored as data in the recipe: ``recipe.golden`` (JSON) lists the parts, their images are arrays in
the recipe's tensor file under ``_golden/<name>`` (never handed to the detector).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

import numpy as np

from station.core.recipe import GOLDEN_PREFIX, Recipe
from station.core.regions import Verdict

ON_FAILURE = ("block", "warn")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class GoldenError(ValueError):
    """A golden part cannot be stored (bad name, verdict, image or setting)."""


class _Inspects(Protocol):
    def inspect(self, image: np.ndarray) -> Any: ...


@dataclass(frozen=True)
class GoldenPart:
    name: str
    expected: Verdict
    image: np.ndarray = field(repr=False)
    note: str = ""


@dataclass(frozen=True)
class GoldenOutcome:
    name: str
    expected: Verdict
    got: Verdict | None  # None: the part could not be inspected
    score: float | None
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.got is self.expected


@dataclass(frozen=True)
class GoldenReport:
    """The outcome of one run of a recipe's golden parts."""

    recipe_label: str
    threshold: float
    min_defect_area_px: float
    on_failure: str
    outcomes: tuple[GoldenOutcome, ...]
    time: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)

    @property
    def blocks(self) -> bool:
        """Inspection must not run: a verdict was wrong and the recipe says ``block``."""
        return not self.passed and self.on_failure == "block"

    @property
    def wrong(self) -> list[GoldenOutcome]:
        return [o for o in self.outcomes if not o.passed]

    def message(self) -> str:
        """One paragraph for the operator's banner, the log and the audit entry."""
        n = len(self.outcomes)
        if self.passed:
            return f"golden-part self-test passed for {self.recipe_label}: {n} of {n} known parts judged right"
        parts = "; ".join(_why(o, self.threshold) for o in self.wrong)
        then = ("Inspection is blocked until the self-test passes: check the camera, the light and the part "
                "position, or re-teach / re-tune the recipe (an engineer decides)." if self.blocks else
                "Inspection goes on (the recipe is set to warn only); its verdicts may be wrong.")
        return (f"golden-part self-test FAILED for {self.recipe_label}: {len(self.wrong)} of {n} known parts "
                f"judged wrong ({parts}). {then}")

    def to_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe_label, "passed": self.passed, "blocks": self.blocks, "time": self.time,
                "threshold": self.threshold, "min_defect_area_px": self.min_defect_area_px,
                "on_failure": self.on_failure,
                "parts": [{"name": o.name, "expected": o.expected.value, "got": o.got.value if o.got else None,
                           "score": o.score, "passed": o.passed, "detail": o.detail} for o in self.outcomes]}


def _why(o: GoldenOutcome, threshold: float) -> str:
    if o.got is None:
        return f"{o.name}: could not be inspected ({o.detail})"
    score = f"score {o.score:.3g}, threshold {threshold:.3g}" if o.score is not None else ""
    return f"{o.name} expected {o.expected.value}, got {o.got.value} ({score})"


# --- stored in the recipe ----------------------------------------------------------------------------
def golden_parts(recipe: Recipe) -> list[GoldenPart]:
    """The recipe's golden parts in the order they were added (none for recipes taught before)."""
    out = []
    for entry in recipe.golden.get("parts", []):
        image = recipe.state.get(GOLDEN_PREFIX + entry["name"])
        if image is None:
            continue  # metadata without its image (edited by hand): reported by run_golden as missing
        out.append(GoldenPart(entry["name"], Verdict(entry["expected"]), image, entry.get("note", "")))
    return out


def golden_state(recipe: Recipe) -> dict[str, np.ndarray]:
    """The golden parts' images of ``recipe`` (its ``_golden/`` arrays): what a new version built from
    other detector state (int8, re-taught) adds to its state to carry the golden parts along."""
    return {k: v for k, v in recipe.state.items() if k.startswith(GOLDEN_PREFIX)}


def has_golden(recipe: Recipe) -> bool:
    return bool(recipe.golden.get("parts"))


def on_failure(recipe: Recipe) -> str:
    return str(recipe.golden.get("on_failure", "block"))


def add_golden_part(recipe: Recipe, name: str, image: np.ndarray, expected: Verdict | str, note: str = "") -> None:
    """Add (or replace) golden part ``name`` in ``recipe`` (in memory; save a new version to keep it)."""
    if not _NAME.match(name):
        raise GoldenError(f"golden part name {name!r}: use letters, digits, '_', '-' or '.' (at most 64)")
    try:
        verdict = Verdict(str(getattr(expected, "value", expected)).upper())
    except ValueError:
        raise GoldenError(f"golden part {name}: expected verdict {expected!r}; use OK or NG") from None
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or min(image.shape[:2]) < 8:
        raise GoldenError(f"golden part {name}: expected an 8-bit image of at least 8x8 px, got "
                          f"{image.dtype} {image.shape}")
    parts = [p for p in recipe.golden.get("parts", []) if p["name"] != name]
    parts.append({"name": name, "expected": verdict.value, "note": note,
                  "added": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    recipe.golden = {**recipe.golden, "on_failure": on_failure(recipe), "parts": parts}
    recipe.state[GOLDEN_PREFIX + name] = np.ascontiguousarray(image)


def remove_golden_part(recipe: Recipe, name: str) -> bool:
    parts = recipe.golden.get("parts", [])
    kept = [p for p in parts if p["name"] != name]
    recipe.state.pop(GOLDEN_PREFIX + name, None)
    recipe.golden = {**recipe.golden, "parts": kept}
    return len(kept) != len(parts)


def set_on_failure(recipe: Recipe, mode: str) -> None:
    if mode not in ON_FAILURE:
        raise GoldenError(f"on failure {mode!r}: use {' or '.join(ON_FAILURE)}")
    recipe.golden = {**recipe.golden, "on_failure": mode}


# --- running them ------------------------------------------------------------------------------------
def run_golden(recipe: Recipe, inspector: _Inspects, threshold: float | None = None,
               min_defect_area_px: float | None = None) -> GoldenReport:
    """Inspect ``recipe``'s golden parts with ``inspector`` (the one that will inspect the line, at the
    threshold it holds) and compare each verdict with the expected one. A part that cannot be
    inspected (another size than the source's, say) counts as wrong, with the reason."""
    present = {p.name: p for p in golden_parts(recipe)}
    outcomes: list[GoldenOutcome] = []
    for entry in recipe.golden.get("parts", []):
        expected = Verdict(entry["expected"])
        part = present.get(entry["name"])
        if part is None:
            outcomes.append(GoldenOutcome(entry["name"], expected, None, None, "its image is missing from the recipe"))
            continue
        try:
            result = inspector.inspect(part.image)
        except Exception as exc:  # noqa: BLE001 - reported as a failed part, never a crash
            outcomes.append(GoldenOutcome(part.name, expected, None, None, str(exc) or type(exc).__name__))
            continue
        outcomes.append(GoldenOutcome(part.name, expected, result.verdict, float(result.score)))
    thr = threshold if threshold is not None else float(getattr(inspector, "threshold", recipe.threshold))
    area = (min_defect_area_px if min_defect_area_px is not None
            else float(getattr(inspector, "min_defect_area_px", recipe.min_defect_area_px)))
    return GoldenReport(recipe.label, thr, area, on_failure(recipe), tuple(outcomes))


def parts_summary(parts: Sequence[GoldenPart]) -> str:
    ok = sum(p.expected is Verdict.OK for p in parts)
    return f"{len(parts)} golden parts ({ok} OK, {len(parts) - ok} NG)"
