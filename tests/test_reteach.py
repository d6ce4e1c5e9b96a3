"""Re-teaching from the line without Qt: false rejects marked in the results history join the part's
good-sample pool (kept across restarts, audited), a new version is taught from the pool with the
running version's detector and parameters, compared on the archived parts, switched on, rolled back."""

from __future__ import annotations

import pytest
from helpers_reteach import run_line

from station.app.reteach import ReteachError, record_rollback, rollback_target, switch_to, teach_candidate
from station.app.sample_pool import PoolError, SamplePool, pool_for_row
from station.core.golden import golden_parts
from station.core.recipe import load_recipe, versions


def test_marked_false_rejects_are_taught_compared_switched_and_rolled_back(tmp_path):
    line = run_line(tmp_path)
    assert [r["verdict"] for r in line.rows.values()] == ["OK", "NG", "NG", "NG", "NG"]
    pool = pool_for_row(line.models, line.variants[0])
    assert len(pool.teach_samples()) == 12 and not pool.false_rejects()  # the wizard kept its samples
    with pytest.raises(ReteachError, match="no false rejects"):
        teach_candidate(line.v1, line.models, line.db, line.archive, device="cpu")
    with pytest.raises(PoolError, match="only NG"):
        pool.mark(line.rows["ok"], tmp_path / "x.png")
    with pytest.raises(PoolError, match="cannot be used"):
        pool.mark(line.rows["defect"], tmp_path / "missing.png")

    for row in line.variants:
        pool.mark(row, row["image_path"], line.audit)
    pool.mark(line.variants[0], line.variants[0]["image_path"], line.audit)  # twice: still one mark
    assert len(SamplePool(line.models / "part").false_rejects()) == 3  # read anew: it survives a restart

    cand = teach_candidate(line.v1, line.models, line.db, line.archive, device="cpu")
    assert [v for v, _ in versions(line.models / "part")] == [1]  # nothing saved before the switch
    old, new = load_recipe(line.v1), cand.recipe
    assert (new.detector_kind, new.detector_config, new.min_defect_area_px) == (
        old.detector_kind, old.detector_config, old.min_defect_area_px)
    assert new.training["n_images"] + new.validation["n_images"] == 15 and cand.false_rejects == 3
    assert new.threshold > old.threshold  # re-derived on held-out samples that include a marked one
    m = cand.comparison.metrics()
    assert m == {"compared": 4, "old_ng": 4, "new_ng": 1, "marked": 3, "fixed": 3, "still_rejected": 0,
                 "ng_now_ok": 0, "ok_now_ng": 0}
    changes = cand.comparison.changes()
    assert [(p.frame_id, p.old, p.new, p.marked) for p in changes] == [(4, "NG", "OK", True), (3, "NG", "OK", True),
                                                                      (2, "NG", "OK", True)]
    assert cand.comparison.golden is not None and cand.comparison.golden.passed
    assert cand.comparison.warnings() == []

    v2 = switch_to(cand, line.audit)
    saved = load_recipe(v2)
    assert saved.version == 2 and saved.training["reteach"]["from"] == "part v1"
    assert saved.threshold == new.threshold
    assert [p.name for p in golden_parts(saved)] == ["ok_ref"]  # the golden parts went along
    assert len(SamplePool(line.models / "part").teach_samples()) == 12  # the pool is left as it was
    assert rollback_target(v2) == line.v1 and rollback_target(line.v1) is None
    record_rollback(line.audit, v2, line.v1)
    entries = line.audit.entries()[0]
    assert [e.action for e in entries] == ["recipe.created"] + ["pool.false_reject"] * 3 + [
        "recipe.retaught", "recipe.rollback"]
    assert (entries[-1].old, entries[-1].new) == ("part v2", "part v1")
    assert entries[-2].extra["metrics"]["fixed"] == 3

    assert pool.unmark(line.variants[2], line.audit) and len(pool.false_rejects()) == 2
    assert line.audit.entries()[0][-1].action == "pool.false_reject_removed"


def test_an_archived_ng_part_the_new_version_would_pass_is_flagged_first(tmp_path):
    line = run_line(tmp_path)
    pool = pool_for_row(line.models, line.variants[0])
    for row in line.variants:
        pool.mark(row, row["image_path"])
    # the defect is archived but not marked; make the re-teach learn it anyway (a careless teach folder)
    defect_copy = pool.folder / "images" / "defect_as_teach.png"
    defect_copy.write_bytes(open(line.rows["defect"]["image_path"], "rb").read())
    samples = pool.samples()
    from dataclasses import replace

    extra = [replace(samples[0], id=f"d{i}", file=str(defect_copy)) for i in range(6)]
    pool._write(samples + extra)
    cand = teach_candidate(line.v1, line.models, line.db, line.archive, device="cpu")
    m = cand.comparison.metrics()
    assert m["ng_now_ok"] == 1
    first = cand.comparison.changes()[0]
    assert first.danger and first.frame_id == 5
    assert cand.comparison.warnings()[0].startswith("WARNING: 1 archived NG part(s) that nobody marked")


def test_the_demo_parts_pool_renders_its_samples_again(tmp_path):
    import numpy as np

    from station.acquisition.synthetic import SyntheticPart

    pool = SamplePool(tmp_path / "demo")
    assert pool.record_rendered(0, 64, [7, 9]) == 2
    images, used, problems = pool.load()
    assert [s.id for s in used] == ["t0001", "t0002"] and problems == []
    np.testing.assert_array_equal(images[1], SyntheticPart(seed=0, size=64).render(9).image)
    assert not (pool.folder / "images").exists()  # nothing but the list is written
