"""A part's good-sample pool: the good samples its recipes are taught from, and the false rejects an
engineer marked as good in the results history.

Where it lives: ``<models>/<part>/pool/`` beside the part's versions (``versions()`` ignores it), one
``pool.json`` manifest and the images the pool owns::

    models/<part>/pool/pool.json        every sample: id, kind ("teach" / "false_reject"), file, origin
    models/<part>/pool/images/*.png     captured teach samples and copies of marked false rejects

A teach sample imported from a folder is referenced by its path, not copied (bottle's 209 training
images would be ~300 MB again); captured samples exist nowhere else, so they are written here. The
demo part's samples are rendered again from their seed and index (``synthetic://demo?...&index=N``). A
marked false reject is *copied* out of the NG archive, whose disk quota deletes the oldest images.

The mark itself is the pool entry: one home, written atomically (temporary file, then rename), so it
survives a restart and a crash never leaves half a manifest. Every mark and unmark is audited.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from station.app.audit import AuditLog
from station.core.images import ImageLoadError, load_image, save_image

POOL_DIR = "pool"
MANIFEST = "pool.json"
TEACH, FALSE_REJECT = "teach", "false_reject"
SYNTHETIC = "synthetic://"


class PoolError(ValueError):
    """A sample cannot be marked or the pool cannot be read; the message says why."""


@dataclass(frozen=True)
class PoolSample:
    id: str
    kind: str  # TEACH or FALSE_REJECT
    file: str  # relative to the pool folder (owned by the pool) or an absolute path (a teach file)
    origin: str = ""
    added: str = ""
    by: str = ""  # who marked it (false rejects)
    result: dict[str, Any] = field(default_factory=dict)  # the results row a false reject came from


def result_key(row: dict[str, Any]) -> str:
    """Identifies a results row across restarts: its id with its time (ids alone repeat when the
    database is replaced)."""
    return f"{row.get('id')}@{float(row.get('time') or 0.0):.3f}"


def part_of(row: dict[str, Any]) -> str | None:
    return row.get("recipe") or None


class SamplePool:
    """The pool of the part in ``part_dir`` (created on first write)."""

    def __init__(self, part_dir: str | Path) -> None:
        self.part_dir = Path(part_dir)
        self.folder = self.part_dir / POOL_DIR

    # --- reading ----------------------------------------------------------------------------------
    def samples(self) -> list[PoolSample]:
        path = self.folder / MANIFEST
        if not path.is_file():
            return []
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            names = set(PoolSample.__dataclass_fields__)
            return [PoolSample(**{k: v for k, v in d.items() if k in names}) for d in data.get("samples", [])]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError, AttributeError) as exc:
            raise PoolError(f"{path}: the good-sample pool is unreadable ({exc})") from exc

    def teach_samples(self) -> list[PoolSample]:
        return [s for s in self.samples() if s.kind == TEACH]

    def false_rejects(self) -> list[PoolSample]:
        return [s for s in self.samples() if s.kind == FALSE_REJECT]

    def marked(self) -> dict[str, PoolSample]:
        """The marked false rejects by :func:`result_key` of their row."""
        return {s.result["key"]: s for s in self.false_rejects() if s.result.get("key")}

    @staticmethod
    def _rendered(file: str) -> np.ndarray | None:
        """The demo part's sample ``synthetic://demo?seed=S&size=N&index=I``, rendered; None for a file."""
        if not file.startswith(SYNTHETIC):
            return None
        from urllib.parse import parse_qs, urlsplit

        from station.acquisition.synthetic import SyntheticPart

        q = {k: int(v[-1]) for k, v in parse_qs(urlsplit(file).query).items()}
        return SyntheticPart(seed=q.get("seed", 0), size=q.get("size", 256)).render(q["index"]).image

    def path_of(self, sample: PoolSample) -> Path:
        p = Path(sample.file)
        return p if p.is_absolute() else self.folder / p

    def load(self, samples: Sequence[PoolSample] | None = None) -> tuple[list[np.ndarray], list[PoolSample], list[str]]:
        """The images of ``samples`` (all by default) that can be read, the samples they belong to, and
        one line per sample that cannot (moved, deleted, unreadable) -- never an exception for those."""
        images, used, problems = [], [], []
        for s in self.samples() if samples is None else samples:
            path = self.path_of(s)
            try:
                rendered = self._rendered(s.file)
                images.append(rendered if rendered is not None else load_image(path))
                used.append(s)
            except (ImageLoadError, OSError, KeyError, ValueError) as exc:
                problems.append(f"{s.kind.replace('_', ' ')} sample {s.id} ({path}): {exc}")
        return images, used, problems

    def describe(self) -> str:
        try:
            samples = self.samples()
        except PoolError as exc:
            return str(exc)
        n_fr = sum(s.kind == FALSE_REJECT for s in samples)
        return f"{len(samples) - n_fr} teach samples + {n_fr} marked false reject{'s' if n_fr != 1 else ''}"

    # --- writing ----------------------------------------------------------------------------------
    def _write(self, samples: Sequence[PoolSample]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / (MANIFEST + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"samples": [asdict(s) for s in samples]}, f, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.folder / MANIFEST)

    def record_teach(self, images: Sequence[np.ndarray], origins: Sequence[str]) -> int:
        """Make ``images`` the pool's teach samples (a new teach-in replaces the old ones; marked false
        rejects stay). An origin that is an image file is referenced; any other sample is written."""
        kept = [s for s in self.samples() if s.kind != TEACH]
        old_files = {self.path_of(s) for s in self.samples() if s.kind == TEACH and not Path(s.file).is_absolute()}
        now = _now()
        new: list[PoolSample] = []
        for i, (image, origin) in enumerate(zip(images, origins, strict=True)):
            sid = f"t{i + 1:04d}"
            p = Path(origin)
            if p.is_file():
                file = str(p.resolve())
            else:
                file = f"images/teach_{sid}.png"
                save_image(self.folder / file, image)
                old_files.discard(self.folder / file)
            new.append(PoolSample(sid, TEACH, file, origin, now))
        self._write(new + kept)
        for stale in old_files:
            stale.unlink(missing_ok=True)
        return len(new)

    def record_rendered(self, seed: int, size: int, indices: Sequence[int]) -> int:
        """Make the demo part's rendered samples the pool's teach samples (nothing written but the list)."""
        kept = [s for s in self.samples() if s.kind != TEACH]
        now = _now()
        new = [PoolSample(f"t{k + 1:04d}", TEACH, f"{SYNTHETIC}demo?seed={seed}&size={size}&index={i}",
                          f"synthetic demo part {i}", now) for k, i in enumerate(indices)]
        self._write(new + kept)
        return len(new)

    def mark(self, row: dict[str, Any], image_path: Path, audit: AuditLog | None = None,
             role: str = "engineer") -> PoolSample:
        """Mark the NG row ``row`` (its archived image at ``image_path``) as a false reject: its image
        is copied into the pool, audited. Marking a row twice returns the first mark."""
        if str(row.get("verdict")) != "NG":
            raise PoolError(f"frame {row.get('frame_id')} was judged {row.get('verdict')}; only NG parts are "
                            f"marked as false rejects")
        key = result_key(row)
        done = self.marked().get(key)
        if done is not None:
            return done
        sid = f"fr{row.get('id')}_{int(float(row.get('time') or 0))}"
        file = f"images/{sid}.png"
        self.folder.joinpath("images").mkdir(parents=True, exist_ok=True)
        try:
            load_image(image_path)  # a broken archive file must not become a training sample
            shutil.copyfile(image_path, self.folder / file)
        except (ImageLoadError, OSError) as exc:
            raise PoolError(f"the archived image {image_path} cannot be used: {exc}") from exc
        result = {"key": key, "id": row.get("id"), "time": row.get("time"), "frame_id": row.get("frame_id"),
                  "source": row.get("source"), "recipe": row.get("recipe"), "recipe_version": row.get("recipe_version"),
                  "score": row.get("score"), "threshold": row.get("threshold"), "archived": str(image_path)}
        sample = PoolSample(sid, FALSE_REJECT, file, str(image_path), _now(), audit.user if audit else "", result)
        self._write([*self.samples(), sample])
        if audit is not None:
            audit.record("pool.false_reject", _label(row), "NG", "good", role=role,
                         note=f"frame {row.get('frame_id')} marked as a false reject; joins the good-sample pool of "
                              f"{self.part_dir.name}", sample=sid, result=result)
        return sample

    def unmark(self, row: dict[str, Any], audit: AuditLog | None = None, role: str = "engineer") -> bool:
        key = result_key(row)
        samples = self.samples()
        gone = [s for s in samples if s.kind == FALSE_REJECT and s.result.get("key") == key]
        if not gone:
            return False
        self._write([s for s in samples if s not in gone])
        for s in gone:
            self.path_of(s).unlink(missing_ok=True)
        if audit is not None:
            audit.record("pool.false_reject_removed", _label(row), "good", "NG", role=role,
                         note=f"frame {row.get('frame_id')} taken out of the good-sample pool", sample=gone[0].id)
        return True


def _label(row: dict[str, Any]) -> str:
    v = row.get("recipe_version")
    return f"{row.get('recipe')} v{v}" if v is not None else str(row.get("recipe"))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def pool_for_row(models_dir: str | Path, row: dict[str, Any]) -> SamplePool:
    """The pool of the part that judged ``row``."""
    part = part_of(row)
    if not part:
        raise PoolError(f"frame {row.get('frame_id')} has no recipe recorded; it cannot join a part's pool")
    folder = Path(models_dir) / part
    if not folder.is_dir():
        raise PoolError(f"the part {part} is not in {models_dir} (its recipe was moved or deleted)")
    return SamplePool(folder)
