"""Page 1: the part's name (its recipe folder), the image source and the pixel size."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QLineEdit

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
        self.source = QComboBox()
        self.source.setEditable(True)
        self.pixel_size = QDoubleSpinBox()
        self.pixel_size.setDecimals(4)
        self.pixel_size.setRange(0.0, 100.0)
        self.pixel_size.setSingleStep(0.01)
        self.pixel_size.setSpecialValueText("unknown")
        self.pixel_size.setSuffix(" mm/pixel")
        form = QFormLayout(self)
        form.addRow("Part name", self.name)
        form.addRow("", self.hint)
        form.addRow("Image source", self.source)
        form.addRow("Pixel size", self.pixel_size)
        note = QLabel("With the pixel size known, defect areas can be set in mm². The demo part: 0.2 mm/pixel.")
        note.setWordWrap(True)
        form.addRow("", note)
        self.name.textChanged.connect(self._name_changed)
        self.source.currentTextChanged.connect(lambda _t: self.completeChanged.emit())

    def initializePage(self) -> None:
        s = self.session
        self.name.setText(s.part_name)
        self.source.clear()
        for uri in [s.source_uri, GOOD_DEMO_SOURCE, *self.w.ctx.settings.recent_sources]:
            if self.source.findText(uri) < 0:
                self.source.addItem(uri)
        self.source.setCurrentText(s.source_uri)
        self.pixel_size.setValue(s.pixel_size_mm or 0.0)
        self._name_changed(self.name.text())

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
        return self.session.name_problem() is None and bool(self.source.currentText().strip())

    def validatePage(self) -> bool:
        self.session.source_uri = self.source.currentText().strip()
        self.session.pixel_size_mm = self.pixel_size.value() or None
        return True
