"""The local results log as the outbox: every forwarder keeps a cursor in it and reads on from there.

Transactional outbox: the inspection row is committed to the local SQLite log first (by the live
pipeline); a forwarder reads the rows after its cursor, delivers them, and only then moves its cursor
(table ``forward_cursors`` in the same file). A crash or a dead link between delivering and moving
the cursor re-sends those rows -- at-least-once, in order -- and receivers de-duplicate by the
result id. A restarted station resumes every forwarder from its cursor.

The backlog is bounded: a forwarder that owes more than ``max_backlog`` results (a link down for
days) skips the oldest beyond the bound, counts them in ``skipped`` and says so in one warning, so
a returning link does not flood the plant with a week of history before today's parts. The rows
themselves stay in the local log (``station results export`` still has them).

Each forwarder uses its own connection (WAL: it reads while the line writes); cursor commits are
per delivered batch and are not fsync'ed (``synchronous=NORMAL``): a power cut may move a cursor
back a little, which only re-sends.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from station.live.results_db import ResultsError

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS forward_cursors (
    name     TEXT PRIMARY KEY,        -- the forwarder, e.g. 'mqtt broker:1883/line1/st2' (never a password)
    last_id  INTEGER NOT NULL,        -- the newest inspections.id delivered
    skipped  INTEGER NOT NULL DEFAULT 0,  -- results passed over because the backlog was over its bound
    updated  REAL    NOT NULL
);
"""


@dataclass
class Backlog:
    cursor: int
    newest: int
    skipped: int

    @property
    def pending(self) -> int:
        return max(0, self.newest - self.cursor)


class Outbox:
    """One forwarder's view of the results log at ``path``; use from one thread.

    Parameters
    ----------
    start_at
        Where a cursor that does not exist yet starts: ``"now"`` (the newest row: only results from
        here on are forwarded -- a new receiver is not flooded with history) or ``"start"``.
    """

    def __init__(self, path: str | Path, name: str, max_backlog: int = 100_000, start_at: str = "now") -> None:
        self.path = Path(path)
        self.name = name
        self.max_backlog = int(max_backlog)
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=10.0, check_same_thread=False)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            with self._conn:
                self._conn.executescript(_SCHEMA)
                if self._conn.execute("SELECT 1 FROM forward_cursors WHERE name=?", (name,)).fetchone() is None:
                    first = self.newest() if start_at == "now" else 0
                    self._conn.execute("INSERT INTO forward_cursors VALUES (?, ?, 0, ?)", (name, first, time.time()))
                    log.info("outbox: new forwarder %s starts after result %d", name, first)
        except sqlite3.DatabaseError as exc:
            raise ResultsError(f"{self.path}: cannot use as outbox ({exc})") from exc
        self._columns: list[str] | None = None

    def newest(self) -> int:
        try:
            row = self._conn.execute("SELECT MAX(id) FROM inspections").fetchone()
        except sqlite3.OperationalError:  # no inspections table yet: nothing written
            return 0
        return int(row[0] or 0)

    def backlog(self) -> Backlog:
        cursor, skipped = self._conn.execute(
            "SELECT last_id, skipped FROM forward_cursors WHERE name=?", (self.name,)).fetchone()
        return Backlog(int(cursor), self.newest(), int(skipped))

    def pending(self, limit: int = 100) -> list[dict[str, Any]]:
        """The next rows after the cursor, oldest first (``regions`` decoded); applies the bound."""
        b = self.backlog()
        if b.pending > self.max_backlog:
            skip_to = b.newest - self.max_backlog
            n = skip_to - b.cursor
            with self._conn:
                self._conn.execute("UPDATE forward_cursors SET last_id=?, skipped=skipped+?, updated=? WHERE name=?",
                                   (skip_to, n, time.time(), self.name))
            log.warning("%s: %d undelivered results are over the backlog bound of %d; the oldest %d are "
                        "skipped (they stay in the local results log)", self.name, b.pending, self.max_backlog, n)
            b.cursor = skip_to
        try:
            rows = self._conn.execute("SELECT * FROM inspections WHERE id > ? ORDER BY id LIMIT ?",
                                      (b.cursor, int(limit))).fetchall()
        except sqlite3.OperationalError:
            return []
        out = []
        for r in rows:
            d = dict(r)
            try:
                d["regions"] = json.loads(d.get("regions") or "[]")
            except json.JSONDecodeError:
                d["regions"] = []
            d.setdefault("trigger_id", None)
            out.append(d)
        return out

    def delivered(self, last_id: int) -> None:
        """Move the cursor to ``last_id`` (every row up to it has been accepted by the receiver)."""
        with self._conn:
            self._conn.execute("UPDATE forward_cursors SET last_id=MAX(last_id, ?), updated=? WHERE name=?",
                               (int(last_id), time.time(), self.name))

    def close(self) -> None:
        self._conn.close()


def cursors(path: str | Path) -> list[dict[str, Any]]:
    """Every forwarder's cursor in the results log at ``path`` with its backlog (for selftest)."""
    p = Path(path)
    if not p.is_file():
        return []
    conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=5.0)
    try:
        newest = int(conn.execute("SELECT MAX(id) FROM inspections").fetchone()[0] or 0)
        rows = conn.execute("SELECT name, last_id, skipped, updated FROM forward_cursors ORDER BY name").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()
    return [{"name": n, "cursor": c, "pending": max(0, newest - c), "skipped": s, "updated": u}
            for n, c, s, u in rows]
