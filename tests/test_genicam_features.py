"""Feature handling and triggers on a camera that has what viky lacks (exposure, gain, trigger),
simulated by a fake node map with GenApi's interface names; plus a trigger that never comes."""

from __future__ import annotations

import time

import numpy as np
import pytest
from genicam.gentl import TimeoutException

from station.acquisition.base import SourceState
from station.acquisition.genicam import GenICamSource
from station.acquisition.genicam_features import FeatureError, read_feature, write_feature
from station.acquisition.gentl import DeviceDescription

pytestmark = pytest.mark.timeout(60)


class _Node:
    def __init__(self, value=None, access=4, **kw):
        self.value = value
        self._access = access
        for k, v in kw.items():
            setattr(self, k, v)
        self.executed = 0

    def get_access_mode(self):
        return self._access

    def execute(self):
        self.executed += 1


# GenApi's node classes are told apart by their names (IInteger, IFloat ...), so the fakes carry them.
IInteger = type("IInteger", (_Node,), {})
IFloat = type("IFloat", (_Node,), {})
IEnumeration = type("IEnumeration", (_Node,), {})
IBoolean = type("IBoolean", (_Node,), {})
ICommand = type("ICommand", (_Node,), {})


class FakeNodeMap:
    def __init__(self):
        self.nodes_by_name = {
            "PixelFormat": IEnumeration("Mono8", symbolics=("Mono8", "Mono12", "BayerRG8")),
            "Width": IInteger(640, min=16, max=1280, inc=16, unit=""),
            "Height": IInteger(480, min=16, max=1024, inc=2, unit=""),
            "ExposureTime": IFloat(1000.0, min=20.0, max=1e6, unit="us"),
            "ExposureAuto": IEnumeration("Continuous", symbolics=("Off", "Once", "Continuous")),
            "Gain": IFloat(0.0, min=0.0, max=24.0, unit="dB"),
            "AcquisitionFrameRate": IFloat(30.0, min=1.0, max=120.0, unit="Hz"),
            "AcquisitionFrameRateEnable": IBoolean(False),
            "TriggerSelector": IEnumeration("FrameStart", symbolics=("FrameStart",)),
            "TriggerMode": IEnumeration("Off", symbolics=("Off", "On")),
            "TriggerSource": IEnumeration("Line0", symbolics=("Line0", "Line1", "Software")),
            "TriggerSoftware": ICommand(access=2),
            "DeviceTemperature": IFloat(41.5, access=3, min=-40.0, max=120.0, unit="C"),
            "OffsetX": IInteger(0, access=1),  # exists but not available in the current mode
            "OffsetY": IInteger(64, min=0, max=1008, inc=2, unit=""),
        }

    def has_node(self, name):
        return name in self.nodes_by_name

    def get_node(self, name):
        return self.nodes_by_name[name]


class FakeAcquirer:
    """A triggered camera: a frame only after TriggerSoftware was executed."""

    def __init__(self, node_map):
        self.remote_device = type("R", (), {"node_map": node_map})()
        self.started = False
        self.destroyed = False

    def is_valid(self):
        return not self.destroyed

    def start(self):
        self.started = True

    def stop(self):
        self.started = False

    def destroy(self):
        self.destroyed = True

    def fetch(self, *, timeout):
        trigger = self.remote_device.node_map.get_node("TriggerSoftware")
        if trigger.executed:
            trigger.executed -= 1
            return _Buffer()
        time.sleep(min(timeout, 0.05))
        raise TimeoutException


class _Buffer:
    def __enter__(self):
        comp = type("C", (), {"data": np.arange(64 * 48, dtype=np.uint16) % 4096, "width": 64, "height": 48,
                              "data_format": "Mono12"})()
        self.payload = type("P", (), {"components": [comp]})()
        return self

    def __exit__(self, *exc):
        return False

    frame_id = 7


class FakeHub:
    generation = 1

    def __init__(self):
        self.node_map = FakeNodeMap()
        self.opened = []

    def open(self, selector, files):
        ia = FakeAcquirer(self.node_map)
        self.opened.append(ia)
        return ia, DeviceDescription("dev0", "ACME", "Cam", "1234", "", "U3V", "available", "ACME Cam")

    def refresh(self):
        pass


def test_read_feature_reports_ranges_units_and_availability():
    nm = FakeNodeMap()
    exp = read_feature(nm, "ExposureTime")
    assert exp.present and exp.writable and exp.unit == "us" and (exp.minimum, exp.maximum) == (20.0, 1e6)
    assert read_feature(nm, "PixelFormat").choices == ["Mono8", "Mono12", "BayerRG8"]
    temp = read_feature(nm, "DeviceTemperature")
    assert temp.access == "read-only" and not temp.writable and temp.value == 41.5
    assert not read_feature(nm, "OffsetX").present
    assert not read_feature(nm, "Nope").present
    cmd = read_feature(nm, "TriggerSoftware")
    assert cmd.kind == "Command" and cmd.access == "write-only"


def test_write_feature_checks_before_writing():
    nm = FakeNodeMap()
    assert write_feature(nm, "Width", 650) == 656  # the nearest valid width: 16 + k * 16
    assert write_feature(nm, "Gain", "6.5") == 6.5
    with pytest.raises(FeatureError, match=r"outside 20..1e\+06 us"):
        write_feature(nm, "ExposureTime", 5)
    with pytest.raises(FeatureError, match="read-only"):
        write_feature(nm, "DeviceTemperature", 20)
    with pytest.raises(FeatureError, match="not available"):
        write_feature(nm, "OffsetX", 8)
    with pytest.raises(FeatureError, match="bad value"):
        write_feature(nm, "Gain", "loud")
    write_feature(nm, "AcquisitionFrameRateEnable", "on")
    assert nm.get_node("AcquisitionFrameRateEnable").value is True


def test_settings_switch_auto_modes_off_and_trigger_is_configured():
    hub = FakeHub()
    src = GenICamSource("1234", settings={"exposure": 5000, "gain": 3, "fps": 60, "pixel_format": "Mono12",
                                          "height": 960, "offset_y": 32}, trigger="software", hub=hub)
    src.open()
    nm = hub.node_map
    assert nm.get_node("Height").value == 960 and nm.get_node("OffsetY").value == 32
    assert nm.get_node("ExposureAuto").value == "Off" and nm.get_node("ExposureTime").value == 5000.0
    assert nm.get_node("AcquisitionFrameRateEnable").value is True and nm.get_node("AcquisitionFrameRate").value == 60
    assert nm.get_node("TriggerMode").value == "On" and nm.get_node("TriggerSource").value == "Software"
    assert all(r.ok for r in src.setting_results), src.setting_results
    hw = GenICamSource("1234", trigger="Line1", hub=FakeHub())
    hw.open()
    assert hw._ia.remote_device.node_map.get_node("TriggerSource").value == "Line1"
    bad = GenICamSource("1234", trigger="Line9", hub=FakeHub())
    bad.open()
    assert not bad.setting_results[-1].ok and "Line9" in bad.setting_results[-1].message


def test_a_trigger_that_never_comes_does_not_block_or_lose_the_camera():
    hub = FakeHub()
    src = GenICamSource("1234", trigger="software", lost_after=0.2, hub=hub)
    src.open()
    src.start()
    t0 = time.monotonic()
    for _ in range(5):
        assert src.next_frame(timeout=0.1) is None
    assert time.monotonic() - t0 < 5.0  # five short waits, not a hang
    assert src.state is SourceState.ACQUIRING  # waiting for a part is not a fault
    src.software_trigger()
    frame = src.next_frame(timeout=1.0)
    assert frame is not None and frame.pixel_format == "Mono12" and frame.image.shape == (48, 64)
    assert frame.meta["device_frame_id"] == 7 and frame.image.max() == 3071 >> 4  # 12 bits to 8
    src.close()
    assert hub.opened[0].destroyed
