"""Golden parts as the station's services use them: stored into a new recipe version and every run
of them written to the audit log (the checks themselves are :mod:`station.core.golden`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from station.app.audit import AuditLog
from station.core.golden import GoldenReport, add_golden_part, golden_parts, parts_summary, set_on_failure
from station.core.images import load_image
from station.core.recipe import Recipe, exports_of, save_recipe


def record_golden_run(audit: AuditLog | None, report: GoldenReport, reason: str, role: str = "system") -> None:
    """One audit entry per run: passed or failed, why it ran (shift start, recipe change, on demand)."""
    if audit is None:
        return
    action = "golden.passed" if report.passed else ("golden.blocked" if report.blocks else "golden.failed")
    audit.record(action, report.recipe_label, None, f"{sum(o.passed for o in report.outcomes)}/"
                 f"{len(report.outcomes)} right", role=role, note=report.message(), reason=reason,
                 report=report.to_dict())


def store_golden_parts(recipe: Recipe, part_dir: str | Path, ok: Sequence[Path] = (), ng: Sequence[Path] = (),
                       on_failure: str | None = None, audit: AuditLog | None = None,
                       role: str = "engineer") -> Path:
    """Add image files as golden parts (named by file stem) and save the recipe as a new version,
    audited. Everything is checked before anything is saved: one bad file saves nothing."""
    before = parts_summary(golden_parts(recipe))
    for expected, files in (("OK", ok), ("NG", ng)):
        for f in files:
            f = Path(f)
            add_golden_part(recipe, _name_for(f, expected), load_image(f), expected, note=str(f))
    if on_failure is not None:
        set_on_failure(recipe, on_failure)
    old_label = recipe.label
    folder = save_recipe(recipe, part_dir, copies=exports_of(recipe))
    if audit is not None:
        audit.record("golden.parts", recipe.label, before, parts_summary(golden_parts(recipe)), role=role,
                     note=f"from {old_label}; on failure: {recipe.golden.get('on_failure')}", folder=str(folder))
    return folder


def _name_for(path: Path, expected: str) -> str:
    stem = "".join(c if c.isalnum() or c in "_-." else "_" for c in path.stem)[:48] or "part"
    return f"{expected.lower()}_{stem}"
