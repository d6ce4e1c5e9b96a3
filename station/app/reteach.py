"""Re-teaching from the line: a new recipe version taught from the part's good-sample pool (its teach
samples plus the false rejects an engineer marked in the results history), compared with the running
version on the archived parts, switched on only when the engineer confirms, and rolled back in one step.

The new version is taught by the teach-in's own builder (:class:`~station.app.teach_session.TeachSession`,
so ``teach()``): the running version's detector and parameters, its region of interest, seed and
validation share, and its minimum defect area, for which the threshold is estimated again on the
held-out samples exactly as the wizard does. Nothing is written before :func:`switch_to`: cancelling
leaves the models folder as it was. The golden parts travel with the new version.

The comparison inspects every archived part of the part (newest :data:`MAX_COMPARED`) and every marked
false reject with both versions. An archived NG part that nobody marked and that the new version
would pass is the dangerous case -- a real defect the re-teach taught away -- and is listed first and
loudly (:meth:`Comparison.warnings`).

Everything here is slow (training, inspecting hundreds of images): the window runs it on a worker.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from station.app.audit import AuditLog
from station.app.history import archived_image
from station.app.sample_pool import PoolSample, SamplePool, result_key
from station.app.teach_session import MIN_IMAGES, TeachSession
from station.core.golden import GoldenReport, golden_state, has_golden, run_golden
from station.core.images import ImageLoadError, load_image
from station.core.inspection import Inspector
from station.core.progress import CancelToken, ProgressCallback, checkpoint, report
from station.core.recipe import RECIPE_FILE, Recipe, RecipeError, load_recipe, version_number, versions
from station.detectors.base import RUNTIME_OPTIONS, detector_class
from station.detectors.runtime import load_inspector

MAX_COMPARED = 500  # archived parts compared at most (the newest); a comparison must stay minutes, not hours


class ReteachError(ValueError):
    """A re-teach cannot be made (no pool, too few samples, a recipe that cannot be re-taught)."""


@dataclass(frozen=True)
class PartVerdicts:
    """One part judged by the running and by the new version."""

    key: str
    time: float | None
    frame_id: Any
    logged: str  # the verdict in the results log (from whatever version judged it then)
    marked: bool  # marked as a false reject
    old: str
    old_score: float
    new: str
    new_score: float

    @property
    def changed(self) -> bool:
        return self.old != self.new

    @property
    def danger(self) -> bool:
        """An NG part nobody marked good that the new version would pass."""
        return not self.marked and self.old == "NG" and self.new == "OK"


@dataclass
class Comparison:
    old_label: str
    new_label: str
    old_threshold: float
    new_threshold: float
    min_defect_area_px: float
    parts: list[PartVerdicts] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # parts that could not be compared, with why
    golden: GoldenReport | None = None  # the new version on the golden parts

    def metrics(self) -> dict[str, int]:
        marked = [p for p in self.parts if p.marked]
        return {"compared": len(self.parts), "old_ng": sum(p.old == "NG" for p in self.parts),
                "new_ng": sum(p.new == "NG" for p in self.parts), "marked": len(marked),
                "fixed": sum(p.old == "NG" and p.new == "OK" for p in marked),
                "still_rejected": sum(p.new == "NG" for p in marked),
                "ng_now_ok": sum(p.danger for p in self.parts),
                "ok_now_ng": sum(not p.marked and p.old == "OK" and p.new == "NG" for p in self.parts)}

    def changes(self) -> list[PartVerdicts]:
        """Parts whose verdict changes, the dangerous ones first, then the newest."""
        return sorted((p for p in self.parts if p.changed), key=lambda p: (not p.danger, -(p.time or 0.0)))

    def warnings(self) -> list[str]:
        m = self.metrics()
        out = []
        if m["ng_now_ok"]:
            out.append(f"WARNING: {m['ng_now_ok']} archived NG part(s) that nobody marked as good would be judged "
                       f"OK by {self.new_label}. Look at each before switching: a real defect may have been taught away.")
        if m["still_rejected"]:
            out.append(f"{m['still_rejected']} of {m['marked']} marked false reject(s) would still be rejected.")
        if self.golden is not None and not self.golden.passed:
            out.append(self.golden.message())
        if self.skipped:
            out.append(f"{len(self.skipped)} part(s) could not be compared (first: {self.skipped[0]}).")
        return out


@dataclass
class ReteachCandidate:
    """A taught, compared, unsaved new version."""

    old: Recipe
    session: TeachSession
    comparison: Comparison
    samples: list[PoolSample]  # what it was taught from
    notes: list[str] = field(default_factory=list)  # samples that could not be read, sizes refused ...

    @property
    def recipe(self) -> Recipe:
        return self.session.build_recipe()

    @property
    def false_rejects(self) -> int:
        return sum(s.kind == "false_reject" for s in self.samples)


# --- teaching -------------------------------------------------------------------------------------------
def _teach_params(old: Recipe) -> dict[str, Any]:
    """The parameters the running version was taught with: as the wizard recorded them, else its stored
    config (constructor parameters only) and geometry options."""
    if isinstance(old.training.get("params"), dict):
        return dict(old.training["params"])
    import inspect

    try:
        names = set(inspect.signature(detector_class(old.detector_kind)).parameters) - set(RUNTIME_OPTIONS)
    except (TypeError, ValueError, ImportError):
        names = set()
    params = {k: v for k, v in old.detector_config.items() if k in names}
    geometry = (old.preprocessing or {}).get("geometry") or {}
    for key in ("fit", "work_size", "tile_overlap"):
        if geometry.get(key) is not None:
            params.setdefault(key, geometry[key])
    return params


def pool_samples(old: Recipe, pool: SamplePool) -> tuple[list[PoolSample], list[str]]:
    """The pool's samples; for a part taught before pools existed (or from the command line), its
    recipe's recorded training files stand in for the teach samples."""
    samples = pool.samples()
    notes = []
    if not any(s.kind == "teach" for s in samples):
        origins = [o for o in old.training.get("origins") or [] if Path(o).is_file()]
        samples = [PoolSample(f"o{i + 1:04d}", "teach", str(Path(o).resolve()), o) for i, o in enumerate(origins)] + samples
        notes.append(f"the part has no stored teach samples; {len(origins)} training files recorded in "
                     f"{old.label} are used")
    return samples, notes


def reteach_session(old: Recipe, models_dir: Path, images: Sequence[np.ndarray], origins: Sequence[str],
                    groups: Sequence[int]) -> TeachSession:
    """A teach session set up as ``old`` was taught, over ``images`` (``groups``: 1 for marked false
    rejects, which :meth:`TeachSession.split` holds out on their own)."""
    pre = old.preprocessing or {}
    session = TeachSession(models_dir=Path(models_dir), part_name=old.name, detector_kind=old.detector_kind,
                           params=_teach_params(old), keep_samples=False,
                           source_uri=str(old.training.get("camera") or TeachSession.source_uri),
                           camera_settings=dict(old.camera or {}), pixel_size_mm=old.pixel_size_mm,
                           min_defect_area_px=old.min_defect_area_px,
                           seed=int(old.training.get("validation_seed") or 0),
                           validation_fraction=_validation_fraction(old))
    for image, origin, group in zip(images, origins, groups, strict=True):
        session.add_image(image, origin, group=group)
    if pre.get("roi"):
        session.roi = pre["roi"]
    return session


def _validation_fraction(old: Recipe) -> float:
    if old.training.get("validation_fraction"):
        return float(old.training["validation_fraction"])
    n_train, n_val = old.training.get("n_images"), old.validation.get("n_images")
    if n_train and n_val:
        return float(n_val) / float(n_train + n_val)
    return TeachSession.validation_fraction


def teach_candidate(old_path: str | Path, models_dir: str | Path, results_db: str | Path | None,
                    archive_root: str | Path | None = None, device: str | None = "auto",
                    progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> ReteachCandidate:
    """Teach the new version from the pool of ``old_path``'s part and compare it on the archived parts."""
    old = load_recipe(old_path)
    if old.detector_config.get("onnx_precision") == "int8":
        raise ReteachError(f"{old.label} is an int8 version; re-teach its float32 version, then make int8 again")
    pool = SamplePool(old.path.parent)
    samples, notes = pool_samples(old, pool)
    if not any(s.kind == "false_reject" for s in samples):
        raise ReteachError(f"no false rejects are marked for {old.name}; mark some in the results history first")
    images, used, problems = pool.load(samples)
    notes += problems
    checkpoint(cancel)
    session = reteach_session(old, Path(models_dir), images, [s.origin or s.file for s in used],
                              [int(s.kind == "false_reject") for s in used])
    notes += session.problems
    kept = {o for o in session.origins}
    used = [s for s in used if (s.origin or s.file) in kept]
    if len(session.images) < MIN_IMAGES:
        raise ReteachError(f"only {len(session.images)} of the pool's samples can be read (at least {MIN_IMAGES} "
                           f"needed): {'; '.join(notes[:3])}")
    session.train(progress=progress, cancel=cancel, device=device)
    new = session.build_recipe()
    new.golden = dict(old.golden)
    new.state.update(golden_state(old))
    n_fr = sum(s.kind == "false_reject" for s in used)
    new.training = {**new.training, "reteach": {"from": old.label, "from_path": str(old.path),
                                                "teach_samples": len(used) - n_fr, "false_rejects": n_fr,
                                                "samples": [s.id for s in used]}}
    note = f"re-taught from {old.label} with {n_fr} marked false reject(s)"
    new.notes = (old.notes + "\n" if old.notes else "") + note
    checkpoint(cancel)
    old_inspector = load_inspector(old, device=device)
    new_inspector = Inspector(new, session.result.detector)
    label = f"{old.name} v{versions(old.path.parent)[-1][0] + 1}"
    comparison = compare(old, new, label, old_inspector, new_inspector, pool, results_db, archive_root,
                         progress=progress, cancel=cancel)
    return ReteachCandidate(old, session, comparison, used, notes)


# --- comparing ------------------------------------------------------------------------------------------
def compared_parts(pool: SamplePool, part: str, results_db: str | Path | None, archive_root: str | Path | None,
                   limit: int = MAX_COMPARED) -> tuple[list[tuple[str, dict[str, Any], Path | None]], list[str]]:
    """``(key, row, image file)`` of the marked false rejects (their pool copies) and of the part's newest
    archived parts, and why parts were left out."""
    from station.live.results_db import ResultsError, query

    out: dict[str, tuple[str, dict[str, Any], Path | None]] = {}
    for s in pool.false_rejects():
        row = {**s.result, "verdict": "NG"}
        out[s.result.get("key") or s.id] = (s.result.get("key") or s.id, row, pool.path_of(s))
    skipped: list[str] = []
    if results_db is not None and Path(results_db).is_file():
        try:
            for row in query(results_db, recipe=part, archived=True, newest_first=True, limit=limit):
                key = result_key(row)
                if key in out:
                    continue
                path, why = archived_image(row, archive_root)
                if path is None:
                    skipped.append(f"frame {row.get('frame_id')}: image {why}")
                    continue
                out[key] = (key, row, path)
        except ResultsError as exc:
            skipped.append(str(exc))
    return list(out.values()), skipped


def compare(old: Recipe, new: Recipe, new_label: str, old_inspector: Any, new_inspector: Any, pool: SamplePool,
            results_db: str | Path | None, archive_root: str | Path | None,
            progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Comparison:
    parts, skipped = compared_parts(pool, old.name, results_db, archive_root)
    marked = set(pool.marked())
    comparison = Comparison(old.label, new_label, old.threshold, new.threshold, new.min_defect_area_px,
                            skipped=skipped)
    for i, (key, row, path) in enumerate(parts):
        checkpoint(cancel)
        try:
            image = load_image(path)
            a, b = old_inspector.inspect(image), new_inspector.inspect(image)
        except (ImageLoadError, OSError, ValueError, RecipeError) as exc:
            comparison.skipped.append(f"frame {row.get('frame_id')}: {exc}")
            continue
        comparison.parts.append(PartVerdicts(key, row.get("time"), row.get("frame_id"), str(row.get("verdict")),
                                             key in marked, a.verdict.value, float(a.score), b.verdict.value,
                                             float(b.score)))
        report(progress, "comparing", i + 1, len(parts))
    if has_golden(new):
        comparison.golden = run_golden(new, new_inspector)
    return comparison


# --- switching and rolling back -------------------------------------------------------------------------
def switch_to(candidate: ReteachCandidate, audit: AuditLog | None = None, role: str = "engineer") -> Path:
    """Save the candidate as the part's next version, audited; the caller then inspects with it."""
    folder = candidate.session.save(audit=None)
    if audit is not None:
        m = candidate.comparison.metrics()
        audit.record("recipe.retaught", candidate.session.result.recipe.label, candidate.old.label, str(folder),
                     role=role, note=f"taught from {len(candidate.samples)} pool samples ({candidate.false_rejects} "
                                     f"marked false rejects); on {m['compared']} archived parts NG {m['old_ng']} -> "
                                     f"{m['new_ng']}, {m['fixed']} false rejects fixed, {m['ng_now_ok']} unmarked NG "
                                     f"now OK", metrics=m, threshold=candidate.comparison.new_threshold)
    return folder


def rollback_target(current: str | Path | None) -> Path | None:
    """The version to go back to from ``current``: the one it was re-taught from, else the part's previous
    version; ``None`` where there is none (reads only ``recipe.json``)."""
    if not current:
        return None
    folder = Path(current)
    if not (folder / RECIPE_FILE).is_file():
        found = versions(folder)
        if not found:
            return None
        folder = found[-1][1]
    try:
        meta = json.loads((folder / RECIPE_FILE).read_text(encoding="utf-8"))
        src = ((meta.get("training") or {}).get("reteach") or {}).get("from_path")
    except (OSError, ValueError, AttributeError):
        src = None
    if src and (Path(src) / RECIPE_FILE).is_file():
        return Path(src)
    number = version_number(folder)
    older = [p for n, p in versions(folder.parent) if number is not None and n < number]
    return older[-1] if older else None


def taught_from(folder: str | Path) -> set[str]:
    """The pool samples a re-taught version was taught from (none for a version taught otherwise);
    reads only ``recipe.json``."""
    try:
        meta = json.loads((Path(folder) / RECIPE_FILE).read_text(encoding="utf-8"))
        return set(((meta.get("training") or {}).get("reteach") or {}).get("samples") or [])
    except (OSError, ValueError, AttributeError):
        return set()


def record_rollback(audit: AuditLog | None, current: str | Path, target: str | Path, role: str = "engineer") -> None:
    if audit is not None:
        from station.app.recipes import recipe_label

        audit.record("recipe.rollback", "inspection recipe", recipe_label(current), recipe_label(target), role=role,
                     note=f"rolled back from {current} to {target}")
