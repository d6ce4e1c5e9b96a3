"""Page 3: the region of interest, the detector and its main parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from station.app.teach_session import detector_params
from station.core.devices import cuda_available
from station.detectors.base import available_detectors
from station.gui.roi_editor import RoiEditor
from station.gui.teach.common import SessionPage
from station.gui.teach.param_editors import editor_value, make_editor
from station.gui.workers import Job
from station.weights.choice import backbone_note

if TYPE_CHECKING:
    from station.gui.teach.wizard import TeachWizard

class DetectorPage(SessionPage):
    def __init__(self, wizard: TeachWizard) -> None:
        super().__init__(wizard)
        self.setTitle("3  Region and detector")
        self.setSubTitle("Choose the part of the image to inspect, how the station learns the part, and its "
                         "main parameters.")
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setMinimumHeight(150)
        self.params_box = QGroupBox("Parameters")
        self.params_form = QFormLayout(self.params_box)
        self.validation = QDoubleSpinBox()
        self.validation.setRange(0.05, 0.5)
        self.validation.setSingleStep(0.05)
        self.validation.setDecimals(2)
        self.validation_label = QLabel()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.params_box)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        left = QVBoxLayout()
        left.addWidget(self.list, 2)
        left.addWidget(scroll, 3)
        row = QFormLayout()
        row.addRow("Held out for the threshold", self.validation)
        row.addRow("", self.validation_label)
        left.addLayout(row)
        self.roi_editor = RoiEditor()
        roi_box = QGroupBox("Region of interest")
        QVBoxLayout(roi_box).addWidget(self.roi_editor)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 1)
        layout.addWidget(roi_box, 1)
        self.editors: dict[str, tuple[QWidget, type]] = {}
        # kind -> its parameters, or why it cannot be used here. Loading a detector imports its
        # module (torch for the deep ones: seconds), so it happens on a worker, once, on selection.
        self.params: dict[str, list | str] = {}
        self.loading: dict[str, Job] = {}
        self.list.currentItemChanged.connect(lambda cur, _prev: self._select(cur))
        self.validation.valueChanged.connect(self._validation_changed)

    def initializePage(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        current = None
        for info in available_detectors():  # the registry: titles and summaries, nothing imported
            item = QListWidgetItem(f"{info.title}\n{info.summary}")
            item.setData(Qt.ItemDataRole.UserRole, info.kind)
            self.list.addItem(item)
            self._mark(item)
            if info.kind == self.session.detector_kind:
                current = item
        if current is None and self.list.count():
            current = self.list.item(0)
        self.list.blockSignals(False)
        if current is not None:
            self.list.setCurrentItem(current)
            self._select(current)
        self.validation.setValue(self.session.validation_fraction)
        self._validation_changed(self.session.validation_fraction)
        self.roi_editor.load(self.session)

    def _mark(self, item: QListWidgetItem) -> None:
        kind = item.data(Qt.ItemDataRole.UserRole)
        info = next(i for i in available_detectors() if i.kind == kind)
        why = self.params.get(kind)
        item.setText(f"{info.title}\n{info.summary}" + (f"\nnot available here: {why}" if isinstance(why, str) else ""))
        item.setForeground(QBrush(QColor("#80868b" if isinstance(why, str) else "#202124")))

    def select_kind(self, kind: str) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == kind:
                self.list.setCurrentRow(i)
                return
        raise KeyError(kind)

    @property
    def loaded(self) -> bool:
        """The selected detector's parameters are known (or why it is unavailable)."""
        return self.session.detector_kind in self.params

    def _clear_form(self) -> None:
        while self.params_form.rowCount():
            self.params_form.removeRow(0)
        self.editors.clear()

    def _select(self, item: QListWidgetItem | None) -> None:
        self._clear_form()
        if item is None:
            return
        kind = item.data(Qt.ItemDataRole.UserRole)
        if kind != self.session.detector_kind:
            self.session.params = {}
        self.session.detector_kind = kind
        if kind not in self.params:
            self.params_form.addRow(QLabel("loading the detector…"))
            if kind not in self.loading:
                job = Job(lambda _p, _c: detector_params(kind), f"load {kind}", self)
                job.finished.connect(lambda specs, k=kind: self._loaded(k, specs))
                job.failed.connect(lambda msg, _tb, k=kind: self._loaded(k, msg))
                self.loading[kind] = job.start()
            self.completeChanged.emit()
            return
        self._build_form(kind)

    def _loaded(self, kind: str, specs_or_reason: list | str) -> None:
        self.loading.pop(kind, None)
        self.params[kind] = specs_or_reason
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == kind:
                self._mark(self.list.item(i))
        if kind == self.session.detector_kind:
            self._clear_form()
            self._build_form(kind)

    def _build_form(self, kind: str) -> None:
        specs = self.params[kind]
        if isinstance(specs, str):
            self.params_form.addRow(QLabel(f"not available here: {specs}"))
            self.completeChanged.emit()
            return
        for spec in specs:
            label, editor = make_editor(spec, self.session.params.get(spec.name, spec.default))
            self.editors[spec.name] = (editor, spec.kind)
            self.params_form.addRow(label, editor)
            if spec.name == "backbone" and isinstance(editor, QComboBox):
                self._add_backbone_note(editor)
        if not self.editors:
            self.params_form.addRow(QLabel("no parameters"))
        self.completeChanged.emit()

    def _add_backbone_note(self, editor: QComboBox) -> None:
        """What was measured for the chosen backbone, and which one suggests itself on this PC."""
        note = QLabel()
        note.setWordWrap(True)
        note.setObjectName("backbone_note")
        gpu = cuda_available()  # torch is already loaded: the detector's parameters came from it

        def show(text: str) -> None:
            note.setText(backbone_note(text.strip(), gpu))

        editor.currentTextChanged.connect(show)
        show(editor.currentText())
        self.params_form.addRow(note)  # the whole width: it is a sentence, not a value

    def _validation_changed(self, value: float) -> None:
        self.session.validation_fraction = float(value)
        if len(self.session.images) >= 2:
            train, val = self.session.split()
            self.validation_label.setText(f"{len(train)} samples to learn from, {len(val)} held out")

    def values(self) -> dict[str, Any]:
        return {name: editor_value(editor, kind) for name, (editor, kind) in self.editors.items()}

    def isComplete(self) -> bool:
        return isinstance(self.params.get(self.session.detector_kind), list)

    def validatePage(self) -> bool:
        self.session.params = self.values()
        self.session.drop_stale_training()  # the same detector and parameters keep their training
        return True
