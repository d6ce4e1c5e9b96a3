"""PatchCore (Roth et al. 2022): pretrained CNN patch features and a nearest-neighbour memory bank.

The registry target is ``station.detectors.patchcore:PatchCore``; importing this package imports
torch.
"""

from __future__ import annotations

from station.detectors.patchcore.detector import PatchCore

__all__ = ["PatchCore"]
