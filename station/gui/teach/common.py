"""What every page of the teach-in wizard shares: the base page that reaches the one session model."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QWizardPage

from station.app.teach_session import TeachSession

if TYPE_CHECKING:
    from station.gui.teach.wizard import TeachWizard


GOOD_DEMO_SOURCE = "synthetic://demo?fps=30&defect_rate=0"
ErrorReporter = Callable[[str, str, str], None]  # where, message, details


class SessionPage(QWizardPage):
    def __init__(self, wizard: TeachWizard) -> None:
        super().__init__()
        self.w = wizard

    @property
    def session(self) -> TeachSession:
        return self.w.session

