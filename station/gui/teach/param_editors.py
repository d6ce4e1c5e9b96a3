"""One editor per detector parameter: a check box, a spin box with its unit, or -- for a text
parameter whose values are known -- a choice box; the label and tooltip come from the detector's
docstring (:mod:`station.app.param_docs`)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLabel, QLineEdit, QSpinBox, QWidget

from station.app.teach_session import ParamSpec

_SUFFIX_UNITS = {"px": " px", "°": "°"}  # short units go into the spin box; longer ones beside the label


def make_editor(spec: ParamSpec, value: Any) -> tuple[QLabel, QWidget]:
    """The label and the editor of ``spec``, showing ``value``."""
    text = spec.text
    unit = text.unit if text else ""
    if spec.kind is bool:
        editor: QWidget = QCheckBox()
        editor.setChecked(bool(value))
    elif spec.kind is int:
        editor = QSpinBox()
        editor.setRange(-1_000_000, 1_000_000)
        editor.setValue(int(value))
    elif spec.kind is float:
        editor = QDoubleSpinBox()
        # as many decimals as the default needs (0.01, 1e-4), at least one: "20.0°", not "20.0000°"
        shown = f"{float(spec.default):.6f}".rstrip("0")
        editor.setDecimals(min(6, max(1, len(shown.split(".")[1]) + 1)))
        editor.setRange(-1e9, 1e9)
        editor.setValue(float(value))
    elif text and text.choices:
        editor = QComboBox()
        editor.addItems(list(text.choices))
        editor.setEditable(text.editable)
        if editor.findText(str(value)) < 0:
            editor.addItem(str(value))
        editor.setCurrentText(str(value))
    else:
        editor = QLineEdit(str(value))
    label_text = spec.label
    if unit and isinstance(editor, (QSpinBox, QDoubleSpinBox)) and unit in _SUFFIX_UNITS:
        editor.setSuffix(_SUFFIX_UNITS[unit])
    elif unit:
        label_text += f" ({unit})"
    label = QLabel(label_text)
    if text and text.tooltip:
        for w in (label, editor):
            w.setToolTip(text.tooltip)
    editor.setObjectName(spec.name)
    return label, editor


def editor_value(editor: QWidget, kind: type) -> Any:
    if kind is bool:
        return editor.isChecked()
    if kind in (int, float):
        return kind(editor.value())
    if isinstance(editor, QComboBox):
        return editor.currentText().strip()
    return editor.text()
