"""Arrays spooled to a temporary file come back bit for bit (the review keeps its maps there)."""

from __future__ import annotations

import numpy as np

from station.core.spool import ArraySpool, spooled


def test_arrays_come_back_exactly_and_none_stays_none(rng):
    arrays = [rng.random((7, 5), dtype=np.float32), None, rng.random((3, 4, 2)) > 0.5,
              rng.random(11).astype(np.float16), np.zeros((0, 4), np.uint8)]
    spool = ArraySpool(arrays)
    assert len(spool) == 5 and spool.nbytes == sum(a.nbytes for a in arrays if a is not None)
    for mine, theirs in zip(spool, arrays, strict=True):
        if theirs is None:
            assert mine is None
        else:
            assert mine.dtype == theirs.dtype and mine.shape == theirs.shape and np.array_equal(mine, theirs)
    assert spool[-2].dtype == np.float16 and [a is None for a in spool[:2]] == [False, True]
    spool[0][0, 0] = -1.0  # a copy: the spool is not changed through it
    assert spool[0][0, 0] == arrays[0][0, 0]
    assert spooled(spool) is spool and spooled([]) == []
    spool.close()
