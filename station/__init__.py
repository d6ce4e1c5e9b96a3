"""Open-source visual inspection station.

The package is split so that everything but :mod:`station.gui` runs without a screen:

- :mod:`station.core` -- images, datasets, defect regions, threshold estimation, metrics, recipes
- :mod:`station.detectors` -- the ``Detector`` protocol, its registry and the detectors
- :mod:`station.cli` -- the ``station`` command
"""

from __future__ import annotations

__version__ = "0.1.0"
