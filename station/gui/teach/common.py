"""What every page of the teach-in wizard shares: the base page that reaches the one session model."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QWidget, QWizardPage

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


class EnterKey(QObject):
    """Enter in ``widget`` calls ``action`` and goes no further: in a wizard an unhandled Enter presses
    the default button, Next -- typing a source and pressing Enter must not leave the page."""

    def __init__(self, widget: QWidget, action: Callable[[], None]) -> None:
        super().__init__(widget)
        self.action = action
        widget.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.KeyPress and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.action()
            return True
        return False
