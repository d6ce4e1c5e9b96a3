"""A tiny part for the re-teach tests: taught in the wizard's session with the test detector on small
synthetic images, then "run on the line": a good variant it rejects (the false reject to mark), a real
defect it rejects rightly, and an OK part, logged and archived as the live pipeline does."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from test_live_support import KIND, register

from station.app.audit import AuditLog
from station.app.teach_session import TeachSession
from station.core.golden import add_golden_part
from station.core.recipe import load_recipe
from station.detectors.runtime import load_inspector
from station.live.archive import ImageArchive
from station.live.results_db import ResultRow, ResultsLog

SIZE = 48


def good(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = np.zeros((SIZE, SIZE, 3), np.float32)
    base[:] = 110.0
    base[12:36, 12:36] = 150.0  # the part on its background
    return [np.clip(base + rng.normal(0, 4, base.shape[:2])[..., None], 0, 255).astype(np.uint8) for _ in range(n)]


def variant(seed: int = 50, brighter: int = 45) -> np.ndarray:
    """A good part the first teach never saw (a brighter label): rejected, wrongly."""
    im = good(1, seed)[0].astype(np.int16)
    im[4:12, 30:42] += brighter
    return np.clip(im, 0, 255).astype(np.uint8)


def defect(seed: int = 60) -> np.ndarray:
    """A real defect (a dark spot on the part): rejected, rightly, by every version."""
    im = good(1, seed)[0].astype(np.int16)
    im[18:30, 16:28] -= 110
    return np.clip(im, 0, 255).astype(np.uint8)


@dataclass
class Line:
    models: Path
    v1: Path
    db: Path
    archive: Path
    audit: AuditLog
    rows: dict[str, dict]  # "ok", "variant1".."variant3", "defect" -> the logged row (with its id)

    @property
    def variants(self) -> list[dict]:
        return [self.rows[f"variant{i}"] for i in (1, 2, 3)]


def taught_part(models: Path, audit: AuditLog) -> Path:
    """``models/part/v0001`` taught in a TeachSession (the wizard's model) with one golden part."""
    register()
    session = TeachSession(models_dir=models, part_name="part", detector_kind=KIND,
                           min_defect_area_px=12.0, validation_fraction=0.25)
    for i, im in enumerate(good(12, seed=1)):
        session.add_image(im, f"captured frame {i}")
    session.train(device="cpu")
    add_golden_part(session.result.recipe, "ok_ref", good(1, seed=99)[0], "OK")
    return session.save(audit)


def run_line(root: Path, models: Path | None = None, db: Path | None = None, archive: Path | None = None,
             audit: AuditLog | None = None) -> Line:
    """Teach, then inspect five parts with v1, logging and archiving as the pipeline does: an OK part,
    three of the new good variant and a defect. A per-pixel model learns a variant only from a few of it,
    and a re-teach holds one of the marked false rejects out for the threshold (the seeded split holds
    out the first marked, here the brightest, so the threshold covers all three)."""
    models, db = models or root / "models", db or root / "results.sqlite"
    audit = audit or AuditLog(root / "audit.jsonl", user="tester")
    v1 = taught_part(models, audit)
    recipe = load_recipe(v1)
    inspector = load_inspector(recipe, device="cpu")
    archive = ImageArchive(archive or root / "archive", quota_mb=16)
    rows = {}
    now = time.time() - 60.0
    with ResultsLog(db, durability="normal") as log:
        for i, (name, image) in enumerate((("ok", good(1, seed=70)[0]), ("variant1", variant(51, 52)),
                                             ("variant2", variant(52, 44)), ("variant3", variant(53, 40)),
                                             ("defect", defect()))):
            res = inspector.inspect(image)
            t = now + i
            path = archive.store(image, i + 1, res.verdict.value, t) if res.is_ng else None
            row = ResultRow(time=t, source="synthetic://test", frame_id=i + 1, verdict=res.verdict.value,
                            recipe=recipe.name, recipe_version=recipe.version, score=float(res.score),
                            threshold=recipe.threshold, image_path=str(path) if path else None)
            rid = log.record(row)
            rows[name] = {**row.__dict__, "id": rid}
    return Line(models, v1, db, archive.root, audit, rows)
