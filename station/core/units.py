"""Defect areas in pixels or mm²: the one conversion, used by the recipe, the regions, the teach-in
wizard, the threshold panel and the command line.

``unit`` is ``"px"`` or ``"mm2"``; a conversion to or from mm² needs the pixel size (mm per pixel,
square pixels) and says so in one line when it is missing.
"""

from __future__ import annotations

AREA_UNITS = {"px": "px", "mm2": "mm²"}  # code -> how it is shown


def _pixel_size(pixel_size_mm: float | None) -> float:
    if not pixel_size_mm or pixel_size_mm <= 0:
        raise ValueError("areas in mm² need the pixel size (mm per pixel)")
    return float(pixel_size_mm)


def px_to_mm2(area_px: float, pixel_size_mm: float | None) -> float:
    size = _pixel_size(pixel_size_mm)
    return float(area_px) * size * size


def mm2_to_px(area_mm2: float, pixel_size_mm: float | None) -> float:
    size = _pixel_size(pixel_size_mm)
    return float(area_mm2) / (size * size)


def area_to_px(value: float, unit: str, pixel_size_mm: float | None = None) -> float:
    """``value`` given in ``unit`` as pixels."""
    if unit == "px":
        return float(value)
    if unit == "mm2":
        return mm2_to_px(value, pixel_size_mm)
    raise ValueError(f"unknown area unit {unit!r}; use one of {', '.join(AREA_UNITS)}")


def area_from_px(area_px: float, unit: str, pixel_size_mm: float | None = None) -> float:
    """``area_px`` pixels in ``unit``."""
    if unit == "px":
        return float(area_px)
    if unit == "mm2":
        return px_to_mm2(area_px, pixel_size_mm)
    raise ValueError(f"unknown area unit {unit!r}; use one of {', '.join(AREA_UNITS)}")
