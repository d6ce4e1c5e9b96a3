"""Teach mode (engineer): start the teach-in wizard for a new part or a new version, re-teach the recipe
in use from its marked false rejects (``reteach_dialog``) or roll it back, or re-tune an existing
recipe's minimum defect area (the threshold follows from its stored validation maps) and save the
result as a new version. Every saved change is in the audit log.

Opening a recipe for the re-tune and saving its new version read and write all of the recipe's arrays:
both run on workers (``station.app.recipes.open_for_retune`` / ``retune_recipe``), so the window never
waits on the disk."""

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
from station.app.recipes import RetuneSource, list_recipes, open_for_retune, recipe_label, retune_recipe
from station.core.recipe import Recipe
from station.gui.gc_guard import release_memory_soon
from station.gui.reteach_dialog import ReteachBox
from station.gui.teach import TeachWizard
from station.gui.threshold_panel import ThresholdPanel
from station.gui.widgets import on_event
from station.gui.workers import Job

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
        self._load_serial = 0  # only the newest load's answer is shown
        self._load_job: Job | None = None
        self._save_job: Job | None = None

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
        if not self.settle_unsaved_retune("teaching a new part", then=self.open_wizard):
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
            release_memory_soon()  # its samples and training (the peak of a teach) go back to the system
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

    def settle_unsaved_retune(self, doing: str, then: Callable[[], object] | None = None) -> bool:
        """Before something replaces the re-tune: ask about an unsaved change. True to go on now; after
        "save" the version is saved on a worker and ``then`` runs once it is saved (False here)."""
        if not self.retune_unsaved:
            return True
        answer = self.ask_unsaved(doing)
        if answer == "save":
            self.save_retune(then=then)
            return False
        if answer == "discard":
            self.load_retune(self._loaded_path)
            return True
        return False

    def _pick_changed(self) -> None:
        path = self.retune_pick.currentData()
        if path == self._loaded_path:
            return
        if not self.settle_unsaved_retune("showing another recipe", then=lambda p=path: self._show_pick(p)):
            self.retune_pick.setCurrentIndex(max(0, self.retune_pick.findData(self._loaded_path)))
            return
        self.load_retune(self.retune_pick.currentData())

    def _show_pick(self, path: str) -> None:
        i = self.retune_pick.findData(path)
        if i >= 0:
            self.retune_pick.setCurrentIndex(i)
            self.load_retune(path)

    def load_retune(self, path: str | None) -> Job | None:
        """Show the recipe at ``path`` (loaded on a worker; the panel says so meanwhile)."""
        self.retune_recipe = None
        self._loaded_path = path
        self._load_serial += 1
        self.retune_save.setEnabled(False)
        if not path:
            self.retune_info.setText("No recipe yet: teach a part first.")
            return None
        serial = self._load_serial
        self.retune_info.setText(f"loading {recipe_label(path)}…")
        job = Job(lambda _p, _c: open_for_retune(path), name="retune-load", parent=self)
        job.finished.connect(lambda source: self._retune_loaded(serial, source))
        job.failed.connect(lambda msg, _tb: self._retune_load_failed(serial, msg))
        self._load_job = job.start()
        return job

    def _retune_loaded(self, serial: int, source: RetuneSource) -> None:
        if serial != self._load_serial:  # another recipe was picked meanwhile
            return
        recipe = source.recipe
        self.retune_recipe = recipe
        self.retune_info.setText(source.summary)
        self.retune_panel.set_validation(source.estimator.estimate, source.maps, source.shape,
                                         recipe.min_defect_area_px, pixel_size_mm=recipe.pixel_size_mm)

    def _retune_load_failed(self, serial: int, message: str) -> None:
        if serial != self._load_serial:
            return
        # a broken recipe is reported, the panel stays usable
        self.retune_info.setText(f"<span style='color:#a50e0e'>{message}</span>")
        self.report("recipe", message, "")

    def _retune_estimate(self, est) -> None:
        r = self.retune_recipe
        saving = self._save_job is not None
        self.retune_save.setEnabled(r is not None and not saving and est.min_defect_area_px != r.min_defect_area_px)

    def save_retune(self, then: Callable[[], object] | None = None) -> Job | None:
        """Save the re-tuned recipe as a new version on a worker; ``recipe_saved`` follows, then ``then``."""
        r = self.retune_recipe
        est = self.retune_panel.estimate
        if r is None or est is None or self._save_job is not None:
            return None
        area, audit, role = est.min_defect_area_px, self.ctx.audit, self.ctx.role
        self.retune_save.setEnabled(False)
        self.retune_info.setText(f"saving {r.label} with a minimum defect area of {area:g} px as a new version…")
        job = Job(lambda _p, _c: retune_recipe(r, area, audit, role=role), name="retune-save", parent=self)
        job.finished.connect(lambda new: self._retune_saved(new, then))
        job.failed.connect(self._retune_save_failed)
        self._save_job = job.start()
        return job

    def _retune_saved(self, new: Recipe, then: Callable[[], object] | None) -> None:
        self._save_job = None
        self.fill_recipes()
        self._show_pick(str(new.path))
        self.recipe_saved.emit(str(new.path), False)
        if then is not None:
            then()

    def _retune_save_failed(self, message: str, details: str) -> None:
        self._save_job = None
        r = self.retune_recipe
        if r is not None:  # the change is still on the panel, unsaved
            self.retune_info.setText(f"<span style='color:#a50e0e'>{r.label}: the re-tuned version is not "
                                     f"saved ({message})</span>")
            est = self.retune_panel.estimate
            self.retune_save.setEnabled(est is not None and est.min_defect_area_px != r.min_defect_area_px)
        self.report("recipe", f"re-tuned recipe not saved: {message}", details)

    def shutdown(self, timeout: float = 1.5) -> bool:
        for job in (self._save_job, self._load_job):
            if job is not None:
                job.wait(timeout)  # a version being saved is finished, not cut off
        self.retune_panel.shutdown()
        self.reteach.shutdown(timeout)
        if self.wizard is not None:
            return self.wizard.shutdown(timeout)
        return True
