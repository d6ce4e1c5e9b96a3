"""Issue 13 item 10 and issue 14 item 6: a too-short engineer password keeps its dialog open and says
what is needed; the results history has a Close button and sorts by any column."""

from __future__ import annotations

import pytest
from helpers_history import fill_results

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QDialogButtonBox  # noqa: E402

from station.app.engineer import MIN_PASSWORD_LENGTH  # noqa: E402
from station.gui.engineer import ChangePasswordDialog, PasswordDialog  # noqa: E402
from station.gui.history_dialog import HistoryDialog  # noqa: E402


def _ok(dialog) -> None:
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()


def test_a_too_short_first_password_keeps_the_dialog_open(qtbot):
    d = PasswordDialog(confirm=True)
    qtbot.addWidget(d)
    d.show()
    d.password.setText("abc")
    d.repeat.setText("abc")
    _ok(d)
    assert d.isVisible() and d.result() != d.DialogCode.Accepted
    assert d.problem.isVisible() and f"at least {MIN_PASSWORD_LENGTH} characters (3 so far)" in d.problem.text()
    d.password.setText("abcdefgh")
    d.repeat.setText("abcdefgx")
    _ok(d)
    assert d.isVisible() and "differ" in d.problem.text()
    d.repeat.setText("abcdefgh")
    _ok(d)
    assert d.result() == d.DialogCode.Accepted and not d.isVisible()


def test_a_too_short_new_password_keeps_the_change_dialog_open(qtbot):
    d = ChangePasswordDialog()
    qtbot.addWidget(d)
    d.show()
    d.current.setText("old-password")
    d.new.setText("x")
    d.repeat.setText("x")
    _ok(d)
    assert d.isVisible() and "at least" in d.problem.text()


def _open(qtbot, tmp_path) -> HistoryDialog:
    filled = fill_results(tmp_path)
    d = HistoryDialog(filled.db, filled.archive)
    qtbot.addWidget(d)
    d.range_box.setCurrentIndex(d.range_box.findData("all"))
    d.show()
    qtbot.waitUntil(lambda: not d.loading and d.model.rowCount() > 0, timeout=10000)
    return d


def test_the_results_history_sorts_by_any_column(qtbot, tmp_path):
    d = _open(qtbot, tmp_path)
    rows = lambda key: [d.model.row(i).get(key) for i in range(d.model.rowCount())]  # noqa: E731
    times = rows("time")
    assert times == sorted(times, reverse=True)  # newest first to begin with
    d.table.sortByColumn(d.model.columnCount() - 4, Qt.SortOrder.DescendingOrder)  # Score
    scores = [s for s in rows("score") if s is not None]
    assert scores == sorted(scores, reverse=True) and len(scores) >= 3
    assert rows("score")[-1] is None or rows("score")[-1] == scores[-1]  # an error row without a score last
    d.table.sortByColumn(2, Qt.SortOrder.AscendingOrder)  # Frame
    assert rows("frame_id") == sorted(rows("frame_id"))
    first = d.model.row(0)
    d.table.selectRow(0)
    assert f"frame {first['frame_id']}" in d.preview_info.text()  # the preview follows the sorted row
    d.table.sortByColumn(4, Qt.SortOrder.AscendingOrder)  # Verdict
    verdicts = rows("verdict")
    assert verdicts == sorted(verdicts)


def test_the_results_history_has_a_close_button(qtbot, tmp_path):
    d = _open(qtbot, tmp_path)
    assert d.close_button.text().replace("&", "") == "Close"
    d.close_button.click()
    assert not d.isVisible()
