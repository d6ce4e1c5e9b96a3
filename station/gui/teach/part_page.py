"""Page 1: the part's name (its recipe folder), the camera -- picked from the cameras found, a folder
or the demo, with its settings where it is a GenICam camera -- and the pixel size."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QDoubleSpinBox, QFormLayout, QLabel, QLineEdit

from station.gui.camera_picker import CameraPicker
from station.gui.camera_settings import CameraSettingsBox
from station.gui.teach.common import GOOD_DEMO_SOURCE, SessionPage

if TYPE_CHECKING:
    from station.gui.teach.wizard import TeachWizard


class PartPage(SessionPage):
    def __init__(self, wizard: TeachWizard) -> None:
        super().__init__(wizard)
        self.setTitle("1  Part and camera")
        self.setSubTitle("Name the part (it becomes the recipe's folder) and choose where its images come from.")
        self.name = QLineEdit()
        self.name.setPlaceholderText("e.g. washer-m8")
        self.hint = QLabel()
        recent = [GOOD_DEMO_SOURCE, *self.w.ctx.settings.recent_sources]
        self.picker = CameraPicker(recent)
        self.camera_settings = CameraSettingsBox()
        self.pixel_size = QDoubleSpinBox()
        self.pixel_size.setDecimals(4)
        self.pixel_size.setRange(0.0, 100.0)
        self.pixel_size.setSingleStep(0.01)
        self.pixel_size.setSpecialValueText("unknown")
        self.pixel_size.setSuffix(" mm/pixel")
        form = QFormLayout(self)
        form.addRow("Part name", self.name)
        form.addRow("", self.hint)
        form.addRow("Camera", self.picker)
        form.addRow("", self.camera_settings)
        form.addRow("Pixel size", self.pixel_size)
        note = QLabel("With the pixel size known, defect areas can be set in mm². The demo part: 0.2 mm/pixel.")
        note.setWordWrap(True)
        form.addRow("", note)
        self.name.textChanged.connect(self._name_changed)
        self.picker.uri_changed.connect(self._source_changed)
        self._listed = False

    def initializePage(self) -> None:
        s = self.session
        self.name.setText(s.part_name)
        self.picker.set_uri(s.source_uri)
        if not self._listed:  # the GenTL producers load once, on a worker
            self._listed = True
            self.picker.rescan()
        self.pixel_size.setValue(s.pixel_size_mm or 0.0)
        self._name_changed(self.name.text())

    def _source_changed(self, uri: str) -> None:
        keep = self.session.camera_settings if uri == self.session.source_uri else None
        self.camera_settings.load(uri, keep)
        self.completeChanged.emit()

    def _name_changed(self, text: str) -> None:
        self.session.part_name = text.strip()
        problem = self.session.name_problem()
        if problem:
            self.hint.setText(f"<span style='color:#a50e0e'>{problem}</span>")
        else:
            v = self.session.version_to_save()
            extra = " (the part exists: this adds a new version, older ones stay)" if v > 1 else ""
            self.hint.setText(f"will be saved as <b>{self.session.part_name} v{v}</b>{extra}")
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.session.name_problem() is None and bool(self.picker.uri_text)

    def validatePage(self) -> bool:
        self.session.source_uri = self.picker.uri_text
        self.session.camera_settings = self.camera_settings.values()
        self.session.pixel_size_mm = self.pixel_size.value() or None
        return True
