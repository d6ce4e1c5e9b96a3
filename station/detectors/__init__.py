"""Detectors behind one protocol, picked by name from a registry (see :mod:`station.detectors.base`)."""

from station.detectors.base import (
    Detector,
    DetectorError,
    DetectorInfo,
    Prediction,
    UnknownDetectorError,
    available_detectors,
    create_detector,
    detector_class,
    detector_info,
)

__all__ = [
    "Detector",
    "DetectorError",
    "DetectorInfo",
    "Prediction",
    "UnknownDetectorError",
    "available_detectors",
    "create_detector",
    "detector_class",
    "detector_info",
]
