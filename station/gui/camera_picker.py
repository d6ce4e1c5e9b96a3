"""Choosing the image source from a list instead of typing a URI: the GenICam cameras found (vendor,
model, serial), the demo part, folders (Folder… opens a folder dialog) and sources used before. The
URI stays available as an advanced field. Listing cameras loads the GenTL producers: on a worker."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from station.acquisition.camera_choice import SourceChoice, describe_uri, discover_sources, folder_uri
from station.gui.workers import Job


class CameraPicker(QWidget):
    """``uri_changed(str)`` whenever the chosen source changes (picked, browsed or typed)."""

    uri_changed = Signal(str)

    def __init__(self, recent: list[str] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._recent = list(recent or [])
        self.choices: list[SourceChoice] = []
        self.problems: list[str] = []
        self.job: Job | None = None
        self.list = QComboBox()
        self.list.setMinimumContentsLength(28)
        self.folder_button = QPushButton("Folder…")
        self.folder_button.setToolTip("Replay a folder of images (or an MVTec AD category) as a camera")
        self.rescan_button = QPushButton("Rescan")
        self.rescan_button.setToolTip("Look for GenICam cameras again (one plugged in since)")
        self.advanced = QToolButton()
        self.advanced.setText("URI ▸")
        self.advanced.setCheckable(True)
        self.advanced.setToolTip("Show the source URI (options such as fps, trigger or pixel format)")
        self.uri = QLineEdit()
        self.uri.setPlaceholderText("genicam://<serial>?cti=…   folder://<path>?fps=10   synthetic://demo")
        self.uri.hide()
        self.status = QLabel()
        self.status.setStyleSheet("color:#5f6368")
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.list, 1)
        row.addWidget(self.folder_button)
        row.addWidget(self.rescan_button)
        row.addWidget(self.advanced)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.uri)
        layout.addWidget(self.status)
        self.list.activated.connect(self._picked)
        self.folder_button.clicked.connect(self.choose_folder)
        self.rescan_button.clicked.connect(self.rescan)
        self.advanced.toggled.connect(self._toggle_advanced)
        self.uri.textEdited.connect(lambda text: self.uri_changed.emit(text.strip()))

    # --- the list ----------------------------------------------------------------------------------
    def rescan(self) -> Job:
        """List the sources on a worker; the current choice stays."""
        if self.job is not None and self.job.running:
            return self.job
        self.status.setText("looking for cameras…")
        self.rescan_button.setEnabled(False)
        job = Job(lambda _p, _c: discover_sources(self._recent), "cameras", self)
        job.finished.connect(self._listed)
        job.failed.connect(lambda msg, _tb: self._listed(([], [f"listing the cameras failed: {msg}"])))
        self.job = job.start()
        return job

    def _listed(self, found: tuple[list[SourceChoice], list[str]]) -> None:
        self.rescan_button.setEnabled(True)
        self.choices, self.problems = found
        cameras = sum(c.kind == "genicam" for c in self.choices)
        self.status.setText("; ".join(self.problems) or f"{cameras} GenICam camera(s) found")
        self._fill(self.uri_text)

    def _fill(self, keep: str) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for c in self.choices:
            self.list.addItem(c.label + (f"  ({c.detail})" if c.detail and c.detail != "available" else ""), c.uri)
        if keep and self.list.findData(keep) < 0:
            self.list.addItem(describe_uri(keep), keep)
        self.list.setCurrentIndex(max(0, self.list.findData(keep)) if keep else 0)
        self.list.blockSignals(False)
        if not keep and self.list.count():
            self._picked(self.list.currentIndex())

    def _picked(self, index: int) -> None:
        uri = self.list.itemData(index)
        if uri:
            self.uri.setText(uri)
            self.uri_changed.emit(uri)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of images (or an MVTec AD category)")
        if folder:
            self.set_uri(folder_uri(folder))

    def _toggle_advanced(self, on: bool) -> None:
        self.uri.setVisible(on)
        self.advanced.setText("URI ▾" if on else "URI ▸")

    # --- value -------------------------------------------------------------------------------------
    @property
    def uri_text(self) -> str:
        return self.uri.text().strip()

    def set_uri(self, uri: str) -> None:
        """Choose ``uri`` (added to the list when it is not there)."""
        self.uri.setText(uri)
        self._fill(uri)
        self.uri_changed.emit(uri)
