"""The results history dialog, driven with pytest-qt offscreen: counts, filters, the archived NG image,
the CSV export, an unreadable database, and the Inspect panel's "Results…" button."""

from __future__ import annotations

import csv

import pytest
from helpers_history import LINE1, LINE2, fill_results

pytest.importorskip("pytestqt")
pytestmark = pytest.mark.gui

from PySide6.QtCore import Qt  # noqa: E402

import station.gui.history_dialog as history_dialog  # noqa: E402
from station.app.context import StationContext  # noqa: E402
from station.app.paths import AppPaths  # noqa: E402
from station.gui.history_dialog import HistoryDialog  # noqa: E402
from station.gui.inspect_mode import InspectPanel  # noqa: E402


@pytest.fixture
def filled(tmp_path):
    return fill_results(tmp_path)


@pytest.fixture
def open_dialog(qtbot):
    def make(db, archive=None, shift_start=None) -> HistoryDialog:
        d = HistoryDialog(db, archive, shift_start=shift_start)
        qtbot.addWidget(d)
        d.show()  # reads the database
        wait_loaded(qtbot, d)
        return d

    return make


def wait_loaded(qtbot, d: HistoryDialog) -> None:
    qtbot.waitUntil(lambda: not d.loading, timeout=10000)


def choose(qtbot, d: HistoryDialog, box, data) -> None:
    box.setCurrentIndex(box.findData(data))
    box.activated.emit(box.currentIndex())  # what a user's pick emits (the source box listens to it)
    wait_loaded(qtbot, d)


def frames(d: HistoryDialog) -> list[int]:
    return [d.model.row(i)["frame_id"] for i in range(d.model.rowCount())]


def test_counts_and_filters(qtbot, filled, open_dialog):
    d = open_dialog(filled.db, filled.archive, shift_start=lambda: filled.now - 3600)
    assert d.range_box.currentData() == "shift" and d.error is None
    assert d.summary_label.text().startswith("8 inspected: 5 OK, 2 NG, 1 ERROR — yield 71.4 %")
    assert frames(d) == [8, 7, 6, 5, 3, 4, 2, 1]
    assert d.model.index(4, 4).data() == "NG"
    assert d.model.index(4, 4).data(Qt.ItemDataRole.BackgroundRole).name() == "#d93025"
    assert [d.source_box.itemData(i) for i in range(d.source_box.count())] == [None, LINE1, LINE2]
    qtbot.waitUntil(lambda: d.table.horizontalHeader().length() <= d.table.viewport().width(), timeout=2000)

    choose(qtbot, d, d.verdict_box, "NG")
    assert frames(d) == [6, 3]
    choose(qtbot, d, d.source_box, LINE2)
    assert frames(d) == [6] and d.summary_label.text().startswith("3 inspected: 2 OK, 1 NG")
    choose(qtbot, d, d.range_box, "all")  # the source stays chosen
    assert d.source_box.currentData() == LINE2 and frames(d) == [6]
    choose(qtbot, d, d.source_box, None)
    assert frames(d) == [6, 3, 99]
    assert not d.message.isVisible()


def test_row_limit_says_more_rows_exist(qtbot, filled, open_dialog, monkeypatch):
    monkeypatch.setattr(history_dialog, "ROW_LIMIT", 3)
    d = open_dialog(filled.db, filled.archive)
    assert frames(d) == [8, 7, 6]
    assert not d.message.isHidden() and "newest 3 of 8" in d.message.text()


def test_selecting_an_ng_row_shows_its_image(qtbot, filled, open_dialog):
    d = open_dialog(filled.db, filled.archive)
    i = frames(d).index(filled.image_frame)
    d.table.selectRow(i)
    assert d.preview.image_shape == filled.image.shape
    assert (d.preview.image_item.image == filled.image).all()
    xs, ys = d.preview.det_item.getData()
    # both boxes, closed, NaN-separated; the first is bbox [20, 10, 30, 20] through its edge pixels' centres
    assert len(xs) == 12 and list(xs[:5]) == [20.5, 49.5, 49.5, 20.5, 20.5] and list(ys[:5]) == [10.5] * 2 + [29.5] * 2 + [10.5]
    assert "region 1: 600 px" in d.preview_info.text() and "_3_NG.png" in d.preview_info.text()
    d.table.selectRow(frames(d).index(6))  # an NG part whose image was not kept
    assert d.preview.image_shape is None and "not archived" in d.preview_info.text()
    filled_path = next(filled.archive.glob("*/*.png"))
    filled_path.write_bytes(b"garbage")
    d.table.selectRow(i)
    assert d.preview.image_shape is None and "cannot be read" in d.preview_info.text()


def test_export_writes_the_filtered_rows(qtbot, filled, open_dialog, tmp_path):
    d = open_dialog(filled.db, filled.archive)
    choose(qtbot, d, d.source_box, LINE1)
    out = tmp_path / "out" / "ng.csv"
    out.parent.mkdir()
    d.export_to(out)
    qtbot.waitUntil(lambda: not d.exporting, timeout=10000)
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["frame_id"]) for r in rows] == [1, 2, 4, 3, 8]  # oldest first, as the CLI exports
    assert {r["source"] for r in rows} == {LINE1}
    assert f"Exported 5 rows to {out}" in d.message.text()
    assert not list(out.parent.glob("*.tmp"))
    d.export_to(tmp_path / "no-such-folder" / "x.csv")
    qtbot.waitUntil(lambda: not d.exporting, timeout=10000)
    assert d.message.text().startswith("Export failed:") and d.export_button.isEnabled()


@pytest.mark.parametrize("kind", ["corrupt", "missing", "empty"])
def test_unreadable_database_is_a_message(qtbot, tmp_path, open_dialog, kind):
    db = tmp_path / "results.sqlite"
    if kind == "corrupt":
        db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    elif kind == "empty":
        db.write_bytes(b"")
    d = open_dialog(db)
    assert d.error and not d.message.isHidden()
    assert d.message.text().startswith("Cannot read the results database:")
    assert "results.sqlite" in d.message.text()
    assert d.model.rowCount() == 0 and not d.export_button.isEnabled()


def test_results_button_opens_one_dialog(qtbot, tmp_path):
    ctx = StationContext.load(AppPaths(tmp_path / "home"))
    f = fill_results(tmp_path / "home")
    assert f.db == ctx.paths.results_db and f.archive == ctx.paths.archive
    panel = InspectPanel(ctx, report=lambda *a: None)
    qtbot.addWidget(panel)
    panel.show()
    qtbot.mouseClick(panel.results_button, Qt.MouseButton.LeftButton)
    d = panel.history
    assert d is not None and d.isVisible() and d.windowTitle() == "Inspection results"
    wait_loaded(qtbot, d)
    assert d.range_box.currentData() == "shift"  # the shift began when the context was loaded: no rows
    assert d.model.rowCount() == 0
    ctx.counters.started = ctx.counters.started.fromtimestamp(f.now - 250)
    qtbot.mouseClick(panel.results_button, Qt.MouseButton.LeftButton)
    assert panel.history is d
    wait_loaded(qtbot, d)
    assert frames(d) == [8, 7, 6, 5, 3, 4]
    d.close()
    qtbot.mouseClick(panel.results_button, Qt.MouseButton.LeftButton)
    assert panel.history is d and d.isVisible()
    wait_loaded(qtbot, d)
