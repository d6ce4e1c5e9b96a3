"""A GenICam camera as a frame source: its state machine, acquisition and fault recovery. Producers
and devices: :mod:`station.acquisition.gentl`; features: :mod:`station.acquisition.genicam_features`.

URI: ``genicam://<serial | id | user name | model>?cti=<path>[:<path>...]&pixel_format=Mono8&width=640
&height=480&offset_x=0&offset_y=0&exposure=5000&gain=0&fps=10&trigger=off|software|Line1&timeout=1
&lost_after=3&output=native|rgb|gray``. An empty target (``genicam://``) takes the first device.

GenTL producers (``.cti`` files) are found, in order, from the URI's ``cti=``, the
``GENICAM_GENTL64_PATH`` folders, and -- when neither names one -- the simulated ``viky.cti`` that
ships inside the ``genicam`` package, so every machine has a camera to try.

Faults: a source whose device fails (an error while fetching, no frames and no answer to a feature
read for ``lost_after`` seconds, or an acquirer invalidated underneath it) goes ``lost``; each later
:meth:`GenICamSource.next_frame` call retries, with back-off from 0.5 s up to 10 s, re-applying the
requested settings (``reconnecting`` while it tries, ``acquiring`` once frames flow again). The
process never crashes and no call blocks for more than its timeout plus one attempt.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from station.acquisition.base import Frame, SourceError, SourceState, SourceURI
from station.acquisition.genicam_features import (
    SETTING_FEATURES,
    STANDARD_FEATURES,
    FeatureError,
    FeatureInfo,
    SettingResult,
    read_feature,
    write_feature,
)
from station.acquisition.gentl import DeviceDescription, GenTLHub, first_line, producer_files, safe_attr
from station.acquisition.pixels import OutputMode, PixelFormatError, convert

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 10.0

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
                self._lose(f"could not start acquisition: {first_line(exc)}")
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
                node = safe_attr(n, "node", None)
                if node is None or type(n).__name__ == "ICategory":
                    continue
                if safe_attr(node, "is_feature", lambda: False)() and int(safe_attr(node, "visibility", 3)) < 3:
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
                device_frame = safe_attr(buffer, "frame_id", None)
                device_ts = safe_attr(buffer, "timestamp_ns", None)
        except TimeoutException:
            self._check_alive()
            return None
        except PixelFormatError as exc:
            self.errors += 1
            self._last_error = str(exc)
            log.warning("%s: frame skipped: %s", self.uri, exc)
            return None
        except Exception as exc:  # noqa: BLE001 - anything else from the driver means the device is gone
            self._lose(f"acquisition failed: {first_line(exc)}")
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
            self._lose(f"no frames for {silent:.1f} s and no answer ({first_line(exc)})")
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
            self._last_error = first_line(exc)
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, BACKOFF_MAX_S)
            self._set_state(SourceState.LOST, f"reconnect failed: {self._last_error}")
            return
        self.reconnects += 1
        self._backoff = BACKOFF_START_S
        self._last_frame_at = time.monotonic()
        self._set_state(SourceState.ACQUIRING if self._want_acquiring else SourceState.CONNECTED, "reconnected")


