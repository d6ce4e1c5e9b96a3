"""A fresh machine: the window's missing system libraries are named in one line with the apt command
that installs them, before Qt loads (issue 13 item 11)."""

from __future__ import annotations

from pathlib import Path

from station.cli.main import main
from station.gui import system_libs

REPO = Path(__file__).resolve().parents[1]


def test_missing_libraries_become_one_apt_line(monkeypatch, tmp_path):
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(system_libs, "xcb_plugin", lambda: tmp_path / "libqxcb.so")
    monkeypatch.setattr(system_libs, "missing_libraries",
                        lambda plugin: ["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libwhatever.so.9"])
    problem = system_libs.window_problem()
    assert "\n" not in problem
    assert problem.endswith("sudo apt-get install -y libwhatever.so.9 libxcb-icccm4 libxcb-keysyms1")
    monkeypatch.setattr(system_libs, "missing_libraries", lambda plugin: [])
    assert system_libs.window_problem() is None


def test_only_checked_where_qt_uses_x11(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    monkeypatch.setattr(system_libs, "missing_libraries", lambda plugin: ["libxcb-icccm.so.4"])
    assert system_libs.window_problem() is None
    monkeypatch.delenv("QT_QPA_PLATFORM")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert not system_libs.uses_xcb()
    monkeypatch.delenv("WAYLAND_DISPLAY")
    assert system_libs.uses_xcb()


def test_the_linker_is_asked(tmp_path):
    """ldd on a real plugin: this machine runs the GUI tests, so nothing is missing here; a file that
    is not a library gives no false alarm."""
    plugin = system_libs.xcb_plugin()
    if plugin is not None:
        assert system_libs.missing_libraries(plugin) == []
    junk = tmp_path / "libqxcb.so"
    junk.write_text("not a library")
    assert system_libs.missing_libraries(junk) == []


def test_the_window_command_says_it_and_exits(monkeypatch, capsys):
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(system_libs, "window_problem", lambda: "error: the window cannot open: ... (x)")
    assert main(["gui"]) == 2
    assert "the window cannot open" in capsys.readouterr().err


def test_the_readme_lists_the_packages_the_check_names():
    readme = (REPO / "README.md").read_text()
    missing = [p for p in system_libs.WINDOW_PACKAGES if p not in readme]
    assert not missing, missing
