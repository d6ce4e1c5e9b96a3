"""The camera settings a recipe keeps -- exposure, gain, frame rate, pixel format, size and offsets,
where the camera has them -- read from the camera (on a worker) and edited by an engineer. What the
device lacks is listed as not available; read-only features are shown, not editable."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLabel, QSpinBox, QWidget

from station.acquisition.camera_choice import read_camera_settings
from station.acquisition.genicam_features import FeatureInfo
from station.gui.workers import Job

LABELS = {"exposure": "Exposure", "gain": "Gain", "fps": "Frame rate", "pixel_format": "Pixel format",
          "width": "Width", "height": "Height", "offset_x": "Offset x", "offset_y": "Offset y"}


def feature_editor(info: FeatureInfo) -> QWidget:
    """A spin box (range and unit from the camera), a choice box, or a label for what cannot be set."""
    if info.kind == "Enumeration" and info.choices:
        box = QComboBox()
        box.addItems(info.choices)
        box.setCurrentText(str(info.value))
        editor: QWidget = box
    elif info.kind in ("Integer", "Float"):
        spin: QSpinBox | QDoubleSpinBox = QSpinBox() if info.kind == "Integer" else QDoubleSpinBox()
        if isinstance(spin, QDoubleSpinBox):
            spin.setDecimals(3)
        lo = info.minimum if info.minimum is not None else -1e9
        hi = info.maximum if info.maximum is not None else 1e9
        if isinstance(spin, QSpinBox):
            spin.setRange(int(max(lo, -2**31)), int(min(hi, 2**31 - 1)))
            if info.increment:
                spin.setSingleStep(int(info.increment))
        else:
            spin.setRange(float(lo), float(hi))
        if info.unit:
            spin.setSuffix(f" {info.unit}")
        if info.value is not None:
            spin.setValue(info.value if isinstance(spin, QDoubleSpinBox) else int(info.value))
        editor = spin
    else:
        return QLabel(f"{info.value}")
    editor.setEnabled(info.writable)
    editor.setToolTip(f"{info.name}: {info.describe()}")
    return editor


class CameraSettingsBox(QGroupBox):
    """``load(uri)`` reads the camera; ``values()`` are the settings to keep (URI option -> value)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Camera settings (kept with the recipe)", parent)
        self.form = QFormLayout(self)
        self.editors: dict[str, tuple[QWidget, FeatureInfo]] = {}
        self.missing: list[str] = []
        self.job: Job | None = None
        self._uri = ""
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.form.addRow(self.note)
        self.show_note("Choose a GenICam camera to set its exposure, gain and format here.")

    def show_note(self, text: str) -> None:
        self._clear()
        self.note = QLabel(text)
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color:#5f6368")
        self.form.addRow(self.note)

    def _clear(self) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.editors.clear()
        self.missing = []

    def load(self, uri: str, keep: dict[str, Any] | None = None) -> Job | None:
        """Read the settings of the camera at ``uri`` (``keep``: values chosen before, shown instead of
        the camera's); other sources have none."""
        self._uri = uri
        if not uri.startswith("genicam://"):
            self.show_note("Camera settings: only for GenICam cameras (this source has none).")
            return None
        self.show_note("reading the camera's settings…")
        job = Job(lambda _p, _c: read_camera_settings(uri), "camera settings", self)
        job.finished.connect(lambda found, u=uri: self._read(u, found, keep or {}))
        job.failed.connect(lambda msg, _tb, u=uri: u == self._uri and self.show_note(
            f"<span style='color:#a50e0e'>The camera's settings cannot be read: {msg}</span>"))
        self.job = job.start()
        return job

    def _read(self, uri: str, found: list[tuple[str, FeatureInfo]], keep: dict[str, Any]) -> None:
        if uri != self._uri:  # another camera was chosen meanwhile
            return
        self._clear()
        for option, info in found:
            if not info.present:
                self.missing.append(LABELS.get(option, option))
                continue
            if option in keep and info.writable:
                info.value = keep[option]
            editor = feature_editor(info)
            self.editors[option] = (editor, info)
            self.form.addRow(LABELS.get(option, option), editor)
        if self.missing:
            self.note = QLabel(f"not available on this camera: {', '.join(self.missing)}")
            self.note.setWordWrap(True)
            self.note.setStyleSheet("color:#5f6368")
            self.form.addRow(self.note)

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for option, (editor, info) in self.editors.items():
            if not info.writable:
                continue
            if isinstance(editor, QComboBox):
                out[option] = editor.currentText()
            elif isinstance(editor, (QSpinBox, QDoubleSpinBox)):
                out[option] = editor.value()
        return out
