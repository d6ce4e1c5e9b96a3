"""Teach mode (engineer): start the teach-in wizard for a new part or a new version, re-teach the recipe
in use from its marked false rejects (``reteach_dialog``) or roll it back, or re-tune an existing
recipe's minimum defect area (the threshold follows from its stored validation maps) and save the
result as a new version. Every saved change is in the audit log."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from station.app.context import StationContext
from station.app.recipes import list_recipes, retune_recipe
from station.core.recipe import Recipe, load_recipe
from station.core.teach import validation_estimator
from station.gui.reteach_dialog import ReteachBox
from station.gui.teach import TeachWizard
from station.gui.threshold_panel import ThresholdPanel
from station.gui.widgets import on_event

log = logging.getLogger(__name__)
ErrorReporter = Callable[[str, str, str], None]


class TeachPanel(QWidget):
    """``recipe_saved(path, use_now)`` after the wizard or a re-tune saved a version."""

    recipe_saved = Signal(str, bool)

    def __init__(self, ctx: StationContext, report: ErrorReporter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.report = report
        self.wizard: TeachWizard | None = None
        self.retune_recipe: Recipe | None = None
        self._loaded_path: str | None = None  # the recipe the re-tune panel shows

        home = QWidget()
        new_button = QPushButton("Teach a new part…")
        new_button.setMinimumHeight(44)
        new_button.clicked.connect(self.open_wizard)
        intro = QLabel("The wizard takes you from good samples to a saved recipe: capture or import good parts, "
                       "choose a detector, train, then set the smallest defect to be found.")
        intro.setWordWrap(True)
        retune = QGroupBox("Re-tune a recipe: minimum defect area → threshold")
        self.retune_pick = QComboBox()
        self.retune_panel = ThresholdPanel()
        self.retune_save = QPushButton("Save as new version")
        self.retune_save.setEnabled(False)
        self.retune_info = QLabel()
        rl = QVBoxLayout(retune)
        row = QHBoxLayout()
        row.addWidget(QLabel("Recipe"))
        row.addWidget(self.retune_pick, 1)
        row.addWidget(self.retune_save)
        rl.addLayout(row)
        rl.addWidget(self.retune_info)
        rl.addWidget(self.retune_panel, 1)
        hl = QVBoxLayout(home)
        top = QHBoxLayout()
        top.addWidget(new_button)
        top.addWidget(intro, 1)
        hl.addLayout(top)
        self.reteach = ReteachBox(ctx, report)
        hl.addWidget(self.reteach)
        hl.addWidget(retune, 1)

        self.stack = QStackedWidget()
        self.stack.addWidget(home)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)

        self.retune_pick.activated.connect(lambda _i: self._pick_changed())
        self.retune_panel.estimate_changed.connect(self._retune_estimate)
        self.retune_save.clicked.connect(self.save_retune)
        on_event(self, ctx.events.recipes_changed, self._recipes_changed)
        on_event(self, ctx.events.recipe_selected, lambda _p: self.reteach.refresh())
        self.fill_recipes()

    def _recipes_changed(self) -> None:
        self.fill_recipes()
        self.reteach.refresh()

    # --- wizard -----------------------------------------------------------------------------------
    def open_wizard(self) -> TeachWizard | None:
        """The wizard (a new one, or the one already open); ``None`` if the engineer chose to stay with
        an unsaved re-tune."""
        if self.wizard is not None:
            self.stack.setCurrentWidget(self.wizard)
            return self.wizard
        if not self.settle_unsaved_retune("teaching a new part"):
            return None
        wizard = TeachWizard(self.ctx, report=self.report)
        wizard.setWindowFlags(Qt.WindowType.Widget)  # embedded in the mode, not a separate dialog
        wizard.saved.connect(lambda path, use_now: self.recipe_saved.emit(str(path), bool(use_now)))
        wizard.closed.connect(self._wizard_closed)
        self.stack.addWidget(wizard)
        self.stack.setCurrentWidget(wizard)
        self.wizard = wizard
        return wizard

    def _wizard_closed(self) -> None:
        wizard, self.wizard = self.wizard, None
        self.stack.setCurrentIndex(0)
        if wizard is not None:
            self.stack.removeWidget(wizard)
            wizard.deleteLater()
        self.fill_recipes()

    # --- re-tune ----------------------------------------------------------------------------------
    def fill_recipes(self) -> None:
        """List the recipes; the panel shows the one picked (the first, at the start), loaded -- an
        unsaved re-tune of a recipe still listed stays as it is."""
        current = self.retune_pick.currentData()
        self.retune_pick.blockSignals(True)
        self.retune_pick.clear()
        for entry in list_recipes(self.ctx.models_dir):
            self.retune_pick.addItem(entry.label, str(entry.path))
        i = self.retune_pick.findData(current)
        self.retune_pick.setCurrentIndex(i if i >= 0 else (0 if self.retune_pick.count() else -1))
        self.retune_pick.blockSignals(False)
        shown = self.retune_pick.currentData()
        if shown != self._loaded_path or (shown is None and self.retune_recipe is not None):
            self.load_retune(shown)

    @property
    def retune_unsaved(self) -> bool:
        """A minimum area was changed on the re-tune panel and not saved."""
        return self.retune_save.isEnabled()

    def ask_unsaved(self, doing: str) -> str:
        """``"save"``, ``"discard"`` or ``"cancel"`` (the dialog; tests replace it)."""
        buttons = QMessageBox.StandardButton
        answer = QMessageBox.question(
            self, "Unsaved re-tune",
            f"The re-tuned minimum defect area of {self.retune_recipe.label} is not saved. Save it as a new "
            f"version before {doing}?", buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save)
        return {buttons.Save: "save", buttons.Discard: "discard"}.get(answer, "cancel")

    def settle_unsaved_retune(self, doing: str) -> bool:
        """Before something replaces the re-tune: ask about an unsaved change. True to go on."""
        if not self.retune_unsaved:
            return True
        answer = self.ask_unsaved(doing)
        if answer == "save":
            return self.save_retune() is not None
        if answer == "discard":
            self.load_retune(self._loaded_path)
            return True
        return False

    def _pick_changed(self) -> None:
        path = self.retune_pick.currentData()
        if path == self._loaded_path:
            return
        if not self.settle_unsaved_retune("showing another recipe"):
            self.retune_pick.setCurrentIndex(max(0, self.retune_pick.findData(self._loaded_path)))
            return
        self.load_retune(self.retune_pick.currentData())

    def load_retune(self, path: str | None) -> None:
        self.retune_recipe = None
        self._loaded_path = path
        self.retune_save.setEnabled(False)
        if not path:
            self.retune_info.setText("No recipe yet: teach a part first.")
            return
        try:
            recipe = load_recipe(path)
            estimator = validation_estimator(recipe)
        except Exception as exc:  # noqa: BLE001 - a broken recipe is reported, the panel stays usable
            self.retune_info.setText(f"<span style='color:#a50e0e'>{exc}</span>")
            self.report("recipe", str(exc), "")
            return
        self.retune_recipe = recipe
        shape = tuple(recipe.validation.get("image_shape") or recipe.validation_maps()[0].shape)
        self.retune_info.setText(f"{recipe.label}: {recipe.detector_kind}, threshold {recipe.threshold:.5g} for "
                                 f"{recipe.min_defect_area_px:g} px, {len(estimator)} validation images")
        self.retune_panel.set_validation(estimator.estimate, recipe.validation_maps(), shape,
                                         recipe.min_defect_area_px, pixel_size_mm=recipe.pixel_size_mm)

    def _retune_estimate(self, est) -> None:
        r = self.retune_recipe
        self.retune_save.setEnabled(r is not None and est.min_defect_area_px != r.min_defect_area_px)

    def save_retune(self) -> str | None:
        r = self.retune_recipe
        est = self.retune_panel.estimate
        if r is None or est is None:
            return None
        try:
            new = retune_recipe(r, est.min_defect_area_px, self.ctx.audit, role=self.ctx.role)
        except Exception as exc:  # noqa: BLE001
            self.report("recipe", f"re-tuned recipe not saved: {exc}", "")
            return None
        self.retune_save.setEnabled(False)  # saved: nothing left to lose while the list is refilled
        self.fill_recipes()
        self.retune_pick.setCurrentIndex(self.retune_pick.findData(str(new.path)))
        self.load_retune(str(new.path))
        self.recipe_saved.emit(str(new.path), False)
        return str(new.path)

    def shutdown(self, timeout: float = 1.5) -> bool:
        self.retune_panel.shutdown()
        self.reteach.shutdown(timeout)
        if self.wizard is not None:
            return self.wizard.shutdown(timeout)
        return True
