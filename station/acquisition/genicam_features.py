"""GenICam features as the user sees them: reading one (present, access, range, unit, choices) and
writing one with the reason when the camera refuses it. Works on any GenApi node map."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from station.acquisition.base import SourceError
from station.acquisition.gentl import first_line, safe_attr

# The standard (SFNC) features the station reads and sets, in the order they are listed.
STANDARD_FEATURES = (
    "DeviceVendorName", "DeviceModelName", "DeviceSerialNumber", "DeviceFirmwareVersion",
    "PixelFormat", "Width", "Height", "OffsetX", "OffsetY",
    "ExposureTime", "ExposureAuto", "Gain", "GainAuto", "AcquisitionFrameRate", "AcquisitionFrameRateEnable",
    "TriggerMode", "TriggerSource", "TriggerSoftware", "DeviceTemperature",
)
# URI option -> feature; applied in this order (the format and size before the offsets that depend on them).
SETTING_FEATURES = {
    "pixel_format": "PixelFormat",
    "width": "Width",
    "height": "Height",
    "offset_x": "OffsetX",
    "offset_y": "OffsetY",
    "exposure": "ExposureTime",
    "gain": "Gain",
    "fps": "AcquisitionFrameRate",
}
_ACCESS = {0: "not implemented", 1: "not available", 2: "write-only", 3: "read-only", 4: "read-write"}


@dataclass
class FeatureInfo:
    """One device feature as the user sees it."""

    name: str
    present: bool
    value: Any = None
    access: str = "not available"
    kind: str = ""  # Integer, Float, Enumeration, Boolean, String, Command
    minimum: float | None = None
    maximum: float | None = None
    increment: float | None = None
    unit: str = ""
    choices: list[str] = field(default_factory=list)

    @property
    def writable(self) -> bool:
        return self.access in ("read-write", "write-only")

    def describe(self) -> str:
        if not self.present:
            return "not available on this device"
        text = f"{self.value}{' ' + self.unit if self.unit else ''} ({self.access}"
        if self.minimum is not None and self.maximum is not None:
            text += f", {self.minimum:g}..{self.maximum:g}"
        if self.choices:
            text += f", one of {', '.join(self.choices)}"
        return text + ")"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


class FeatureError(SourceError):
    """A feature is missing, read-only, or the value is out of its range."""


def _node_kind(node: Any) -> str:
    name = type(node).__name__  # IInteger, IFloat, IEnumeration, IBoolean, IString, ICommand
    return name[1:] if name.startswith("I") else name


def read_feature(node_map: Any, name: str) -> FeatureInfo:
    """The feature ``name`` of a node map, or ``present=False``; never raises."""
    try:
        if not node_map.has_node(name):
            return FeatureInfo(name, present=False)
        node = node_map.get_node(name)
        access = _ACCESS.get(int(node.get_access_mode()), "unknown")
    except Exception:  # noqa: BLE001
        return FeatureInfo(name, present=False)
    if access in ("not implemented", "not available"):
        return FeatureInfo(name, present=False, access=access)
    info = FeatureInfo(name, present=True, access=access, kind=_node_kind(node))
    if info.kind == "Command":
        return info
    if access != "write-only":
        info.value = safe_attr(node, "value", None)
    if info.kind in ("Integer", "Float"):
        info.minimum = safe_attr(node, "min", None)
        info.maximum = safe_attr(node, "max", None)
        info.increment = safe_attr(node, "inc", None) if info.kind == "Integer" else None
        info.unit = str(safe_attr(node, "unit", ""))
    elif info.kind == "Enumeration":
        info.choices = [str(c) for c in safe_attr(node, "symbolics", ())]
    return info


def write_feature(node_map: Any, name: str, value: Any) -> Any:
    """Set a feature, checking presence, access and range first; returns the value read back.

    Raises
    ------
    FeatureError
        With the reason (missing, read-only, out of range, not one of the choices).
    """
    info = read_feature(node_map, name)
    if not info.present:
        raise FeatureError(f"{name}: not available on this camera")
    if not info.writable:
        raise FeatureError(f"{name}: {info.access} now (stop acquisition to change it?)")
    node = node_map.get_node(name)
    try:
        if info.kind == "Command":
            node.execute()
            return None
        if info.kind == "Enumeration":
            value = str(value)
            if info.choices and value not in info.choices:
                raise FeatureError(f"{name}: {value!r} is not offered; choose one of {', '.join(info.choices)}")
        elif info.kind in ("Integer", "Float"):
            value = int(float(value)) if info.kind == "Integer" else float(value)
            lo, hi = info.minimum, info.maximum
            if lo is not None and hi is not None and not lo <= value <= hi:
                raise FeatureError(f"{name}: {value} is outside {lo:g}..{hi:g}{' ' + info.unit if info.unit else ''}")
            if info.kind == "Integer" and info.increment and lo is not None:
                value = int(lo + round((value - lo) / info.increment) * info.increment)
        elif info.kind == "Boolean":
            value = str(value).lower() in ("1", "true", "on", "yes")
        node.value = value
        return safe_attr(node, "value", value)
    except FeatureError:
        raise
    except (TypeError, ValueError) as exc:
        raise FeatureError(f"{name}: bad value {value!r} ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - GenICam's LogicalError, OutOfRange, AccessException ...
        raise FeatureError(f"{name}: the camera refused {value!r} ({first_line(exc)})") from exc


@dataclass
class SettingResult:
    """How one requested setting went: applied (with the value read back) or why not."""

    option: str
    feature: str
    requested: Any
    applied: Any = None
    ok: bool = False
    message: str = ""


# --- the source -----------------------------------------------------------------------------------------
