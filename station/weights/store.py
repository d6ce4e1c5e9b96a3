"""The per-user store of backbone weights: download, import, look up -- all verified by hash.

Layout under :func:`weights_dir` (``$STATION_HOME/weights``; by default the platform's per-user data
folder, e.g. ``~/.local/share/station/weights``)::

    wide_resnet50_2-95faca4d.pth                  torchvision's file, under its published name
    custom-wide_resnet50_2-1a2b3c4d5e6f7a8b.pth   an imported custom state dict
    custom-wide_resnet50_2-1a2b3c4d5e6f7a8b.json  what it is: backbone, SHA-256, original name, date

Files are written to a temporary name and renamed into place, so an interrupted download or import
never leaves a half file under a valid name.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from station.core.home import ENV_HOME, default_home
from station.weights.catalogue import (
    PublishedWeights,
    check_backbone,
    published_by_file,
    published_by_sha256,
)
from station.weights.errors import WeightsError
from station.weights.state import file_sha256, infer_backbone, read_state_dict, require_fit

log = logging.getLogger(__name__)

HOME_ENV = ENV_HOME


def station_home() -> Path:
    """The station's per-user data folder: ``$STATION_HOME`` if set, else the platform's usual place
    (the same folder the application keeps its settings and models in)."""
    return default_home()


def weights_dir() -> Path:
    return station_home() / "weights"


@dataclass(frozen=True)
class StoredWeights:
    """A weights file in the store and what it is."""

    path: Path
    backbone: str
    source: str  # "torchvision" or "custom"
    name: str  # torchvision's enum member, or the custom file's original name
    sha256: str

    def info(self) -> dict[str, Any]:
        """The identity a recipe records (see :func:`station.weights.resolve.load_recorded`)."""
        return {"backbone": self.backbone, "source": self.source, "name": self.name,
                "sha256": self.sha256, "file": self.path.name}


class WeightsStore:
    """Backbone weights under one folder (default: :func:`weights_dir`)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else weights_dir()

    # --- torchvision's published files --------------------------------------------------------------
    def published_path(self, published: PublishedWeights) -> Path:
        return self.root / published.file

    def find_published(self, published: PublishedWeights) -> StoredWeights | None:
        """The published file from the store, or from torch's own download cache (verified), if there."""
        candidates = [self.published_path(published), _torch_hub_checkpoints() / published.file]
        for path in candidates:
            if path.is_file():
                sha = file_sha256(path)
                if not sha.startswith(published.hash_prefix):
                    log.warning("%s fails its published hash check (SHA-256 %s...); ignored", path, sha[:12])
                    continue
                return StoredWeights(path, published.backbone, "torchvision", published.name, sha)
        return None

    def download(self, published: PublishedWeights, progress: bool = True) -> StoredWeights:
        """Download torchvision's file with a progress bar and its hash-prefix check.

        Raises
        ------
        WeightsError
            If the download fails (no internet, proxy, disk full) or the file fails its hash check,
            saying how to import the file by hand instead.
        """
        import torch.hub

        self.root.mkdir(parents=True, exist_ok=True)
        target = self.published_path(published)
        tmp = self.root / f".download-{published.file}.part"
        log.info("downloading %s from %s", published.label, published.url)
        if progress:
            print(f"downloading {published.label} weights to {target}", file=sys.stderr)
        try:
            torch.hub.download_url_to_file(published.url, str(tmp), hash_prefix=published.hash_prefix,
                                           progress=progress)
            os.replace(tmp, target)
        except (OSError, RuntimeError, ValueError) as exc:  # URLError is an OSError; hash: RuntimeError
            tmp.unlink(missing_ok=True)
            reason = str(getattr(exc, "reason", "") or exc).strip().splitlines()[0]
            raise WeightsError(
                f"could not download the {published.label} weights from {published.url} ({reason}). "
                f"On a PC without internet access, fetch that file on another PC and run "
                f"`station weights import {published.file}`") from exc
        return StoredWeights(target, published.backbone, "torchvision", published.name, file_sha256(target))

    # --- import ---------------------------------------------------------------------------------------
    def import_file(self, path: str | os.PathLike[str], allow_custom: bool = False,
                    backbone: str | None = None) -> StoredWeights:
        """Copy a weights file into the store after checking it.

        One of torchvision's files (recognised by name or by its hash) must match its published hash.
        Any other state dict is refused unless ``allow_custom``; it must then fit ``backbone`` (or the
        one backbone it fits, when ``backbone`` is ``None``).
        """
        src = Path(path)
        if not src.is_file():
            raise WeightsError(f"{src}: weights file not found")
        sha = file_sha256(src)
        published = published_by_file(src.name)
        if published is not None and not sha.startswith(published.hash_prefix):
            raise WeightsError(
                f"{src}: named like torchvision's {published.label} file but its SHA-256 ({sha[:16]}...) "
                f"does not start with the published {published.hash_prefix}; the file is damaged or "
                f"altered -- download it again from {published.url}")
        published = published or published_by_sha256(sha)
        if published is not None:
            if backbone is not None and check_backbone(backbone) != published.backbone:
                raise WeightsError(f"{src}: is torchvision's {published.label} file, not {backbone} weights")
            require_fit(read_state_dict(src), published.backbone, str(src))
            target = self.published_path(published)
            if not (target.is_file() and file_sha256(target) == sha):
                self._copy_in(src, target)
            return StoredWeights(target, published.backbone, "torchvision", published.name, sha)
        if not allow_custom:
            raise WeightsError(
                f"{src}: not one of torchvision's published weight files (its SHA-256 {sha[:16]}... matches "
                f"none). Custom, fine-tuned or random weights change every result; to use them anyway, "
                f"import with --allow-custom")
        state = read_state_dict(src)
        if backbone is None:
            backbone = infer_backbone(state)
            if backbone is None:
                raise WeightsError(f"{src}: fits none of the known backbones; name one with --backbone")
        require_fit(state, check_backbone(backbone), str(src))
        suffix = ".safetensors" if src.suffix == ".safetensors" else ".pth"
        target = self.root / f"custom-{backbone}-{sha[:16]}{suffix}"
        if not (target.is_file() and file_sha256(target) == sha):
            self._copy_in(src, target)
        meta = {"backbone": backbone, "source": "custom", "name": src.name, "sha256": sha,
                "imported": datetime.now(timezone.utc).isoformat(timespec="seconds"), "from": str(src)}
        _write_json(target.with_suffix(".json"), meta)
        return StoredWeights(target, backbone, "custom", src.name, sha)

    def _copy_in(self, src: Path, target: Path) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".import-", dir=self.root)
        os.close(fd)
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # --- listing and lookup ---------------------------------------------------------------------------
    def custom(self) -> list[StoredWeights]:
        """Imported custom weights whose file is present (a file without its description is skipped)."""
        out = []
        if not self.root.is_dir():
            return out
        for meta_path in sorted(self.root.glob("custom-*.json")):
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                files = [p for p in meta_path.parent.glob(meta_path.stem + ".*") if p.suffix != ".json"]
                if files and isinstance(meta.get("sha256"), str):
                    out.append(StoredWeights(files[0], meta["backbone"], "custom", str(meta.get("name", "")),
                                             meta["sha256"]))
            except (OSError, ValueError, KeyError) as exc:
                log.warning("%s: unreadable description of custom weights (%s); ignored", meta_path, exc)
        return out

    def find_custom(self, key: str, backbone: str | None = None) -> StoredWeights:
        """Custom weights by SHA-256 (or a prefix of at least 8 digits), stored file name or original name."""
        key = key.removeprefix("custom:")
        matches = [w for w in self.custom()
                   if (backbone is None or w.backbone == backbone)
                   and ((len(key) >= 8 and w.sha256.startswith(key.lower())) or key in (w.path.name, w.name))]
        if len({w.sha256 for w in matches}) == 1:
            return matches[0]
        if matches:
            raise WeightsError(f"custom weights {key!r} are ambiguous; give more of the SHA-256: "
                               + ", ".join(w.sha256[:16] for w in matches))
        raise WeightsError(f"no imported custom weights {key!r}"
                           f"{f' for {backbone}' if backbone else ''} in {self.root}; import the file with "
                           f"`station weights import <file> --allow-custom` (see `station weights list`)")

    def find_by_sha256(self, sha256: str) -> StoredWeights | None:
        published = published_by_sha256(sha256)
        if published is not None:
            found = self.find_published(published)
            if found is not None and found.sha256 == sha256:
                return found
        for w in self.custom():
            if w.sha256 == sha256:
                return w
        return None


def _torch_hub_checkpoints() -> Path:
    """Where torchvision itself caches downloaded weights (reused, never written by the station)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
