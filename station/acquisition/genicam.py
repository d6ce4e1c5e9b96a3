"""GenICam cameras through ``harvesters``: discovery, features, acquisition, fault recovery.

URI: ``genicam://<serial | id | user name | model>?cti=<path>[:<path>...]&pixel_format=Mono8&width=640
&height=480&offset_x=0&offset_y=0&exposure=5000&gain=0&fps=10&trigger=off|software|Line1&timeout=1
&lost_after=3&output=native|rgb|gray``. An empty target (``genicam://``) takes the first device.

GenTL producers (``.cti`` files) are found, in order, from the URI's ``cti=``, the
``GENICAM_GENTL64_PATH`` folders, and -- when neither names one -- the simulated ``viky.cti`` that
ships inside the ``genicam`` package, so every machine has a camera to try.

A GenTL producer is loaded once per process (a second ``Harvester`` on the same ``.cti`` sees no
devices), so every source and listing share one :class:`GenTLHub`. Looking for a camera that came
back re-scans the interfaces without closing the cameras that are running; a full refresh (loading
a new producer) invalidates every open acquirer, and the sources notice that and reconnect.

Faults: a source whose device fails (an error while fetching, no frames and no answer to a feature
read for ``lost_after`` seconds, or an acquirer invalidated underneath it) goes ``lost``; each later
:meth:`GenICamSource.next_frame` call retries, with back-off from 0.5 s up to 10 s, re-applying the
requested settings (``reconnecting`` while it tries, ``acquiring`` once frames flow again). The
process never crashes and no call blocks for more than its timeout plus one attempt.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from station.acquisition.base import Frame, SourceError, SourceState, SourceURI
from station.acquisition.pixels import OutputMode, PixelFormatError, convert

log = logging.getLogger(__name__)

ENV_PRODUCER_PATH = "GENICAM_GENTL64_PATH"

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
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 10.0


def simulated_producer() -> Path | None:
    """The ``viky.cti`` simulator shipped next to the ``genicam`` package, if installed."""
    try:
        import genicam
    except ImportError:
        return None
    path = Path(genicam.__file__).resolve().parent / "viky.cti"
    return path if path.is_file() else None


def producer_files(explicit: Iterable[str | os.PathLike[str]] = (), use_env: bool = True,
                   fallback: bool = True) -> list[Path]:
    """The ``.cti`` files to load: ``explicit`` ones (files, or folders holding ``.cti`` files), then
    those in the ``GENICAM_GENTL64_PATH`` folders, else the simulated camera.

    Raises
    ------
    SourceError
        If an explicitly named file or folder does not exist or holds no producer.
    """
    found: list[Path] = []
    for item in explicit:
        p = Path(item).expanduser()
        if p.is_dir():
            ctis = sorted(p.glob("*.cti"))
            if not ctis:
                raise SourceError(f"{p}: no GenTL producer (.cti file) in this folder")
            found.extend(ctis)
        elif p.is_file():
            found.append(p)
        else:
            raise SourceError(f"{p}: GenTL producer not found")
    if use_env and not found:
        for folder in filter(None, os.environ.get(ENV_PRODUCER_PATH, "").split(os.pathsep)):
            d = Path(folder)
            if d.is_dir():
                found.extend(sorted(d.glob("*.cti")))
            elif d.suffix == ".cti" and d.is_file():
                found.append(d)
    if not found and fallback:
        sim = simulated_producer()
        if sim is not None:
            found.append(sim)
    unique: list[Path] = []
    for p in found:
        if p.resolve() not in [u.resolve() for u in unique]:
            unique.append(p)
    return unique


@dataclass(frozen=True)
class DeviceDescription:
    """What a producer says about one device, before it is opened."""

    id: str
    vendor: str
    model: str
    serial: str
    user_name: str
    tl_type: str
    access: str  # e.g. "available", "busy"
    display_name: str

    def matches(self, selector: str) -> bool:
        return selector in (self.serial, self.id, self.user_name) and selector != ""

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "vendor": self.vendor, "model": self.model, "serial": self.serial,
                "user_name": self.user_name, "tl_type": self.tl_type, "access": self.access,
                "display_name": self.display_name}


_ACCESS_STATUS = {0: "unknown", 1: "available", 2: "read-only", 3: "no access", 4: "busy",
                  5: "open read-write", 6: "open read-only"}


def _safe(obj: Any, attr: str, default: Any = "") -> Any:
    """An attribute that a producer may not implement (GenTL raises instead of returning nothing)."""
    try:
        value = getattr(obj, attr)
    except Exception:  # noqa: BLE001 - GenTL's NotAvailable/NotImplemented and SWIG errors alike
        return default
    return default if value is None else value


def _describe(info: Any) -> DeviceDescription:
    status = _safe(info, "access_status", 0)
    return DeviceDescription(
        id=str(_safe(info, "id_")), vendor=str(_safe(info, "vendor")), model=str(_safe(info, "model")),
        serial=str(_safe(info, "serial_number")), user_name=str(_safe(info, "user_defined_name")),
        tl_type=str(_safe(info, "tl_type")), access=_ACCESS_STATUS.get(int(status), str(status)),
        display_name=str(_safe(info, "display_name")))


class GenTLHub:
    """The process's one ``Harvester``: producers, the device list, and opening devices.

    All harvester-level calls go through one lock; fetching from an open acquirer does not.
    """

    _instance: GenTLHub | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        self._harvester: Any = None
        self._files: list[Path] = []
        self._lock = threading.RLock()
        self.generation = 0  # bumped whenever the device list is rebuilt (open acquirers die then)

    @classmethod
    def shared(cls) -> GenTLHub:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
                atexit.register(cls._instance._close_quietly)
            return cls._instance

    def _ensure(self, files: Sequence[Path]) -> None:
        from harvesters.core import Harvester

        if self._harvester is None:
            self._harvester = Harvester()
        missing = [f for f in files if f.resolve() not in [g.resolve() for g in self._files]]
        if not missing and self.generation:
            return
        for f in missing:
            try:
                self._harvester.add_file(str(f), check_existence=True, check_validity=True)
            except (OSError, FileNotFoundError, ValueError) as exc:
                raise SourceError(f"{f}: not a usable GenTL producer ({exc})") from exc
            self._files.append(f)
        self._update()

    def _update(self) -> None:
        self._harvester.update()
        self.generation += 1

    def devices(self, files: Sequence[Path], refresh: bool = False) -> list[DeviceDescription]:
        """The devices the producers in ``files`` offer (``refresh`` enumerates them again)."""
        with self._lock:
            self._ensure(files)
            if refresh:
                self.rescan()
            return [_describe(info) for info in self._harvester.device_info_list]

    def rescan(self) -> None:
        """Enumerate the devices again without closing the open ones.

        ``Harvester.update()`` would release every producer and with it every open camera; asking each
        interface for its device list (GenTL's ``IFUpdateDeviceList``) keeps open devices streaming, so
        a camera plugged back in is found without interrupting the others. This uses two private
        attributes of harvesters 1.4.3 (pinned); if they change, it falls back to a full refresh.
        """
        from harvesters.core import DeviceInfo

        with self._lock:
            if self._harvester is None:
                return
            try:
                fresh = []
                for iface in self._harvester._ifaces:  # noqa: SLF001 - see the docstring
                    iface.module.update_device_info_list(500)
                    fresh.extend(DeviceInfo(module=info, parent=iface) for info in iface.module.device_info_list)
                self._harvester._device_info_list[:] = fresh  # noqa: SLF001
            except Exception as exc:  # noqa: BLE001
                log.warning("device rescan failed (%s); re-opening the producers", _first_line(exc))
                self._update()

    def refresh(self) -> None:
        """Re-open the producers and enumerate again: every open acquirer becomes invalid."""
        with self._lock:
            if self._harvester is not None:
                self._update()

    def open(self, selector: str, files: Sequence[Path]) -> tuple[Any, DeviceDescription]:
        """Open the device named by ``selector`` (serial, id, user name, or a model of which exactly
        one device is present; empty: the first device). Returns ``(ImageAcquirer, description)``."""
        with self._lock:
            self._ensure(files)
            infos = list(self._harvester.device_info_list)
            described = [_describe(i) for i in infos]
            index = _select(selector, described, files)
            try:
                ia = self._harvester.create(infos[index])
            except Exception as exc:  # noqa: BLE001 - GenTL raises its own hierarchy (busy, access denied ...)
                d = described[index]
                raise SourceError(f"camera {d.display_name or d.id} (serial {d.serial}) could not be opened "
                                  f"({d.access}): {_first_line(exc)}") from exc
            return ia, described[index]

    def _close_quietly(self) -> None:
        try:
            self.close()
        except Exception as exc:  # noqa: BLE001 - at interpreter exit there is nobody left to tell
            log.debug("closing the GenTL hub: %s", exc)

    def close(self) -> None:
        """Release every acquirer and producer (tests, shutdown)."""
        with self._lock:
            if self._harvester is not None:
                self._harvester.reset()
                self._harvester = None
                self._files = []
                self.generation = 0


def _select(selector: str, devices: list[DeviceDescription], files: Sequence[Path]) -> int:
    if not devices:
        names = ", ".join(str(f) for f in files) or "none"
        raise SourceError(f"no GenICam camera found (producers: {names}); check the cable, the power and "
                          f"the producer (cti= or {ENV_PRODUCER_PATH})")
    if not selector:
        return 0
    for i, d in enumerate(devices):
        if d.matches(selector):
            return i
    by_model = [i for i, d in enumerate(devices) if d.model == selector]
    if len(by_model) == 1:
        return by_model[0]
    listing = "; ".join(f"serial {d.serial} ({d.vendor} {d.model}, id {d.id})" for d in devices)
    if by_model:
        raise SourceError(f"{len(by_model)} cameras of model {selector!r} are connected; name one by serial: "
                          f"{listing}")
    raise SourceError(f"no camera {selector!r}; connected: {listing}")


# --- features -----------------------------------------------------------------------------------------
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
        info.value = _safe(node, "value", None)
    if info.kind in ("Integer", "Float"):
        info.minimum = _safe(node, "min", None)
        info.maximum = _safe(node, "max", None)
        info.increment = _safe(node, "inc", None) if info.kind == "Integer" else None
        info.unit = str(_safe(node, "unit", ""))
    elif info.kind == "Enumeration":
        info.choices = [str(c) for c in _safe(node, "symbolics", ())]
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
        return _safe(node, "value", value)
    except FeatureError:
        raise
    except (TypeError, ValueError) as exc:
        raise FeatureError(f"{name}: bad value {value!r} ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - GenICam's LogicalError, OutOfRange, AccessException ...
        raise FeatureError(f"{name}: the camera refused {value!r} ({_first_line(exc)})") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


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
StateListener = Callable[[SourceState, str], None]


class GenICamSource:
    """A GenICam camera as a :class:`~station.acquisition.base.FrameSource` (see the module doc)."""

    live = True

    def __init__(
        self,
        selector: str = "",
        cti: Sequence[str | os.PathLike[str]] = (),
        settings: dict[str, Any] | None = None,
        trigger: str = "off",
        output: OutputMode = "native",
        fetch_timeout: float = 1.0,
        lost_after: float = 3.0,
        strict: bool = False,
        hub: GenTLHub | None = None,
        uri: str | None = None,
    ) -> None:
        unknown = set(settings or {}) - set(SETTING_FEATURES)
        if unknown:
            raise SourceError(f"unknown camera setting(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(SETTING_FEATURES)}")
        if output not in ("native", "rgb", "gray"):
            raise SourceError(f"output must be native, rgb or gray, not {output!r}")
        self.selector = selector
        self.cti_files = producer_files(cti)
        self.settings = dict(settings or {})
        self.trigger = trigger
        self.output: OutputMode = output
        self.fetch_timeout = float(fetch_timeout)
        self.lost_after = float(lost_after)
        self.strict = strict  # a setting the camera refuses fails open() instead of being reported
        self.hub = hub or GenTLHub.shared()
        self.uri = uri or f"genicam://{selector}"
        self.device: DeviceDescription | None = None
        self.setting_results: list[SettingResult] = []
        self.events: deque[tuple[float, str, str]] = deque(maxlen=200)  # (time, state, message)
        self.reconnects = 0
        self.errors = 0
        self._ia: Any = None
        self._generation = -1
        self._state = SourceState.CLOSED
        self._want_acquiring = False
        self._lock = threading.RLock()  # one owner of the acquirer at a time
        self._listeners: list[StateListener] = []
        self._frame_counter = 0
        self._last_frame_at = 0.0
        self._backoff = BACKOFF_START_S
        self._retry_at = 0.0
        self._last_error = ""

    @classmethod
    def from_uri(cls, uri: str) -> GenICamSource:
        parsed = SourceURI.parse(uri)
        p = dict(parsed.params)
        options = {"cti", "trigger", "output", "timeout", "lost_after", "strict", *SETTING_FEATURES}
        unknown = set(p) - options
        if unknown:
            raise SourceError(f"{uri}: unknown option(s) {', '.join(sorted(unknown))}; known: "
                              f"{', '.join(sorted(options))}")
        cti = [c for c in p.pop("cti", "").split(os.pathsep) if c]
        settings = {k: p.pop(k) for k in list(p) if k in SETTING_FEATURES}
        try:
            timeout = float(p.pop("timeout", 1.0))
            lost_after = float(p.pop("lost_after", 3.0))
        except ValueError as exc:
            raise SourceError(f"{uri}: bad option value ({exc})") from None
        return cls(parsed.target.strip("/"), cti=cti, settings=settings, trigger=p.pop("trigger", "off"),
                   output=p.pop("output", "native"),  # type: ignore[arg-type]
                   fetch_timeout=timeout, lost_after=lost_after,
                   strict=p.pop("strict", "0").lower() in ("1", "true", "yes"), uri=uri)

    # --- state -------------------------------------------------------------------------------------------
    @property
    def state(self) -> SourceState:
        return self._state

    @property
    def last_error(self) -> str:
        return self._last_error

    def add_state_listener(self, listener: StateListener) -> None:
        """``listener(state, message)`` is called on every change (from the thread that caused it)."""
        self._listeners.append(listener)

    def _set_state(self, state: SourceState, message: str = "") -> None:
        if state is self._state:
            return
        self._state = state
        self.events.append((time.time(), state.value, message))
        if state is SourceState.LOST:
            log.warning("%s: camera lost: %s", self.uri, message)
        else:
            log.info("%s: %s %s", self.uri, state.value, message)
        for listener in list(self._listeners):
            try:
                listener(state, message)
            except Exception:  # a listener's bug must not take the camera down
                log.exception("state listener failed")

    # --- lifecycle -----------------------------------------------------------------------------------------
    def open(self) -> None:
        """Open the device and apply the requested settings.

        Raises
        ------
        SourceError
            If no producer or no matching device is found, the device cannot be opened, or (with
            ``strict``) a setting is refused.
        """
        with self._lock:
            if self._ia is not None:
                return
            self._connect()
            self._set_state(SourceState.CONNECTED, self.device.display_name if self.device else "")

    def _connect(self) -> None:
        ia, device = self.hub.open(self.selector, self.cti_files)
        self._ia, self.device = ia, device
        self._generation = self.hub.generation
        try:
            self.setting_results = self._apply_settings()
        except Exception:
            self._destroy()
            raise

    def _apply_settings(self) -> list[SettingResult]:
        nm = self._ia.remote_device.node_map
        results = []
        if {"width", "height"} & set(self.settings):
            # A wider image may not fit at the current offset: move the window home first.
            for offset in ("OffsetX", "OffsetY"):
                if read_feature(nm, offset).writable:
                    try:
                        write_feature(nm, offset, 0)
                    except FeatureError as exc:
                        log.debug("%s", exc)
        for option, feature in SETTING_FEATURES.items():
            if option not in self.settings:
                continue
            res = SettingResult(option, feature, self.settings[option])
            try:
                if feature == "AcquisitionFrameRate" and read_feature(nm, "AcquisitionFrameRateEnable").writable:
                    write_feature(nm, "AcquisitionFrameRateEnable", True)
                if feature == "ExposureTime" and read_feature(nm, "ExposureAuto").writable:
                    write_feature(nm, "ExposureAuto", "Off")
                if feature == "Gain" and read_feature(nm, "GainAuto").writable:
                    write_feature(nm, "GainAuto", "Off")
                res.applied = write_feature(nm, feature, self.settings[option])
                res.ok = True
            except FeatureError as exc:
                res.message = str(exc)
                if self.strict:
                    raise
                log.warning("%s: %s", self.uri, exc)
            results.append(res)
        results.append(self._apply_trigger(nm))
        return results

    def _apply_trigger(self, nm: Any) -> SettingResult:
        res = SettingResult("trigger", "TriggerMode", self.trigger)
        mode = read_feature(nm, "TriggerMode")
        try:
            if self.trigger in ("", "off"):
                if mode.present and mode.writable and mode.value != "Off":
                    write_feature(nm, "TriggerMode", "Off")
                res.applied, res.ok = "off", True
                if not mode.present:
                    res.message = "the camera has no trigger; it runs free"
                return res
            if not mode.present:
                raise FeatureError("TriggerMode: not available on this camera (it runs free only)")
            if read_feature(nm, "TriggerSelector").writable:
                write_feature(nm, "TriggerSelector", "FrameStart")
            source = "Software" if self.trigger == "software" else self.trigger
            write_feature(nm, "TriggerSource", source)
            write_feature(nm, "TriggerMode", "On")
            res.applied, res.ok = source, True
        except FeatureError as exc:
            res.message = str(exc)
            if self.strict:
                raise
            log.warning("%s: %s", self.uri, exc)
        return res

    def start(self) -> None:
        with self._lock:
            if self._state is SourceState.CLOSED:
                self.open()
            self._want_acquiring = True
            if self._state in (SourceState.LOST, SourceState.RECONNECTING):
                return  # the next next_frame() reconnects and starts
            try:
                self._ia.start()
            except Exception as exc:  # noqa: BLE001
                self._lose(f"could not start acquisition: {_first_line(exc)}")
                return
            self._last_frame_at = time.monotonic()
            self._set_state(SourceState.ACQUIRING)

    def stop(self) -> None:
        with self._lock:
            self._want_acquiring = False
            if self._ia is not None and self._state is SourceState.ACQUIRING:
                try:
                    self._ia.stop()
                except Exception as exc:  # noqa: BLE001 - a dead device cannot stop; that is fine
                    log.debug("stop failed: %s", exc)
                self._set_state(SourceState.CONNECTED)

    def close(self) -> None:
        with self._lock:
            self._want_acquiring = False
            self._destroy()
            self._set_state(SourceState.CLOSED)

    def _destroy(self) -> None:
        if self._ia is not None:
            try:
                self._ia.destroy()
            except Exception as exc:  # noqa: BLE001
                log.debug("destroy failed: %s", exc)
            self._ia = None

    def __enter__(self) -> GenICamSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- features -------------------------------------------------------------------------------------------
    def features(self, names: Iterable[str] = STANDARD_FEATURES) -> list[FeatureInfo]:
        with self._lock:
            self._require_open()
            nm = self._ia.remote_device.node_map
            return [read_feature(nm, n) for n in names]

    def feature_names(self) -> list[str]:
        """Every user-visible feature of the device (categories and hidden helper nodes left out)."""
        with self._lock:
            self._require_open()
            names = []
            for n in self._ia.remote_device.node_map.nodes:
                node = _safe(n, "node", None)
                if node is None or type(n).__name__ == "ICategory":
                    continue
                if _safe(node, "is_feature", lambda: False)() and int(_safe(node, "visibility", 3)) < 3:
                    names.append(str(node.name))
            return sorted(names)

    def get_feature(self, name: str) -> FeatureInfo:
        return self.features([name])[0]

    def set_feature(self, name: str, value: Any) -> Any:
        """Set a feature now; size and format changes need a stopped acquisition on most cameras."""
        with self._lock:
            self._require_open()
            return write_feature(self._ia.remote_device.node_map, name, value)

    def software_trigger(self) -> None:
        """Fire ``TriggerSoftware`` (with ``trigger=software``)."""
        self.set_feature("TriggerSoftware", None)

    def _require_open(self) -> None:
        if self._ia is None:
            raise SourceError(f"{self.uri}: camera not open ({self._state.value})")

    # --- frames ----------------------------------------------------------------------------------------------
    def next_frame(self, timeout: float = 1.0) -> Frame | None:
        """The next image, or ``None`` if none came within ``timeout`` (a trigger may never come)."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            with self._lock:
                if self._state is SourceState.CLOSED or not self._want_acquiring:
                    raise SourceError(f"{self.uri}: not acquiring (state {self._state.value}); call start()")
                if self._state in (SourceState.LOST, SourceState.RECONNECTING):
                    if time.monotonic() >= self._retry_at:
                        self._reconnect()
                    wait = 0.0 if self._state is SourceState.ACQUIRING else self._retry_at - time.monotonic()
                else:
                    wait = 0.0
                    remaining = deadline - time.monotonic()
                    frame = self._fetch(min(max(remaining, 0.001), 0.25))
                    if frame is not None:
                        return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if wait > 0:
                time.sleep(min(wait, remaining, 0.25))

    def _fetch(self, timeout: float) -> Frame | None:
        from genicam.gentl import TimeoutException

        ia = self._ia
        if ia is None or not ia.is_valid() or self.hub.generation != self._generation:
            self._lose("the camera connection was reset")
            return None
        try:
            with ia.fetch(timeout=timeout) as buffer:
                component = buffer.payload.components[0]
                fmt = component.data_format
                image = convert(component.data, component.width, component.height, fmt, self.output)
                device_frame = _safe(buffer, "frame_id", None)
                device_ts = _safe(buffer, "timestamp_ns", None)
        except TimeoutException:
            self._check_alive()
            return None
        except PixelFormatError as exc:
            self.errors += 1
            self._last_error = str(exc)
            log.warning("%s: frame skipped: %s", self.uri, exc)
            return None
        except Exception as exc:  # noqa: BLE001 - anything else from the driver means the device is gone
            self._lose(f"acquisition failed: {_first_line(exc)}")
            return None
        now = time.monotonic()
        self._last_frame_at = now
        self._frame_counter += 1
        meta: dict[str, Any] = {}
        if device_frame is not None:
            meta["device_frame_id"] = int(device_frame)
        if device_ts is not None:
            meta["device_timestamp_ns"] = int(device_ts)
        return Frame(image=image, frame_id=self._frame_counter, timestamp=time.time(), pixel_format=fmt,
                     source=self.uri, meta=meta)

    def _check_alive(self) -> None:
        """After a fetch timeout: a free-running camera silent for ``lost_after`` seconds, or one that no
        longer answers a feature read, is lost. A triggered camera may wait forever; it is only lost if
        it stops answering."""
        silent = time.monotonic() - self._last_frame_at
        if silent < self.lost_after:
            return
        try:
            self._ia.remote_device.node_map.get_node("Width").value  # noqa: B018 - a heartbeat read
        except Exception as exc:  # noqa: BLE001
            self._lose(f"no frames for {silent:.1f} s and no answer ({_first_line(exc)})")
            return
        if self.trigger in ("", "off"):
            self._lose(f"no frames for {silent:.1f} s from a free-running camera")

    def _lose(self, message: str) -> None:
        self.errors += 1
        self._last_error = message
        self._destroy()
        self._backoff = BACKOFF_START_S
        self._retry_at = time.monotonic()  # the first retry is immediate; later ones back off
        self._set_state(SourceState.LOST, message)

    def _reconnect(self) -> None:
        self._set_state(SourceState.RECONNECTING, f"attempt after {self._backoff:g} s back-off")
        try:
            try:
                self._connect()
            except SourceError:
                # The device may have come back under a new handle: enumerate again, then retry once.
                self.hub.rescan()
                self._connect()
            if self._want_acquiring:
                self._ia.start()
        except Exception as exc:  # noqa: BLE001
            self._destroy()
            self._last_error = _first_line(exc)
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)
            self._set_state(SourceState.LOST, f"reconnect failed: {self._last_error}")
            return
        self.reconnects += 1
        self._backoff = BACKOFF_START_S
        self._last_frame_at = time.monotonic()
        self._set_state(SourceState.ACQUIRING if self._want_acquiring else SourceState.CONNECTED, "reconnected")


def list_devices(cti: Sequence[str | os.PathLike[str]] = (), refresh: bool = False,
                 hub: GenTLHub | None = None) -> tuple[list[Path], list[DeviceDescription]]:
    """The producers used and the devices they offer."""
    files = producer_files(cti)
    if not files:
        raise SourceError(f"no GenTL producer found: pass a .cti file or set {ENV_PRODUCER_PATH}")
    return files, (hub or GenTLHub.shared()).devices(files, refresh=refresh)
