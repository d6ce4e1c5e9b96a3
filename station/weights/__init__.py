"""Backbone weights, honestly sourced: torchvision's published ImageNet weights (downloaded on first
use with torch.hub's hash check, or imported by hand on air-gapped PCs), explicitly allowed custom
state dicts, and seeded random weights for tests only. Recipes record which weights they were
taught with (see :mod:`station.weights.resolve`).

Nothing here imports torch until a function needs it.
"""

from __future__ import annotations

from station.weights.backbones import TAPS, BackboneTaps, backbone_taps
from station.weights.catalogue import BACKBONES, PublishedWeights, find_published, published_weights
from station.weights.errors import WeightsError
from station.weights.resolve import RANDOM, how_to_get, load_recorded, load_weights
from station.weights.state import file_sha256, random_state_dict, read_state_dict, tensor_fingerprint
from station.weights.store import HOME_ENV, StoredWeights, WeightsStore, station_home, weights_dir

__all__ = [
    "BACKBONES", "HOME_ENV", "RANDOM", "TAPS", "BackboneTaps", "PublishedWeights", "StoredWeights", "WeightsError",
    "WeightsStore", "backbone_taps",
    "file_sha256", "find_published", "how_to_get", "load_recorded", "load_weights", "published_weights",
    "random_state_dict", "read_state_dict", "station_home", "tensor_fingerprint", "weights_dir",
]
