"""The station's choices are app services (settings saved, audited) that announce themselves as
psygnal events; no window needed."""

from __future__ import annotations

from station.app.context import StationContext
from station.app.paths import AppPaths
from station.app.settings import load_settings


def _actions(ctx):
    return [e.action for e in ctx.audit.entries()[0]]


def test_choices_are_saved_audited_and_announced(tmp_path):
    ctx = StationContext.load(AppPaths(tmp_path / "home"))
    heard: list[tuple[str, object]] = []
    ctx.events.source_selected.connect(lambda uri: heard.append(("source", uri)))
    ctx.events.recipe_selected.connect(lambda path: heard.append(("recipe", path)))
    ctx.events.recipes_changed.connect(lambda path: heard.append(("saved", path)))
    ctx.events.kiosk_changed.connect(lambda on: heard.append(("kiosk", on)))

    assert ctx.select_source("synthetic://demo?fps=5")
    assert not ctx.select_source("synthetic://demo?fps=5")  # already the source: nothing happens
    assert not ctx.select_source("   ")
    ctx.select_recipe(str(tmp_path / "models" / "p" / "v0001"), None, note="test")
    ctx.recipe_saved(tmp_path / "models" / "p" / "v0002")
    ctx.set_kiosk(True)
    ctx.set_kiosk(True)  # no change, no event, no audit line

    assert heard == [("source", "synthetic://demo?fps=5"), ("recipe", str(tmp_path / "models" / "p" / "v0001")),
                     ("saved", str(tmp_path / "models" / "p" / "v0002")), ("kiosk", True)]
    saved = load_settings(ctx.paths.settings).settings
    assert saved.source_uri == "synthetic://demo?fps=5" and saved.kiosk
    assert saved.recipe_path.endswith("v0001")
    assert _actions(ctx) == ["source.selected", "recipe.selected", "window.kiosk"]


def test_each_station_has_its_own_events(tmp_path):
    a = StationContext.load(AppPaths(tmp_path / "a"))
    b = StationContext.load(AppPaths(tmp_path / "b"))
    heard = []
    a.events.recipes_changed.connect(heard.append)
    b.recipe_saved("elsewhere")
    assert heard == []
