"""GenTL producers and the devices they offer: finding ``.cti`` files, one shared :class:`GenTLHub`
per process, and opening a device by serial, id, user name or model.

A GenTL producer is loaded once per process (a second ``Harvester`` on the same ``.cti`` sees no
devices), so every source and listing share one :class:`GenTLHub`. Looking for a camera that came
back re-scans the interfaces without closing the cameras that are running; a full refresh (loading
a new producer) invalidates every open acquirer, and the sources notice that and reconnect.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from station.acquisition.base import SourceError

log = logging.getLogger(__name__)

ENV_PRODUCER_PATH = "GENICAM_GENTL64_PATH"


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


def safe_attr(obj: Any, attr: str, default: Any = "") -> Any:
    """An attribute that a producer may not implement (GenTL raises instead of returning nothing)."""
    try:
        value = getattr(obj, attr)
    except Exception:  # noqa: BLE001 - GenTL's NotAvailable/NotImplemented and SWIG errors alike
        return default
    return default if value is None else value


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def _describe(info: Any) -> DeviceDescription:
    status = safe_attr(info, "access_status", 0)
    return DeviceDescription(
        id=str(safe_attr(info, "id_")), vendor=str(safe_attr(info, "vendor")), model=str(safe_attr(info, "model")),
        serial=str(safe_attr(info, "serial_number")), user_name=str(safe_attr(info, "user_defined_name")),
        tl_type=str(safe_attr(info, "tl_type")), access=_ACCESS_STATUS.get(int(status), str(status)),
        display_name=str(safe_attr(info, "display_name")))


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
                log.warning("device rescan failed (%s); re-opening the producers", first_line(exc))
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
                                  f"({d.access}): {first_line(exc)}") from exc
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



def list_devices(cti: Sequence[str | os.PathLike[str]] = (), refresh: bool = False,
                 hub: GenTLHub | None = None) -> tuple[list[Path], list[DeviceDescription]]:
    """The producers used and the devices they offer."""
    files = producer_files(cti)
    if not files:
        raise SourceError(f"no GenTL producer found: pass a .cti file or set {ENV_PRODUCER_PATH}")
    return files, (hub or GenTLHub.shared()).devices(files, refresh=refresh)
