"""The Inspect screen's dialogs: one NG part at full size, and "the recipe does not fit the camera"."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtWidgets import QCheckBox, QDialog, QHBoxLayout, QLabel, QMessageBox, QVBoxLayout, QWidget

from station.gui.image_view import ImageCanvas
from station.live.session import NgRecord


class NgDialog(QDialog):
    """One NG part at full size: image, heatmap and outlines, with its regions listed."""

    def __init__(self, record: NgRecord, pixel_size_mm: float | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        when = datetime.fromtimestamp(record.time).strftime("%H:%M:%S")
        self.setWindowTitle(f"NG part – frame {record.frame_id} at {when}")
        self.canvas = ImageCanvas()
        self.canvas.show_image(record.image)
        self.canvas.show_result(record.result)
        heat = QCheckBox("heatmap")
        heat.setChecked(True)
        heat.toggled.connect(self.canvas.set_heatmap_visible)
        r = record.result
        lines = [f"score {r.score:.4g} (threshold {r.threshold:.4g}, minimum area {r.min_defect_area_px:g} px)"]
        if record.label:  # the ground truth a replay or the demo knows: say where it comes from
            demo = record.source.startswith("synthetic://")
            lines.append(f"{'the demo source says' if demo else 'labelled in the source'}: {record.label}")
        for i, reg in enumerate(r.regions[:8], 1):
            area = f"{reg.area_px:.0f} px" + (f" = {reg.area_mm2(pixel_size_mm):.2f} mm²" if pixel_size_mm else "")
            lines.append(f"region {i}: {area} at ({reg.centroid[0]:.0f}, {reg.centroid[1]:.0f}), peak {reg.peak_score:.3g}")
        info = QLabel("\n".join(lines))
        layout = QVBoxLayout(self)
        layout.addWidget(self.canvas, 1)
        row = QHBoxLayout()
        row.addWidget(info, 1)
        row.addWidget(heat)
        layout.addLayout(row)
        h, w = record.image.shape[:2]
        self.resize(min(1400, max(500, w + 40)), min(1000, max(500, h + 120)))


def ask_recipe_mismatch(parent: QWidget, new: str, current: str, source: str, problems: list[str]) -> str:
    """Ask what to do when recipe ``new`` does not fit ``source``: ``"keep"`` the ``current`` recipe,
    choose another ``"source"``, or ``"switch"`` anyway."""
    box = QMessageBox(QMessageBox.Icon.Warning, "The recipe does not fit the camera",
                      f"{new} does not fit what {source} delivers:", parent=parent)
    box.setInformativeText("\n".join(f"• {p}" for p in problems) +
                           "\n\nEvery frame would fail. Keep the current recipe, choose another source, "
                           "or switch anyway.")
    keep = box.addButton(f"Keep {current}", QMessageBox.ButtonRole.RejectRole)
    other = box.addButton("Choose another source", QMessageBox.ButtonRole.ActionRole)
    box.addButton("Switch anyway", QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(keep)
    box.exec()
    clicked = box.clickedButton()
    return "keep" if clicked is keep else "source" if clicked is other else "switch"
