"""Any screen (issue 13 item 4): the window fits 1024x768 and up with the verdict, the counts and the
Engineer button on screen and no number clipped; the operator's full-screen (kiosk) mode is left
(or the station closed) only by an engineer. Geometry only: no inspection runs."""

from __future__ import annotations

import pytest
from helpers_detector import register_test_detector

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

from PySide6.QtCore import QPoint, QRect, QSize  # noqa: E402

from station.gui.main_window import KIOSK_REFUSED, MainWindow, initial_size  # noqa: E402

BIG_NUMBERS = {"ok": "1234567", "ng": "1234567", "total": "2469134", "yield": "100.0 %", "since": "23:59:59",
               "camera": "999.9 fps", "shown": "999.9 fps", "inspected": "999.9 fps", "latency": "9999 ms",
               "dropped": "1234567", "failed": "1234567"}


@pytest.fixture(autouse=True)
def _test_detector():
    register_test_detector()


@pytest.fixture
def window(qtbot, ctx):
    w = MainWindow(ctx, auto_start=False)
    qtbot.addWidget(w)
    w.show()
    yield w
    w.quit_station()


def _inside(window, widget) -> bool:
    top_left = widget.mapTo(window, QPoint(0, 0))
    return window.rect().contains(QRect(top_left, widget.size()))


@pytest.mark.parametrize("size", [(1024, 768), (1280, 800), (1920, 1080)])
def test_everything_the_operator_reads_is_on_screen(qtbot, window, size):
    panel = window.inspect
    for key, text in BIG_NUMBERS.items():  # a long shift's numbers
        panel.labels[key].setText(text)
    window.resize(*size)
    qtbot.waitUntil(lambda: window.size() == QSize(*size), timeout=3000)  # not held larger by a minimum
    important = [panel.verdict, window.engineer_button, panel.start_button, panel.stop_button,
                 panel.results_button, panel.new_shift_button, panel.canvas, *panel.labels.values()]
    for widget in important:
        assert widget.isVisible() and _inside(window, widget), widget
    for key, label in panel.labels.items():  # no number cut off
        assert label.width() >= label.sizeHint().width(), (key, label.width(), label.sizeHint().width())
    assert panel.verdict.height() >= 90 and panel.verdict.width() >= 200
    if size == (1920, 1080):  # the extra room goes to the image
        assert panel.canvas.width() > 1300 and panel.canvas.height() > 650


def test_room_for_a_title_bar_and_a_task_bar_on_a_1024x768_panel(window):
    hint = window.minimumSizeHint()
    assert hint.width() <= 1000 and hint.height() <= 700, hint  # 768 less ~30 px title bar, ~36 px task bar


def test_the_window_opens_to_fit_the_screen():
    assert initial_size(QSize(1920, 1040)) == (QSize(1280, 820), False)
    assert initial_size(QSize(1024, 740)) == (QSize(1024, 740), True)  # small panel: maximized


def test_kiosk_mode_is_left_only_by_an_engineer(qtbot, ctx, window):
    assert window.kiosk_button.isHidden()  # an operator never sees the switch
    window.gate.unlock_with("kiosk-pw")
    assert window.kiosk_button.isVisible()
    window.kiosk_button.setChecked(True)
    assert ctx.settings.kiosk and window.isFullScreen()
    window.gate.lock()
    assert window.kiosk_button.isHidden()
    window.close()  # an operator's close (Alt+F4, the window manager) is refused
    assert window.isVisible() and window.close_seconds is None
    assert any(m[2] == KIOSK_REFUSED for m in window.errors.messages)
    window.showNormal()  # a window manager's shortcut: back to full screen
    qtbot.waitUntil(window.isFullScreen, timeout=3000)
    window.gate.unlock_with("kiosk-pw")
    window.kiosk_button.setChecked(False)
    assert not ctx.settings.kiosk and not window.isFullScreen()
    events = [e.action for e in ctx.audit.entries()[0]]
    assert events.count("window.kiosk") == 2


def test_kiosk_from_the_settings_and_a_signal_still_closes(qtbot, ctx):
    ctx.settings.kiosk = True
    w = MainWindow(ctx, auto_start=False)
    qtbot.addWidget(w)
    w.show_station()
    qtbot.waitUntil(w.isFullScreen, timeout=3000)
    w.quit_station()  # Ctrl-C or SIGTERM: the station always shuts down cleanly
    assert w.close_seconds is not None
