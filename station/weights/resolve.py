"""From a weights choice (``"imagenet"``, ``"random"``, an imported file) to verified tensors, and back
from the identity a recipe recorded to the very same tensors.

The identity (``weights_info``) is a small dict stored in every recipe::

    {"backbone": "wide_resnet50_2", "source": "torchvision", "name": "IMAGENET1K_V1",
     "sha256": "95faca4d...", "file": "wide_resnet50_2-95faca4d.pth"}

``source`` is ``"torchvision"`` (published ImageNet weights), ``"custom"`` (an imported state dict) or
``"random"`` (seeded random initialisation, asked for explicitly; ``sha256`` is then a fingerprint of
the tensors). Loading a recipe finds the weights by that SHA-256 and refuses anything else.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from station.weights.catalogue import PublishedWeights, check_backbone, find_published, published_by_sha256
from station.weights.errors import WeightsError
from station.weights.state import (
    file_sha256,
    random_state_dict,
    read_state_dict,
    require_fit,
    tensor_fingerprint,
)
from station.weights.store import StoredWeights, WeightsStore

log = logging.getLogger(__name__)

RANDOM = "random"
_PUBLISHED_ALIASES = ("imagenet", "default", "pretrained")


def how_to_get(backbone: str) -> str:
    published = find_published(backbone)
    return (f"download them with `station weights download --backbone {backbone}` (needs internet), or on "
            f"an air-gapped PC fetch {published.url} elsewhere and run `station weights import "
            f"{published.file}`")


def load_weights(
    backbone: str,
    spec: str = "imagenet",
    *,
    seed: int = 0,
    store: WeightsStore | None = None,
    allow_download: bool = True,
    progress: bool = True,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The state dict for ``spec`` and its identity.

    ``spec``: ``"imagenet"`` (the paper's torchvision weights), a torchvision enum member such as
    ``"IMAGENET1K_V2"``, ``"random"`` (seeded random init, tests only), ``"custom:<sha256 prefix>"``,
    the name of imported custom weights, or the path of a weights file already imported (or one of
    torchvision's files, which is verified and imported on the spot).

    Raises
    ------
    WeightsError
        If the weights are not available, saying how to download or import them.
    """
    check_backbone(backbone)
    store = store or WeightsStore()
    spec = str(spec or "imagenet").strip()
    if spec.lower() == RANDOM:
        state = random_state_dict(backbone, seed)
        info = {"backbone": backbone, "source": RANDOM, "name": f"seed {int(seed)}", "seed": int(seed),
                "sha256": tensor_fingerprint(state), "file": None}
        log.warning("using RANDOM %s weights (seed %d): for tests only, not pretrained", backbone, seed)
        return state, info
    if spec.lower() in _PUBLISHED_ALIASES or spec.upper().rsplit(".", 1)[-1].startswith("IMAGENET"):
        published = find_published(backbone, spec)
        found = _published_file(store, published, allow_download, progress,
                                f"the {published.label} weights are not in {store.root}")
        return _read(found, backbone), found.info()
    path = Path(spec).expanduser()
    if path.is_file():
        sha = file_sha256(path)
        found = store.find_by_sha256(sha)
        if found is None and published_by_sha256(sha) is not None:
            found = store.import_file(path, backbone=backbone)
        if found is None:
            raise WeightsError(f"{path}: not imported into the weights store; run `station weights import "
                               f"{path} --allow-custom --backbone {backbone}` first (custom weights must be "
                               f"imported explicitly)")
    else:
        found = store.find_custom(spec, backbone)
    if found.backbone != backbone:
        raise WeightsError(f"{found.path.name}: {found.backbone} weights, but the detector uses {backbone}")
    return _read(found, backbone), found.info()


def load_recorded(info: dict[str, Any], store: WeightsStore | None = None,
                  allow_download: bool = True, progress: bool = True) -> dict[str, Any]:
    """The state dict a recipe was taught with, identified by ``info``; never a different one.

    Raises
    ------
    WeightsError
        If those weights are not present (saying how to get them) or differ from the recorded ones.
    """
    store = store or WeightsStore()
    try:
        backbone = check_backbone(str(info["backbone"]))
        source = str(info["source"])
        sha = str(info["sha256"])
    except (KeyError, TypeError) as exc:
        raise WeightsError(f"the recipe's weights record is incomplete ({info!r}); teach the part again") from exc
    label = f"{backbone} {info.get('name', '')} ({source}, SHA-256 {sha[:16]}...)"
    if source == RANDOM:
        state = random_state_dict(backbone, int(info.get("seed", 0)))
        if tensor_fingerprint(state) != sha:
            raise WeightsError(f"the random weights {label} cannot be reproduced by this torch version; "
                               f"teach the part again")
        return state
    if source == "torchvision":
        published = published_by_sha256(sha)
        if published is None or published.backbone != backbone:
            raise WeightsError(f"the recipe names torchvision weights {label} that torchvision does not publish")
        found = _published_file(store, published, allow_download, progress,
                                f"the recipe was taught with {label}, which is not in {store.root}")
    elif source == "custom":
        found = store.find_by_sha256(sha)
        if found is None:
            raise WeightsError(
                f"the recipe was taught with custom weights {label}, which are not in {store.root}; import "
                f"that file with `station weights import <file> --allow-custom --backbone {backbone}`")
    else:
        raise WeightsError(f"the recipe's weights have an unknown source {source!r}; teach the part again")
    if found.sha256 != sha:
        raise WeightsError(f"the stored weights {found.path} differ from the {label} the recipe was taught "
                           f"with (SHA-256 {found.sha256[:16]}...); results would not be comparable")
    return _read(found, backbone)


def _published_file(store: WeightsStore, published: PublishedWeights, allow_download: bool, progress: bool,
                    missing: str) -> StoredWeights:
    """The stored file of torchvision's ``published`` weights, downloaded where allowed; else a
    ``WeightsError`` of ``missing`` and how to get them."""
    found = store.find_published(published)
    if found is None:
        if not allow_download:
            raise WeightsError(f"{missing}; " + how_to_get(published.backbone))
        found = store.download(published, progress=progress)
    return found


def _read(found: StoredWeights, backbone: str) -> dict[str, Any]:
    state = read_state_dict(found.path)
    require_fit(state, backbone, str(found.path))
    return state
