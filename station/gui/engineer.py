"""Engineer mode in the window: the password dialogs, the auto-lock, and the audit of log-ins."""

from __future__ import annotations

import logging

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QWidget,
)

from station.app.context import StationContext
from station.app.engineer import MIN_PASSWORD_LENGTH, CredentialsError

log = logging.getLogger(__name__)


def new_password_problem(new: str, repeat: str) -> str | None:
    """What is wrong with a new password typed twice, in words; ``None`` if it can be set."""
    if len(new) < MIN_PASSWORD_LENGTH:
        return (f"The password needs at least {MIN_PASSWORD_LENGTH} characters"
                f"{f' ({len(new)} so far)' if new else ''}.")
    if new != repeat:
        return "The two passwords differ: type the same one twice."
    return None


def _problem_label() -> QLabel:
    label = QLabel()
    label.setStyleSheet("color:#a50e0e")
    label.setWordWrap(True)
    label.hide()
    return label


class PasswordDialog(QDialog):
    """Asks for the password; with ``confirm`` (first use) asks twice."""

    def __init__(self, confirm: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Set the engineer password" if confirm else "Engineer mode")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.repeat = QLineEdit()
        self.repeat.setEchoMode(QLineEdit.EchoMode.Password)
        form = QFormLayout(self)
        if confirm:
            note = QLabel(f"No engineer password is set on this station yet. Choose one (at least "
                          f"{MIN_PASSWORD_LENGTH} characters); it is stored only as a salted hash.")
            note.setWordWrap(True)
            form.addRow(note)
        form.addRow("Password", self.password)
        if confirm:
            form.addRow("Repeat", self.repeat)
        self.repeat.setVisible(confirm)
        self.problem = _problem_label()  # what is needed, in the dialog: it stays open
        form.addRow(self.problem)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.confirm = confirm

    def accept(self) -> None:
        problem = new_password_problem(self.password.text(), self.repeat.text()) if self.confirm else None
        if problem:
            self.problem.setText(problem)
            self.problem.show()
            self.password.setFocus()
            return
        super().accept()


class ChangePasswordDialog(QDialog):
    """The current password and the new one twice."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Change the engineer password")
        self.current, self.new, self.repeat = (QLineEdit() for _ in range(3))
        form = QFormLayout(self)
        note = QLabel(f"The new password needs at least {MIN_PASSWORD_LENGTH} characters; it is stored only as "
                      f"a salted hash. The change is written to the audit log.")
        note.setWordWrap(True)
        form.addRow(note)
        for label, edit in (("Current password", self.current), ("New password", self.new),
                            ("Repeat new password", self.repeat)):
            edit.setEchoMode(QLineEdit.EchoMode.Password)
            form.addRow(label, edit)
        self.problem = _problem_label()
        form.addRow(self.problem)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def accept(self) -> None:
        problem = new_password_problem(self.new.text(), self.repeat.text())
        if not problem and self.new.text() == self.current.text():
            problem = "The new password is the same as the current one."
        if problem:
            self.problem.setText(problem)
            self.problem.show()
            self.new.setFocus()
            return
        super().accept()


class EngineerGate(QObject):
    """``changed(bool unlocked)``. Locks itself after the configured time without keyboard or mouse use."""

    changed = Signal(bool)

    def __init__(self, ctx: StationContext, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.timer = QTimer(self)
        self.timer.setInterval(5000)
        self.timer.timeout.connect(self._check_expiry)
        self.timer.start()
        self._filtering = False
        self.changed.connect(self._watch_activity)
        self._watch_activity(ctx.engineer.unlocked)

    def _watch_activity(self, unlocked: bool) -> None:
        """Watch keyboard and mouse only while unlocked (the filter sees every event of the app)."""
        app = QApplication.instance()
        if app is None or unlocked == self._filtering:
            return
        if unlocked:
            app.installEventFilter(self)
        else:
            app.removeEventFilter(self)
        self._filtering = unlocked

    @property
    def unlocked(self) -> bool:
        return self.ctx.engineer.unlocked

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() in (QEvent.Type.MouseButtonPress, QEvent.Type.KeyPress) and self.ctx.engineer.unlocked:
            self.ctx.engineer.touch()
        return False

    def _check_expiry(self) -> None:
        if self.ctx.engineer_expired():
            self.changed.emit(False)

    # --- non-interactive (also what the dialogs call; the context audits) --------------------------
    def unlock_with(self, password: str) -> bool:
        if not self.ctx.unlock_engineer(password):
            return False
        self.changed.emit(True)
        return True

    def lock(self) -> None:
        self.ctx.lock_engineer()
        self.changed.emit(False)

    def change_password(self, old: str, new: str) -> None:
        """Raises :class:`CredentialsError` (wrong current password, too short, ...); audited."""
        self.ctx.change_engineer_password(old, new)

    # --- interactive ------------------------------------------------------------------------------
    def request_unlock(self, parent: QWidget | None = None) -> bool:
        try:
            first = not self.ctx.engineer.store.is_set()
        except CredentialsError as exc:
            QMessageBox.critical(parent, "Engineer mode", str(exc))
            return False
        dialog = PasswordDialog(confirm=first, parent=parent)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return False
        try:
            ok = self.unlock_with(dialog.password.text())
        except CredentialsError as exc:
            QMessageBox.warning(parent, "Engineer mode", f"{str(exc)[:1].upper()}{str(exc)[1:]}.")
            return False
        if not ok:
            QMessageBox.warning(parent, "Engineer mode", "Wrong password.")
        return ok

    def request_password_change(self, parent: QWidget | None = None) -> bool:
        dialog = ChangePasswordDialog(parent)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return False
        try:
            self.change_password(dialog.current.text(), dialog.new.text())
        except CredentialsError as exc:
            QMessageBox.warning(parent, "Engineer password", f"The password was not changed: {exc}.")
            return False
        QMessageBox.information(parent, "Engineer password", "The engineer password was changed.")
        return True
