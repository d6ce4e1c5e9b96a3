"""The teach-in wizard, one module per page; all pages share one plain model, :class:`~station.app.teach_session.TeachSession`."""

from station.gui.teach.wizard import TeachWizard

__all__ = ["TeachWizard"]
