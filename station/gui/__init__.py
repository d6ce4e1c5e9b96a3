"""The station window (PySide6 + pyqtgraph). The only package that imports Qt.

The window is assembly: panels bind widgets to the Qt-free models and services of
:mod:`station.app` and :mod:`station.core`, long jobs and the live pipeline run on worker threads
(:mod:`station.gui.workers`, :mod:`station.live`), and views poll the newest result on a timer.
"""

from station.gui.qt_compat import guard_singleton_refcounts

guard_singleton_refcounts()  # before any widget exists: see station.gui.qt_compat
