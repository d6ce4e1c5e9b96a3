"""A small results database for the history tests: two sources, OK and NG, one NG part archived,
one row from last week."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from station.live.results_db import ResultRow, ResultsLog

LINE1 = "synthetic://demo"
LINE2 = "folder:///data/line2/cameras/top-left/2026-batch-0042?fps=10&loop=1&pattern=*.png"


@dataclass
class FilledResults:
    db: Path
    archive: Path
    now: float
    image: np.ndarray  # the archived NG image
    image_frame: int  # its frame id
    recent: list[ResultRow]  # rows of the last hour
    old: ResultRow  # a row from 3 days ago


def fill_results(root: Path, now: float | None = None) -> FilledResults:
    """Rows a few seconds apart in the last minutes (frame ids 1..8) and one 3 days old (frame 99)."""
    now = time.time() if now is None else now
    db, archive = root / "results.sqlite", root / "archive"
    image = np.zeros((60, 80, 3), np.uint8)
    image[10:30, 20:50] = (200, 40, 40)
    when = now - 200.0
    day = datetime.fromtimestamp(when)
    img_path = archive / day.strftime("%Y-%m-%d") / f"{day.strftime('%H%M%S')}_000_3_NG.png"
    img_path.parent.mkdir(parents=True)
    cv2.imwrite(str(img_path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    ng_regions = [{"area_px": 600.0, "bbox": [20, 10, 30, 20], "centroid": [34.5, 19.5]},
                  {"area_px": 12.0, "bbox": [60, 40, 4, 3], "centroid": [61.5, 41.0]}]
    spec = [  # frame, source, verdict, archived
        (1, LINE1, "OK", False), (2, LINE1, "OK", False), (3, LINE1, "NG", True), (4, LINE1, "OK", False),
        (5, LINE2, "OK", False), (6, LINE2, "NG", False), (7, LINE2, "OK", False), (8, LINE1, "ERROR", False),
    ]
    recent = []
    for i, (frame, source, verdict, archived) in enumerate(spec):
        t = now - 300.0 + 30.0 * i if frame != 3 else when
        recent.append(ResultRow(
            time=t, source=source, frame_id=frame, verdict=verdict, recipe="demo", recipe_version=2,
            score=None if verdict == "ERROR" else (0.9 if verdict == "NG" else 0.2), threshold=0.5,
            regions=ng_regions if verdict == "NG" else [], latency_ms=12.5 + i, inspect_ms=8.0,
            image_path=str(img_path) if archived else None, error="ValueError: bad frame" if verdict == "ERROR" else None))
    old = ResultRow(time=now - 3 * 86400.0, source=LINE1, frame_id=99, verdict="NG", recipe="demo", recipe_version=1,
                    score=0.8, threshold=0.5, regions=ng_regions[:1], latency_ms=20.0)
    with ResultsLog(db, durability="normal") as log:
        for row in [old, *recent]:
            log.record(row)
    return FilledResults(db, archive, now, image, 3, recent, old)
