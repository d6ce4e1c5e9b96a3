"""What happened in the station, as events the window (or anything else) subscribes to.

The app layer emits them where the change is made -- a recipe saved, the inspection's recipe or
source switched -- so no widget has to know which others to refresh. psygnal (napari's and
pymmcore-plus's event library) is Qt-free: the events are tested without a window. They are emitted
on the thread that made the change; the window's changes are made on its own thread.
"""

from __future__ import annotations

from psygnal import Signal


class StationEvents:
    """The station's notifications; each instance has its own connections."""

    recipes_changed = Signal(str)  # a recipe version was saved (taught, re-tuned, int8): its folder
    recipe_selected = Signal(str)  # inspection uses this recipe from now on (the folder)
    source_selected = Signal(str)  # inspection uses this source from now on (its URI)
    kiosk_changed = Signal(bool)  # the operator's full-screen mode was switched on or off
