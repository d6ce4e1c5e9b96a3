"""Page 6: what will be saved, in words, and whether to inspect with it at once."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QLabel, QVBoxLayout

from station.app.teach_session import ParamSpec, TeachSession
from station.detectors.base import available_detectors
from station.gui.camera_settings import LABELS
from station.gui.teach.common import SessionPage

if TYPE_CHECKING:
    from station.gui.teach.wizard import TeachWizard


def _row(name: str, value: str) -> str:
    return f"<tr><td style='padding:2px 16px 2px 0; color:#5f6368'>{name}</td><td>{value}</td></tr>"


def parameters_text(session: TeachSession, specs: list[ParamSpec] | str | None) -> str:
    """The detector's parameters in words: those changed from their defaults, by their labels."""
    if not isinstance(specs, list):
        return "defaults"
    changed = [f"{html.escape(s.label)} {html.escape(str(session.params[s.name]))}"
               + (f" {html.escape(s.text.unit)}" if s.text and s.text.unit else "")
               for s in specs if s.name in session.params and session.params[s.name] != s.default]
    if not changed:
        return "all at their defaults"
    return "; ".join(changed) + " (the others at their defaults)"


def summary_html(session: TeachSession, specs: list[ParamSpec] | str | None, region: str) -> str:
    """The page's summary: what the recipe will hold and where it goes."""
    s = session
    est = s.estimate
    title = next((i.title for i in available_detectors() if i.kind == s.detector_kind), s.detector_kind)
    area = f"{est.min_defect_area_px:g} pixels"
    if s.pixel_size_mm:
        area += f" ({s.area_from_px(est.min_defect_area_px, 'mm2'):.3g} mm² at {s.pixel_size_mm:g} mm/pixel)"
    train, val = s.split()
    fit = (s.result.recipe.training.get("fit_seconds") or 0.0) if s.result is not None else 0.0
    rows = [
        _row("detector", html.escape(title)),
        _row("parameters", parameters_text(s, specs)),
        _row("good samples", f"{len(train)} learned, {len(val)} held out to set the threshold"),
        _row("samples from", html.escape(s.samples_source())),
        _row("region of interest", html.escape(region)),
        _row("minimum defect area", area),
        _row("threshold", f"{est.threshold:.5g} (no held-out good sample has a region that large above it)"),
        _row("training time", f"{fit:.1f} s"),
        _row("camera", html.escape(s.source_uri)),
        _row("camera settings", html.escape(", ".join(f"{LABELS.get(k, k)} {v:g}" if isinstance(v, float) else
                                                      f"{LABELS.get(k, k)} {v}" for k, v in s.camera_settings.items())
                                            or "none kept (the camera's own)")),
    ]
    return (f"<p style='font-size:13pt'><b>{html.escape(s.part_name)} v{s.version_to_save()}</b></p>"
            f"<p>saved in {html.escape(str(s.models_dir / s.part_name))}</p>"
            f"<table>{''.join(rows)}</table>")


class SavePage(SessionPage):
    def __init__(self, wizard: TeachWizard) -> None:
        super().__init__(wizard)
        self.setTitle("6  Save")
        self.setSubTitle("Finish saves the recipe as a new version; older versions stay. Cancel discards everything.")
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.use_now = QCheckBox("Inspect with this recipe now")
        self.use_now.setChecked(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.use_now)
        layout.addStretch(1)
        self.setFinalPage(True)

    def initializePage(self) -> None:
        s = self.session
        region = self.w.detector_page.roi_editor.describe(s.roi) if s.roi else "whole image"
        self.summary.setText(summary_html(s, self.w.detector_page.params.get(s.detector_kind), region))
