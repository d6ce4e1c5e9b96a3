"""Progress reporting and co-operative cancellation for long jobs (training, scoring a folder).

Long jobs take a ``progress`` callback and a :class:`CancelToken`; they report after each unit of
work and call :meth:`CancelToken.raise_if_cancelled` at the same points, so a GUI worker or a
Ctrl-C handler can stop them cleanly without killing a thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


class Cancelled(Exception):
    """Raised inside a job at its next cancel point after :meth:`CancelToken.cancel`."""


class CancelToken:
    """A thread-safe flag checked by long jobs at their cancel points."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


@dataclass(frozen=True)
class Progress:
    """One progress report: ``done`` of ``total`` units of the named ``stage``."""

    stage: str
    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.done / self.total)


ProgressCallback = Callable[[Progress], None]


def report(callback: ProgressCallback | None, stage: str, done: int, total: int, message: str = "") -> None:
    """Call ``callback`` if there is one; a job never has to check for ``None`` itself."""
    if callback is not None:
        callback(Progress(stage, done, total, message))


def checkpoint(cancel: CancelToken | None) -> None:
    """A cancel point: raises :class:`Cancelled` if ``cancel`` was set."""
    if cancel is not None:
        cancel.raise_if_cancelled()
