"""Work-arounds for defects of the Qt bindings, applied before the window is built.

shiboken6 6.12.0 on CPython 3.10/3.11 (found with the pinned ``PySide6-Essentials==6.12.0``): every
call of a Qt method returning ``void`` drops one reference to ``None`` that it never took, and every
signal emission drops one to ``True``. From CPython 3.12 on these objects are immortal and nothing
happens; on 3.11 their counts run down with use -- a live view emitting signals and calling setters at
30 frames/s takes ``True`` to zero within a minute -- and the interpreter aborts with "Fatal Python
error: bool_dealloc" (or ``none_dealloc``), at the latest when it exits.

:func:`guard_singleton_refcounts` detects the defect (a few calls of a void Qt method) and, only if
it is there, gives ``None``, ``True`` and ``False`` a reference count so large that no run can
exhaust it -- what CPython 3.12 does for them anyway (immortal objects). They are never freed before
the interpreter ends, so this changes nothing else. The real fix is a bindings version without the
defect (6.11.2 has none); the check keeps the station safe whichever is installed.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import sys

log = logging.getLogger(__name__)

_BIG = 1 << 40  # references: at 100 000 lost per second, 130 years


def _leaks_none_references() -> bool:
    from PySide6.QtCore import QTimer

    timer = QTimer()
    before = sys.getrefcount(None)
    for _ in range(64):
        timer.setInterval(5)  # returns void
    return sys.getrefcount(None) < before - 32


def guard_singleton_refcounts() -> bool:
    """Detect the reference leak of the bindings and neutralise it; True if it was found."""
    if sys.version_info >= (3, 12) or platform.python_implementation() != "CPython":
        return False  # None, True and False are immortal there
    if not _leaks_none_references():
        return False
    import shiboken6

    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += _BIG  # ob_refcnt is the object's first field
    log.info("shiboken6 %s loses references to None/True on this Python %s; guarded (see %s). "
                "Install PySide6 6.11.2 or use Python 3.12+ to be rid of it.", shiboken6.__version__,
                platform.python_version(), __name__)
    return True
