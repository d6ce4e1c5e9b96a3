"""The drift and input watch in the window (issue 16 item 2, pytest-qt): a lamp dimmed a little
raises the drift warning in the line status; a frame without a part is shown "out of range", never OK."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from helpers_detector import register_test_detector  # noqa: E402

from station.gui.main_window import MainWindow  # noqa: E402


@pytest.fixture(autouse=True)
def _test_detector():
    register_test_detector()


def test_the_window_shows_the_drift_warning_and_never_an_ok_for_an_empty_fixture(qtbot, ctx):
    window = MainWindow(ctx)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.first_verdict_s is not None, timeout=30000)
    panel = window.inspect
    try:
        panel.stop()
        qtbot.waitUntil(lambda: not panel.running, timeout=10000)
        # the lamp at 96 %: still judged, but darker frame after frame; every 5th fixture empty
        panel.source.setCurrentText("synthetic://demo?fps=20&light=0.96&empty_every=5")
        panel.start()
        qtbot.waitUntil(lambda: panel.shown is not None and panel.shown.verdict == "OUT_OF_RANGE", timeout=30000)
        assert panel.verdict.text().startswith("OUT OF RANGE") and "no part" in panel.frame_info.text()
        qtbot.waitUntil(lambda: "Warning – drift: the frames are getting darker" in panel.line_status.text(),
                        timeout=30000)
        assert panel.line_status.isVisible()
        panel.refresh_stats()
        assert int(panel.labels["out_of_range"].text()) >= 1
    finally:
        window.close()
