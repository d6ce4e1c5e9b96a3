"""The window's Qt-free services: settings, engineer password, audit log, recipes, demo bootstrap,
the teach-in model, shift counters and the review service."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers_data import make_mvtec_category
from helpers_detector import register_test_detector

from station.app import settings as settings_mod
from station.app.audit import AuditLog
from station.app.demo import DEMO_PART, DEMO_TRAIN, DEMO_VALIDATION, ensure_demo_recipe, find_demo_recipe
from station.app.engineer import CredentialsError, EngineerSession, PasswordStore
from station.app.recipes import check_part_name, list_recipes, next_version, retune_recipe
from station.app.review import ReviewRequest, export_report, run_review
from station.app.settings import SCHEMA_VERSION, Settings, load_settings, save_settings
from station.app.teach_session import TeachSession
from station.core.progress import Cancelled, CancelToken
from station.core.recipe import load_recipe, versions
from station.live.shift import ShiftCounters


@pytest.fixture(autouse=True)
def _test_detector():
    register_test_detector()


# --- settings -------------------------------------------------------------------------------------
def test_settings_round_trip(tmp_path):
    path = tmp_path / "settings.json"
    s = Settings()
    s.remember_source("folder:///data?fps=5")
    s.recipe_path = "/models/x/v0002"
    save_settings(s, path)
    loaded = load_settings(path)
    assert loaded.problems == [] and loaded.writable
    assert loaded.settings == s
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    assert loaded.settings.recent_sources[0] == "folder:///data?fps=5"


def test_missing_settings_give_defaults(tmp_path):
    loaded = load_settings(tmp_path / "none.json")
    assert loaded.settings == Settings() and loaded.problems == []


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"source_uri": "x"}', "\xff\xfe", '{"schema_version": "one"}'])
def test_bad_settings_file_is_kept_aside_and_defaults_used(tmp_path, content):
    path = tmp_path / "settings.json"
    path.write_bytes(content.encode("latin-1"))
    loaded = load_settings(path)
    assert loaded.settings == Settings()
    assert len(loaded.problems) == 1 and "using the defaults" in loaded.problems[0]
    assert not path.exists()
    kept = list(tmp_path.glob("settings.json.bad-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == content.encode("latin-1")


def test_bad_field_falls_back_alone(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"schema_version": SCHEMA_VERSION, "auto_start": "yes", "ng_strip_size": 5,
                                "recent_sources": [1, 2], "unknown_key": 3}))
    loaded = load_settings(path)
    assert loaded.settings.auto_start is True  # the default
    assert loaded.settings.ng_strip_size == 5  # kept
    assert loaded.settings.recent_sources == Settings().recent_sources
    assert len(loaded.problems) == 2


def test_newer_settings_are_not_overwritten(tmp_path):
    path = tmp_path / "settings.json"
    text = json.dumps({"schema_version": SCHEMA_VERSION + 1, "source_uri": "future://cam"})
    path.write_text(text)
    loaded = load_settings(path)
    assert not loaded.writable and loaded.settings == Settings()
    assert path.read_text() == text


def test_settings_migration(tmp_path, monkeypatch):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"schema_version": 0, "camera": "synthetic://demo?fps=5"}))

    def v0_to_v1(d):
        d["source_uri"] = d.pop("camera")
        d["schema_version"] = 1
        return d

    monkeypatch.setitem(settings_mod.MIGRATIONS, 0, v0_to_v1)
    loaded = load_settings(path)
    assert loaded.problems == [] and loaded.settings.source_uri == "synthetic://demo?fps=5"


def test_failing_migration_does_not_stop_the_station(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"schema_version": 0}))  # no migration from 0 is registered
    loaded = load_settings(path)
    assert loaded.settings == Settings() and "could not be migrated" in loaded.problems[0]


# --- engineer password ----------------------------------------------------------------------------
def test_password_is_stored_hashed_and_verified(tmp_path):
    store = PasswordStore(tmp_path / "engineer.json")
    assert not store.is_set()
    store.set_password("s3cret-pass")
    text = (tmp_path / "engineer.json").read_text()
    assert "s3cret-pass" not in text
    record = json.loads(text)
    assert record["algorithm"] in ("scrypt", "pbkdf2-sha256") and len(bytes.fromhex(record["salt"])) == 16
    if os.name == "posix":
        assert stat.S_IMODE((tmp_path / "engineer.json").stat().st_mode) == 0o600
    assert store.verify("s3cret-pass") and not store.verify("s3cret-pasS") and not store.verify("")
    # the same password hashes differently with another salt
    other = PasswordStore(tmp_path / "other.json")
    other.set_password("s3cret-pass")
    assert json.loads((tmp_path / "other.json").read_text())["hash"] != record["hash"]


def test_password_change_needs_the_old_one(tmp_path):
    store = PasswordStore(tmp_path / "engineer.json")
    store.set_password("first-pass")
    with pytest.raises(CredentialsError, match="current password"):
        store.set_password("second-pass")
    with pytest.raises(CredentialsError, match="current password"):
        store.set_password("second-pass", old="wrong-pass")
    store.set_password("second-pass", old="first-pass")
    assert store.verify("second-pass") and not store.verify("first-pass")
    with pytest.raises(CredentialsError, match="at least"):
        store.set_password("abc", old="second-pass")


@pytest.mark.parametrize("content", ["garbage", '{"algorithm": "scrypt"}', '{"algorithm": "scrypt", "salt": "zz", "hash": "00"}'])
def test_corrupt_password_file_keeps_engineer_mode_locked(tmp_path, content):
    path = tmp_path / "engineer.json"
    path.write_text(content)
    store = PasswordStore(path)
    with pytest.raises(CredentialsError, match="administrator deletes"):
        store.is_set()
    session = EngineerSession(store)
    with pytest.raises(CredentialsError):
        session.set_first_password("anything-long")  # never "no password yet"
    assert not session.unlocked


def test_engineer_session_auto_locks():
    now = [0.0]
    store_dir = Path(__import__("tempfile").mkdtemp())
    session = EngineerSession(PasswordStore(store_dir / "e.json"), auto_lock_s=60, clock=lambda: now[0])
    session.set_first_password("pass-word")
    assert session.unlocked
    now[0] = 50
    session.touch()
    now[0] = 100
    assert not session.expired() and session.unlocked
    now[0] = 111
    assert session.expired() and not session.unlocked
    assert not session.unlock("wrong-word") and session.unlock("pass-word")


def test_password_change_needs_an_unlocked_session_and_the_current_password(tmp_path):
    session = EngineerSession(PasswordStore(tmp_path / "e.json"))
    session.set_first_password("pass-word")
    session.lock()
    with pytest.raises(CredentialsError, match="unlock"):  # someone at a locked station
        session.change_password("pass-word", "new-word")
    assert session.unlock("pass-word")
    with pytest.raises(CredentialsError, match="same"):
        session.change_password("pass-word", "pass-word")
    with pytest.raises(CredentialsError, match="wrong"):  # someone at an unlocked station
        session.change_password("guess-word", "new-word")
    with pytest.raises(CredentialsError, match="at least"):
        session.change_password("pass-word", "short")
    session.change_password("pass-word", "new-word")
    assert session.store.verify("new-word") and not session.store.verify("pass-word")


# --- audit log ------------------------------------------------------------------------------------
def test_audit_log_appends_and_survives_a_cut_line(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl", user="alice")
    log.record("threshold", "demo v2", 1.5, 1.7, note="retuned")
    with open(tmp_path / "audit.jsonl", "ab") as f:
        f.write(b'{"time": "2026-01-01T00:00:00", "user": "bo')  # a crash mid-line
    log.record("min_defect_area", "demo v2", 30.0, 50.0, unit="px")
    entries, bad = log.entries()
    assert bad == 1
    assert [(e.action, e.old, e.new, e.user) for e in entries] == [
        ("threshold", 1.5, 1.7, "alice"), ("min_defect_area", 30.0, 50.0, "alice")]
    assert entries[1].extra == {"unit": "px"} and entries[0].role == "engineer"


def test_audit_log_from_threads(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    threads = [threading.Thread(target=lambda k=k: [log.record("recipe.selected", f"t{k}", i, i + 1)
                                                      for i in range(25)]) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries, bad = log.entries()
    assert bad == 0 and len(entries) == 100


# --- recipes, demo, teach session -----------------------------------------------------------------
def test_part_names():
    assert check_part_name("washer-m8.v2") is None
    for bad in ("", ".hidden", "a/b", "x" * 65, "with space", "../up"):
        assert check_part_name(bad) is not None


def test_demo_recipe_taught_once_and_reused(tmp_path):
    audit = AuditLog(tmp_path / "audit.jsonl")
    progress = []
    folder = ensure_demo_recipe(tmp_path / "models", "test-zscore", progress=progress.append, audit=audit)
    assert folder == tmp_path / "models" / DEMO_PART / "v0001"
    recipe = load_recipe(folder)
    assert recipe.pixel_size_mm == 0.2 and recipe.training["n_images"] == DEMO_TRAIN \
        and recipe.validation["n_images"] == DEMO_VALIDATION
    assert {p.stage for p in progress} >= {"rendering demo parts", "fitting", "validating"}
    assert ensure_demo_recipe(tmp_path / "models", "test-zscore") == folder  # not taught again
    entries, _ = audit.entries()
    assert [(e.action, e.role) for e in entries] == [("recipe.created", "system")]


def test_demo_teaching_cancelled_writes_nothing(tmp_path):
    token = CancelToken()

    def progress(p):
        if p.stage == "validating":
            token.cancel()

    with pytest.raises(Cancelled):
        ensure_demo_recipe(tmp_path / "models", "test-zscore", progress=progress, cancel=token)
    assert find_demo_recipe(tmp_path / "models") is None
    assert not any((tmp_path / "models").rglob("*.json"))


def test_corrupt_demo_recipe_is_taught_again(tmp_path):
    first = ensure_demo_recipe(tmp_path, "test-zscore")
    (first / "recipe.json").write_text("{broken")
    second = ensure_demo_recipe(tmp_path, "test-zscore")
    assert second.name == "v0002" and load_recipe(second).name == "demo"


def _session(tmp_path, n=12):
    from station.acquisition.synthetic import SyntheticPart

    part = SyntheticPart(seed=3, size=96)
    s = TeachSession(models_dir=tmp_path / "models", part_name="washer", detector_kind="test-zscore")
    for i in range(n):
        assert s.add_image(part.render(i).image, f"frame {i}")
    return s, part


def test_teach_session_to_saved_recipe(tmp_path):
    s, part = _session(tmp_path)
    assert not s.add_image(np.zeros((50, 60, 3), np.uint8), "odd") and "differs" in s.problems[-1]
    train, val = s.split()
    assert len(val) == round(12 * 0.2) and sorted(train + val) == list(range(12)) and s.split() == (train, val)
    result = s.train()
    assert result.recipe.training["n_images"] == len(train)
    low, high = s.estimate_for(5.0), s.estimate_for(200.0)
    assert low.threshold >= high.threshold  # a larger minimum area allows a lower threshold
    s.apply_estimate(high)
    audit = AuditLog(tmp_path / "audit.jsonl")
    assert s.version_to_save() == 1
    folder = s.save(audit)
    recipe = load_recipe(folder)
    assert recipe.threshold == pytest.approx(high.threshold) and recipe.min_defect_area_px == 200.0
    assert s.version_to_save() == 2
    assert [e.action for e in audit.entries()[0]] == ["recipe.created"]
    assert [e.label for e in list_recipes(tmp_path / "models")] == ["washer v1"]


def test_teach_session_needs_enough_samples_and_a_name(tmp_path):
    s, _ = _session(tmp_path, n=3)
    assert "at least 4" in s.samples_problem()
    with pytest.raises(ValueError, match="at least"):
        s.train()
    s.part_name = "bad name"
    assert s.name_problem() is not None


def test_teach_session_area_units(tmp_path):
    s, _ = _session(tmp_path, n=4)
    with pytest.raises(ValueError, match="pixel size"):
        s.area_to_px(1.0, "mm2")
    s.pixel_size_mm = 0.5
    assert s.area_to_px(1.0, "mm2") == pytest.approx(4.0)
    assert s.area_from_px(4.0, "mm2") == pytest.approx(1.0)


def test_retune_saves_a_new_version_and_audits(tmp_path):
    folder = ensure_demo_recipe(tmp_path, "test-zscore")
    recipe = load_recipe(folder)
    audit = AuditLog(tmp_path / "audit.jsonl")
    new = retune_recipe(recipe, 120.0, audit)
    assert new.version == 2 and new.min_defect_area_px == 120.0 and new.threshold <= recipe.threshold
    assert load_recipe(folder).min_defect_area_px == recipe.min_defect_area_px  # v1 untouched
    actions = [(e.action, e.old, e.new) for e in audit.entries()[0]]
    assert ("min_defect_area", recipe.min_defect_area_px, 120.0) in actions
    assert next_version(tmp_path, "demo") == 3 and len(versions(tmp_path / "demo")) == 2


def test_shift_counters():
    from station.live.stats import PipelineStats

    c = ShiftCounters()
    run = object()
    c.follow(run, PipelineStats(acquired=14, ok=8, ng=2, failed=1, dropped=3))
    snap = c.snapshot()
    assert (snap.ok, snap.ng, snap.total, snap.dropped, snap.failed) == (8, 2, 11, 3, 1)
    assert snap.yield_percent == pytest.approx(100 * 8 / 11)  # the failed part is not a good one
    c.new_shift()
    assert c.snapshot().total == 0 and c.snapshot().yield_percent is None
    c.follow(run, PipelineStats(acquired=15, ok=9, ng=2, failed=1, dropped=3))  # only what came after
    assert c.snapshot().ok == 1 and c.snapshot().total == 1


# --- review ---------------------------------------------------------------------------------------
def test_review_teach_first_score_and_export(tmp_path):
    data = make_mvtec_category(tmp_path / "part", n_train=10, n_good_test=3, n_defect=3)
    audit = AuditLog(tmp_path / "audit.jsonl")
    seen = []
    outcome = run_review(ReviewRequest(data=data, recipe_path=None, detector_kind="test-zscore",
                                       models_dir=tmp_path / "models"),
                         on_image=lambda s, im, r, m: seen.append(s.name), audit=audit)
    assert outcome.labelled and outcome.taught == tmp_path / "models" / "part" / "v0001"
    assert len(outcome.result.records) == 9 and seen == [r.name for r in outcome.result.records]
    assert outcome.result.overall["image_roc_auc"] is not None
    assert [e.action for e in audit.entries()[0]] == ["recipe.created"]
    quick = run_review(ReviewRequest(data=data, recipe_path=outcome.taught, max_per_type=1))
    assert sorted(r.label for r in quick.result.records) == ["good", "scratch", "spot"]
    json_path = export_report(quick, tmp_path / "report")
    assert json_path.is_file() and (tmp_path / "report" / "images.csv").is_file()
    assert len(list((tmp_path / "report" / "overlays").rglob("*.jpg"))) == 3


def test_review_of_a_plain_folder(tmp_path):
    data = make_mvtec_category(tmp_path / "part", n_train=8, n_good_test=2, n_defect=1)
    folder = run_review(ReviewRequest(data=data, recipe_path=None, detector_kind="test-zscore",
                                      models_dir=tmp_path / "models")).taught
    with pytest.raises(Exception, match="MVTec"):
        run_review(ReviewRequest(data=data / "test", recipe_path=None, models_dir=tmp_path))
    outcome = run_review(ReviewRequest(data=data / "test", recipe_path=folder))
    assert not outcome.labelled and len(outcome.result.records) == 4


def test_the_context_audits_engineer_mode_and_a_kept_recipe(tmp_path):
    """The widgets only call these: every log-in, lock, auto-lock and password change is audited here."""
    from station.app.context import StationContext
    from station.app.paths import AppPaths

    ctx = StationContext.load(AppPaths(tmp_path / "home"))
    now = [0.0]
    ctx.engineer = EngineerSession(ctx.engineer.store, auto_lock_s=60, clock=lambda: now[0])
    assert ctx.unlock_engineer("first-pass") and ctx.role == "engineer"  # first use sets it
    ctx.lock_engineer()
    ctx.lock_engineer()  # already locked: nothing more to record
    assert not ctx.unlock_engineer("wrong-pass") and ctx.role == "operator"
    assert ctx.unlock_engineer("first-pass")
    with pytest.raises(CredentialsError):
        ctx.change_engineer_password("wrong-pass", "second-pass")
    ctx.change_engineer_password("first-pass", "second-pass")
    assert not ctx.engineer_expired()
    now[0] = 61.0
    assert ctx.engineer_expired() and ctx.role == "operator"
    ctx.keep_recipe("models/a/v0001", "models/b/v0001", ["the frame is 64x64, the recipe 96x96"])
    entries = ctx.audit.entries()[0]
    assert [e.action for e in entries] == [
        "engineer.password_set", "engineer.unlock", "engineer.lock", "engineer.unlock_failed", "engineer.unlock",
        "engineer.password_change_failed", "engineer.password_changed", "engineer.auto_lock", "recipe.kept"]
    assert entries[-1].role == "operator" and "64x64" in entries[-1].note
    written = ctx.paths.audit_log.read_text(encoding="utf-8")
    assert not any(pw in written for pw in ("first-pass", "wrong-pass", "second-pass"))  # never a password


def test_review_remembers_its_folder_and_sample_size(tmp_path):
    from station.app.context import StationContext
    from station.app.paths import AppPaths

    ctx = StationContext.load(AppPaths(tmp_path / "home"))
    ctx.remember_review(str(tmp_path / "bottle"), 7)
    again = StationContext.load(AppPaths(tmp_path / "home"))
    assert (again.settings.review_folder, again.settings.review_max_per_type) == (str(tmp_path / "bottle"), 7)
