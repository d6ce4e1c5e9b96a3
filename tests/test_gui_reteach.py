"""Re-teach from the line in the window (issue 16 item 4, pytest-qt): false rejects marked in the
results history become a new recipe version in the Teach tab, shown against the running version in
the comparison table, switched on, and rolled back to the old version in one click -- all audited."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

from helpers_reteach import run_line  # noqa: E402

from station.gui.main_window import MainWindow  # noqa: E402
from station.gui.reteach_dialog import ComparisonDialog  # noqa: E402


def _select(history, frame_id) -> None:
    for i in range(history.model.rowCount()):
        if history.model.row(i)["frame_id"] == frame_id:
            history.table.selectRow(i)
            return
    raise AssertionError(f"frame {frame_id} not in the history")


def test_marked_false_rejects_to_a_new_version_and_back(qtbot, ctx, tmp_path):
    line = run_line(tmp_path, ctx.models_dir, ctx.paths.results_db, ctx.paths.archive, ctx.audit)
    window = MainWindow(ctx, recipe=str(line.v1), auto_start=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.inspect.recipe_path == str(line.v1), timeout=5000)
    box = window.teach.reteach
    assert not box.reteach_button.isEnabled() and not box.rollback_button.isEnabled()  # nothing marked yet
    try:
        history = window.inspect.open_results()
        history.range_box.setCurrentIndex(history.range_box.findData("all"))  # the parts came before the shift
        qtbot.waitUntil(lambda: not history.loading and history.model.rowCount() == 5, timeout=5000)
        _select(history, 2)
        assert not history.marks.mark_button.isEnabled()  # an operator sees, an engineer marks
        assert window.gate.unlock_with("first-password")
        for frame in (2, 3, 4):
            _select(history, frame)
            assert history.marks.mark_button.isEnabled()
            history.marks.mark_button.click()
            assert history.marks.unmark_button.isVisible()
        verdicts = {history.model.row(i)["frame_id"]: history.model.index(i, 4).data()
                    for i in range(history.model.rowCount())}
        assert verdicts[2] == "NG → good" and verdicts[5] == "NG"
        history.close()

        window.tabs.setCurrentWidget(window.teach_stack)
        box.refresh()
        assert "3 marked false rejects" in box.info.text() and box.reteach_button.isEnabled()
        box.reteach_button.click()
        qtbot.waitUntil(lambda: box.dialog is not None, timeout=20000)
        box.dialog.cancel_button.click()  # cancelled: nothing saved, nothing switched
        assert not (line.models / "part" / "v0002").exists() and window.inspect.recipe_path == str(line.v1)
        box.dialog = None
        box.reteach_button.click()
        qtbot.waitUntil(lambda: box.dialog is not None, timeout=20000)
        dialog: ComparisonDialog = box.dialog
        metrics = {dialog.metrics.item(r, 0).text(): (dialog.metrics.item(r, 1).text(), dialog.metrics.item(r, 2).text())
                   for r in range(dialog.metrics.rowCount())}
        assert metrics["NG among the compared parts"] == ("4", "1")
        assert metrics["False rejects fixed"] == ("–", "3")
        assert metrics["Unmarked NG parts judged OK"] == ("–", "0")
        assert metrics["Golden parts"][1] == "1 of 1 right"
        assert dialog.changes.rowCount() == 3
        assert {dialog.changes.item(r, 6).text() for r in range(3)} == {"false reject fixed"}
        assert "part v2" in dialog.switch_button.text()

        dialog.switch_button.click()
        v2 = str(line.models / "part" / "v0002")
        qtbot.waitUntil(lambda: window.inspect.recipe_path == v2, timeout=5000)
        assert box.rollback_button.text() == "Roll back to part v1" and box.rollback_button.isEnabled()
        assert "0 not yet taught" in box.info.text() and not box.reteach_button.isEnabled()
        box.rollback_button.click()  # one click back
        assert window.inspect.recipe_path == str(line.v1)
        actions = [e.action for e in ctx.audit.entries()[0]]
        assert actions[-7:] == ["pool.false_reject"] * 3 + ["recipe.retaught", "recipe.selected", "recipe.selected",
                                                           "recipe.rollback"]
    finally:
        window.close()
