"""Choosing the camera from a list (issue 13 item 6): the GenICam cameras ``station cameras`` finds,
the demo, folders; the camera settings a recipe keeps -- read for real from the simulated viky camera
(which has no exposure, gain or trigger: the "not available" path) and, for a camera that has them,
from a node map shaped as GenApi's (as tests/test_genicam_features.py does)."""

from __future__ import annotations

import pytest
from helpers_detector import register_test_detector
from helpers_wizard import wizard_at_detector
from test_genicam_features import FakeHub

pytest.importorskip("pytestqt")
pytestmark = [pytest.mark.gui, pytest.mark.timeout(120)]

from PySide6.QtWidgets import QDoubleSpinBox  # noqa: E402

import station.gui.camera_settings as camera_settings  # noqa: E402
from station.acquisition.camera_choice import (  # noqa: E402
    DEMO_SOURCE,
    discover_sources,
    read_camera_settings,
    recipe_camera_settings,
    with_camera_settings,
)
from station.acquisition.gentl import simulated_producer  # noqa: E402
from station.gui.camera_picker import CameraPicker  # noqa: E402
from station.gui.camera_settings import CameraSettingsBox  # noqa: E402

needs_viky = pytest.mark.skipif(simulated_producer() is None, reason="viky.cti (genicam package) not installed")


@needs_viky
def test_the_list_holds_the_cameras_found_the_demo_and_folders():
    choices, problems = discover_sources(["folder:///data/washers", DEMO_SOURCE])
    assert problems == []
    cams = [c for c in choices if c.kind == "genicam"]
    assert len(cams) == 3 and cams[0].uri == "genicam://0" and "Viky" in cams[0].label and "serial 0" in cams[0].label
    assert [c.uri for c in choices[3:]] == [DEMO_SOURCE, "folder:///data/washers"]  # each once
    assert choices[-1].label == "Folder /data/washers"


@needs_viky
def test_the_picker_lists_them_and_keeps_the_uri_as_an_advanced_field(qtbot, monkeypatch, tmp_path):
    picker = CameraPicker([DEMO_SOURCE])
    qtbot.addWidget(picker)
    picker.show()
    picker.set_uri(DEMO_SOURCE)
    job = picker.rescan()
    qtbot.waitUntil(lambda: job.outcome == "finished" and picker.list.count() == 4, timeout=30000)
    assert picker.list.currentData() == DEMO_SOURCE  # the choice stays
    assert not picker.uri.isVisible()
    picker.advanced.click()
    assert picker.uri.isVisible() and picker.uri.text() == DEMO_SOURCE
    with qtbot.waitSignal(picker.uri_changed) as changed:
        picker.list.setCurrentIndex(1)
        picker.list.activated.emit(1)
    assert changed.args == ["genicam://1"] and picker.uri_text == "genicam://1"
    monkeypatch.setattr("station.gui.camera_picker.QFileDialog.getExistingDirectory", lambda *a: str(tmp_path))
    picker.folder_button.click()
    assert picker.uri_text == f"folder://{tmp_path}" and picker.list.currentText() == f"Folder {tmp_path}"


@needs_viky
def test_viky_has_no_exposure_or_gain_and_says_so(qtbot):
    box = CameraSettingsBox()
    qtbot.addWidget(box)
    job = box.load("genicam://1")
    qtbot.waitUntil(lambda: job.outcome == "finished" and bool(box.editors), timeout=30000)
    assert set(box.editors) == {"pixel_format", "width", "height", "fps"}
    assert {"Exposure", "Gain"} <= set(box.missing) and "Exposure" in box.note.text()
    assert box.values()["fps"] == pytest.approx(20.0)
    box.editors["fps"][0].setValue(12.5)
    assert box.values()["fps"] == 12.5


def test_exposure_and_gain_are_editable_where_the_camera_has_them(qtbot, monkeypatch):
    monkeypatch.setattr(camera_settings, "read_camera_settings", lambda uri: read_camera_settings(uri, hub=FakeHub()))
    box = CameraSettingsBox()
    qtbot.addWidget(box)
    job = box.load("genicam://1234", keep={"gain": 6.0})
    qtbot.waitUntil(lambda: job.outcome == "finished" and bool(box.editors), timeout=10000)
    exposure = box.editors["exposure"][0]
    assert isinstance(exposure, QDoubleSpinBox) and exposure.suffix() == " us"
    assert (exposure.minimum(), exposure.maximum()) == (20.0, 1e6)
    assert box.editors["gain"][0].value() == 6.0  # the value chosen before, not the camera's
    exposure.setValue(5000.0)
    values = box.values()
    assert values["exposure"] == 5000.0 and values["gain"] == 6.0 and values["pixel_format"] == "Mono8"
    assert "offset_x" not in values and "Offset x" in box.missing  # present but not available now


def test_the_recipe_keeps_the_settings_and_a_camera_gets_them(qtbot, ctx, tmp_path):
    register_test_detector()
    w = wizard_at_detector(qtbot, ctx, "test-zscore", 8, name="lit")
    w.session.camera_settings = {"exposure": 5000.0, "gain": 6.0}  # as the part page leaves them
    w.next()
    qtbot.waitUntil(w.train_page.isComplete, timeout=20000)
    w.next()
    w.next()
    assert "Exposure 5000" in w.save_page.summary.text()
    with qtbot.waitSignal(w.saved, timeout=5000) as saved:
        w.accept()
    kept = recipe_camera_settings(saved.args[0])
    assert kept == {"exposure": 5000.0, "gain": 6.0}
    assert recipe_camera_settings(ctx.models_dir / "lit") == kept  # the part folder: its newest version
    assert with_camera_settings("genicam://7?gain=1", kept) == "genicam://7?gain=1&exposure=5000"
    assert with_camera_settings(DEMO_SOURCE, kept) == DEMO_SOURCE  # only cameras have them
    assert recipe_camera_settings(tmp_path / "nowhere") == {}
