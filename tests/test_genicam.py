"""GenICam acquisition against the real simulated GenTL producer ``viky.cti`` (shipped with genicam).

Viky offers three devices (serials 0, 1, 2; model "Viky"), PixelFormat RGBa8/Mono8, Width/Height
100..800 and AcquisitionFrameRate 1..200 Hz, and no exposure, gain, trigger or timestamps.
Every wait in here is bounded (fetch timeouts; pytest-timeout as the last resort).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from station.acquisition.base import SourceError, SourceState, open_source
from station.acquisition.genicam import GenICamSource
from station.acquisition.genicam_features import FeatureError
from station.acquisition.gentl import GenTLHub, list_devices, producer_files, simulated_producer

pytestmark = pytest.mark.timeout(120)

if simulated_producer() is None:  # pragma: no cover - genicam is a pinned dependency
    pytest.skip("viky.cti (genicam package) not installed", allow_module_level=True)

FAST = "fps=100&pixel_format=Mono8&width=160&height=120"


@pytest.fixture
def hub():
    yield GenTLHub.shared()


@pytest.fixture
def sources():
    """Sources opened by a test; closed afterwards whatever happens."""
    opened: list[GenICamSource] = []
    yield opened
    for s in opened:
        s.close()


def _open(sources, uri: str) -> GenICamSource:
    src = open_source(uri)
    assert isinstance(src, GenICamSource)
    sources.append(src)
    src.open()
    return src


def _frames(src, n: int, timeout: float = 2.0):
    out = []
    deadline = time.monotonic() + 10
    while len(out) < n and time.monotonic() < deadline:
        f = src.next_frame(timeout=timeout)
        if f is not None:
            out.append(f)
    assert len(out) == n, f"only {len(out)} of {n} frames"
    return out


def test_producers_fall_back_to_the_simulator(monkeypatch, tmp_path):
    monkeypatch.delenv("GENICAM_GENTL64_PATH", raising=False)
    assert producer_files() == [simulated_producer()]
    monkeypatch.setenv("GENICAM_GENTL64_PATH", str(simulated_producer().parent))
    assert producer_files() == [simulated_producer()]
    with pytest.raises(SourceError, match="not found"):
        producer_files([tmp_path / "missing.cti"])
    with pytest.raises(SourceError, match="no GenTL producer"):
        producer_files([tmp_path])


def test_discovery_lists_the_three_simulated_devices(hub):
    files, devices = list_devices(hub=hub)
    assert files == [simulated_producer()]
    assert sorted(d.serial for d in devices) == ["0", "1", "2"]
    assert {d.model for d in devices} == {"Viky"}
    assert all(d.vendor and d.id.startswith("VikyTL_DEV") for d in devices)


def test_open_by_serial_id_and_errors(sources):
    src = _open(sources, "genicam://2")
    assert src.device.serial == "2" and src.state is SourceState.CONNECTED
    by_id = _open(sources, "genicam://VikyTL_DEV_green")
    assert by_id.device.serial == "1"
    with pytest.raises(SourceError, match="3 cameras of model 'Viky'|name one by serial"):
        GenICamSource("Viky").open()  # the model is ambiguous here
    with pytest.raises(SourceError, match="no camera 'nope'.*serial 0"):
        GenICamSource("nope").open()
    with pytest.raises(SourceError, match="could not be opened"):
        GenICamSource("2").open()  # already open, exclusively
    with pytest.raises(SourceError, match="unknown option"):
        open_source("genicam://0?exposur=5")


def test_features_are_read_and_missing_ones_reported(sources):
    src = _open(sources, "genicam://0")
    feats = {f.name: f for f in src.features()}
    assert feats["PixelFormat"].present and set(feats["PixelFormat"].choices) == {"RGBa8", "Mono8"}
    assert feats["Width"].value == 400 and feats["Width"].minimum == 100 and feats["Width"].maximum == 800
    assert feats["AcquisitionFrameRate"].unit == "Hz" and feats["AcquisitionFrameRate"].writable
    for missing in ("ExposureTime", "Gain", "TriggerMode", "TriggerSoftware", "OffsetX"):
        assert not feats[missing].present
        assert feats[missing].describe() == "not available on this device"
    assert "BouncingBallSize" in src.feature_names()
    with pytest.raises(FeatureError, match="ExposureTime: not available"):
        src.set_feature("ExposureTime", 1000)
    with pytest.raises(FeatureError, match="outside 100..800"):
        src.set_feature("Width", 5000)
    with pytest.raises(FeatureError, match="choose one of"):
        src.set_feature("PixelFormat", "BayerRG8")
    with pytest.raises(FeatureError, match="read-only"):
        src.set_feature("PayloadSize", 1)
    assert src.set_feature("Width", 256) == 256
    with pytest.raises(FeatureError, match="not available"):
        src.software_trigger()


def test_settings_from_the_uri_are_applied_and_reported(sources):
    src = _open(sources, "genicam://1?pixel_format=Mono8&width=320&height=200&fps=40&exposure=500&gain=2")
    results = {r.option: r for r in src.setting_results}
    assert results["pixel_format"].ok and results["width"].applied == 320 and results["fps"].applied == 40.0
    assert not results["exposure"].ok and "not available" in results["exposure"].message
    assert not results["gain"].ok
    assert results["trigger"].ok and "runs free" in results["trigger"].message
    src.start()
    (frame,) = _frames(src, 1)
    assert frame.image.shape == (200, 320) and frame.image.dtype == np.uint8 and frame.pixel_format == "Mono8"
    with pytest.raises(SourceError, match="ExposureTime"):
        GenICamSource("2", settings={"exposure": 100}, strict=True).open()
    with pytest.raises(SourceError, match="TriggerMode"):
        GenICamSource("2", trigger="software", strict=True).open()


def test_colour_frames_are_rgb_copies(sources):
    src = _open(sources, "genicam://0?width=200&height=150&fps=100")
    src.start()
    frames = _frames(src, 5)
    for f in frames:
        assert f.image.shape == (150, 200, 3) and f.image.dtype == np.uint8
        assert f.pixel_format == "RGBa8" and f.image.flags.owndata or f.image.base is not None
    assert [f.frame_id for f in frames] == sorted({f.frame_id for f in frames})
    assert frames[-1].meta["device_frame_id"] > frames[0].meta["device_frame_id"]
    assert any(f.image.any() for f in frames)
    # Frames stay intact after their buffers went back to the driver and were refilled.
    first = frames[0].image.copy()
    _frames(src, 5)
    assert np.array_equal(frames[0].image, first)
    gray = _open(sources, "genicam://1?output=gray&width=120&height=100&fps=100")
    gray.start()
    assert _frames(gray, 1)[0].image.shape == (100, 120)


def test_two_devices_at_once(sources):
    a = _open(sources, f"genicam://0?{FAST}")
    b = _open(sources, f"genicam://1?{FAST}")
    a.start()
    b.start()
    got = {"a": 0, "b": 0}

    def grab(src, key):
        for f in (src.next_frame(timeout=2.0) for _ in range(15)):
            got[key] += f is not None

    threads = [threading.Thread(target=grab, args=(a, "a")), threading.Thread(target=grab, args=(b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert got == {"a": 15, "b": 15}


def test_reopen_cycles(sources):
    for cycle in range(4):
        src = GenICamSource("2", settings={"fps": 100, "width": 128, "height": 128})
        src.open()
        src.start()
        (f,) = _frames(src, 1)
        assert f.image.shape[:2] == (128, 128), cycle
        src.stop()
        assert src.state is SourceState.CONNECTED
        src.close()
        assert src.state is SourceState.CLOSED


def test_never_blocks_beyond_the_timeout(sources):
    src = _open(sources, "genicam://0?fps=1&width=100&height=100&lost_after=30")
    src.start()
    _frames(src, 1)  # the frame that was due at once
    t0 = time.monotonic()
    assert src.next_frame(timeout=0.2) is None  # the next one is a second away
    assert time.monotonic() - t0 < 0.9  # the frame is 1 s away: returning before it means no blocking
    src.stop()
    with pytest.raises(SourceError, match="not acquiring"):
        src.next_frame(timeout=0.1)


def test_device_closed_underneath_is_lost_then_reconnected(sources):
    src = _open(sources, f"genicam://0?{FAST}")
    src.start()
    _frames(src, 3)
    states: list[str] = []
    src.add_state_listener(lambda state, msg: states.append(state.value))
    with src._lock:  # the cable is pulled: the acquirer dies between two fetches
        src._ia.destroy()
    frames = _frames(src, 3)
    assert states[:3] == ["lost", "reconnecting", "acquiring"]
    assert src.reconnects == 1 and src.state is SourceState.ACQUIRING
    assert frames[0].image.shape == (120, 160)  # settings re-applied after reconnecting
    assert any(e[1] == "lost" and "reset" in e[2] for e in src.events)


def test_device_gone_for_a_while_backs_off_and_comes_back(sources, hub, monkeypatch):
    src = _open(sources, f"genicam://1?{FAST}")
    other = _open(sources, f"genicam://2?{FAST}")  # a second camera on the same producer keeps running
    src.start()
    other.start()
    _frames(src, 2)
    real_open = hub.open
    attempts: list[float] = []
    back_at = time.monotonic() + 1.6

    def unplugged(selector, files):
        if time.monotonic() < back_at:
            attempts.append(time.monotonic())
            raise SourceError(f"no camera {selector!r}; connected: none")
        return real_open(selector, files)

    monkeypatch.setattr(hub, "open", unplugged)
    with src._lock:
        src._ia.destroy()
    seen = set()
    deadline = time.monotonic() + 15
    frame = None
    others = 0
    while frame is None and time.monotonic() < deadline:
        frame = src.next_frame(timeout=0.2)  # returns None promptly while the camera is away
        seen.add(src.state)
        others += other.next_frame(timeout=0.2) is not None
    assert frame is not None and src.state is SourceState.ACQUIRING
    assert others >= 3 and other.reconnects == 0  # the re-scans did not interrupt the other camera
    assert SourceState.LOST in seen
    # Each attempt tries the list, then a re-scanned list: pairs spaced 0, 0.5, 1 s ... apart, not a busy loop.
    assert 2 <= len(attempts) <= 8, attempts
    assert src.reconnects == 1 and "reconnect failed" in " ".join(e[2] for e in src.events)


def test_rescanning_keeps_running_cameras_streaming(sources, hub):
    a = _open(sources, f"genicam://0?{FAST}")
    a.start()
    _frames(a, 1)
    devices = hub.devices(a.cti_files, refresh=True)
    assert sorted(d.serial for d in devices) == ["0", "1", "2"]
    _frames(a, 3)
    assert a.reconnects == 0 and a.state is SourceState.ACQUIRING
    b = _open(sources, f"genicam://1?{FAST}")  # opened from the re-scanned list
    b.start()
    _frames(b, 1)


def test_refreshing_the_device_list_invalidates_and_sources_recover(sources, hub):
    a = _open(sources, f"genicam://0?{FAST}")
    b = _open(sources, f"genicam://2?{FAST}")
    a.start()
    b.start()
    _frames(a, 1)
    _frames(b, 1)
    hub.refresh()  # e.g. `station cameras --refresh` while the line runs
    _frames(a, 2)
    _frames(b, 2)
    assert a.reconnects == 1 and b.reconnects == 1


def test_silent_free_running_camera_is_lost(sources, monkeypatch):
    from genicam.gentl import TimeoutException

    src = _open(sources, f"genicam://0?{FAST}&lost_after=0.5")
    src.start()
    _frames(src, 1)
    ia = src._ia

    def silent(*, timeout, **kw):
        time.sleep(min(timeout, 0.05))
        raise TimeoutException

    monkeypatch.setattr(ia, "fetch", silent)
    t0 = time.monotonic()
    while src.state is SourceState.ACQUIRING and time.monotonic() - t0 < 5:
        assert src.next_frame(timeout=0.1) is None
    assert src.state in (SourceState.LOST, SourceState.ACQUIRING)
    assert any(e[1] == "lost" and "no frames" in e[2] for e in src.events)
    _frames(src, 1)  # a fresh acquirer (the silent one was destroyed) delivers again
