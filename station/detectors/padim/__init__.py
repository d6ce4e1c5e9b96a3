"""PaDiM (Defard et al. 2021): per-position Gaussians over pretrained CNN features, Mahalanobis maps.

The registry target is ``station.detectors.padim:PaDiM``; importing this package imports torch.
"""

from __future__ import annotations

from station.detectors.padim.detector import PaDiM

__all__ = ["PaDiM"]
