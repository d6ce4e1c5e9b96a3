"""Page 6: what will be saved, and whether to inspect with it at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QLabel, QVBoxLayout

from station.gui.teach.common import SessionPage

if TYPE_CHECKING:
    from station.gui.teach.wizard import TeachWizard

class SavePage(SessionPage):
    def __init__(self, wizard: TeachWizard) -> None:
        super().__init__(wizard)
        self.setTitle("6  Save")
        self.setSubTitle("Finish saves the recipe as a new version; older versions stay. Cancel discards everything.")
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.use_now = QCheckBox("Inspect with this recipe now")
        self.use_now.setChecked(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.use_now)
        layout.addStretch(1)
        self.setFinalPage(True)

    def initializePage(self) -> None:
        s = self.session
        est = s.estimate
        area = f"{est.min_defect_area_px:g} pixels"
        if s.pixel_size_mm:
            area += f" ({s.area_from_px(est.min_defect_area_px, 'mm2'):.3g} mm²)"
        train, val = s.split()
        region = self.w.detector_page.roi_editor.describe(s.roi) if s.roi else "whole image"
        self.summary.setText(
            f"<p><b>{s.part_name} v{s.version_to_save()}</b> in {s.models_dir / s.part_name}</p>"
            f"<table><tr><td>detector</td><td>{s.detector_kind} {s.params or ''}</td></tr>"
            f"<tr><td>good samples</td><td>{len(train)} learned, {len(val)} held out</td></tr>"
            f"<tr><td>region of interest</td><td>{region}</td></tr>"
            f"<tr><td>minimum defect area</td><td>{area}</td></tr>"
            f"<tr><td>threshold</td><td>{est.threshold:.5g}</td></tr>"
            f"<tr><td>source</td><td>{s.source_uri}</td></tr></table>")
