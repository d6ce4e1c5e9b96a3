"""The central PostgreSQL database (psycopg 3): many stations forward into one table, and read it back.

Local-first: the station writes its own SQLite log, and :class:`PostgresForwarder` copies the rows on
from its cursor; the line never waits for the central database. Every row carries the station id;
``(station_id, sequence)`` is the primary key, so a re-sent batch (at-least-once delivery) is
dropped by the database itself (``ON CONFLICT DO NOTHING``).

The station creates and migrates the schema (table ``station_schema`` holds its version). Several
stations starting at once take a transaction-level advisory lock, so exactly one migrates.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from station.lineio.config import parse_output, redact
from station.lineio.forwarder import Forwarder, LinkError
from station.lineio.message import result_id
from station.live.results_db import time_window

SCHEMA_VERSION = 2  # 2: the drift watch's warning (station.result/2)
_MIGRATION_LOCK = 0x5354_4154  # "STAT": the advisory lock key every station uses for migrations
MIGRATIONS: dict[int, list[str]] = {  # version -> the statements that bring version - 1 to it
    1: ["""CREATE TABLE IF NOT EXISTS results (
            station_id     TEXT             NOT NULL,
            sequence       BIGINT           NOT NULL,  -- the row number in the station's local log
            id             TEXT             NOT NULL,  -- <station_id>-<sequence>, as in the MQTT message
            time           TIMESTAMPTZ      NOT NULL,  -- acquisition of the frame
            source         TEXT,
            frame_id       BIGINT,
            recipe         TEXT,
            recipe_version INTEGER,
            verdict        TEXT             NOT NULL,  -- OK, NG, OUT_OF_RANGE (not judged), ERROR
            score          DOUBLE PRECISION,
            threshold      DOUBLE PRECISION,
            n_regions      INTEGER          NOT NULL,
            largest_area   DOUBLE PRECISION,            -- px, of the largest defect region
            regions        JSONB            NOT NULL,  -- [{area_px, bbox, peak}, ...]
            trigger_id     TEXT,
            latency_ms     DOUBLE PRECISION,
            error          TEXT,
            received       TIMESTAMPTZ      NOT NULL DEFAULT now(),
            PRIMARY KEY (station_id, sequence))""",
        "CREATE INDEX IF NOT EXISTS results_time ON results (time)",
        "CREATE INDEX IF NOT EXISTS results_verdict_time ON results (verdict, time)"],
    2: ["ALTER TABLE results ADD COLUMN IF NOT EXISTS warning TEXT"],  # the drift watch's warning, if any
}
COLUMNS = ("station_id", "sequence", "id", "time", "source", "frame_id", "recipe", "recipe_version", "verdict",
           "score", "threshold", "n_regions", "largest_area", "regions", "trigger_id", "latency_ms", "error",
           "warning")


class CentralError(Exception):
    """The central database cannot be reached, or its schema is newer than this station's."""


def connect(url: str, timeout_s: float = 5.0) -> Any:
    import psycopg

    parse_output("postgres", url)
    try:
        return psycopg.connect(url, connect_timeout=max(1, int(timeout_s)), application_name="station")
    except psycopg.Error as exc:
        raise CentralError(f"cannot connect to {redact(url)}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def migrate(conn: Any) -> int:
    """Create or bring the schema up to :data:`SCHEMA_VERSION`; returns the version found before."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS station_schema (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM station_schema").fetchone()
        found = int(row[0]) if row else 0
        if found > SCHEMA_VERSION:
            raise CentralError(f"the central database has schema {found}; this station knows up to "
                               f"{SCHEMA_VERSION} (update the station)")
        for version in range(found + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
        if row is None:
            conn.execute("INSERT INTO station_schema VALUES (%s)", (SCHEMA_VERSION,))
        elif found < SCHEMA_VERSION:
            conn.execute("UPDATE station_schema SET version=%s", (SCHEMA_VERSION,))
    return found


def _values(station_id: str, r: dict[str, Any]) -> tuple[Any, ...]:
    regions = [{"area_px": g.get("area_px"), "bbox": g.get("bbox"), "peak": g.get("peak_score")}
               for g in r.get("regions") or []]
    largest = max((g["area_px"] or 0.0 for g in regions), default=None)
    return (station_id, int(r["id"]), result_id(station_id, r["id"]), datetime.fromtimestamp(float(r["time"])).astimezone(),
            r.get("source"), r.get("frame_id"), r.get("recipe"), r.get("recipe_version"), r["verdict"], r.get("score"),
            r.get("threshold"), len(regions), largest, json.dumps(regions), r.get("trigger_id"), r.get("latency_ms"),
            r.get("error"), r.get("warning"))


class PostgresForwarder(Forwarder):
    kind = "postgres"

    def __init__(self, url: str, db_path: Any, station_id: str, **kwargs: Any) -> None:
        super().__init__(db_path, station_id, redact(url), **kwargs)
        self.url = url
        self._conn: Any = None
        self._sql = (f"INSERT INTO results ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))}) "
                     "ON CONFLICT (station_id, sequence) DO NOTHING")

    def connect(self) -> None:
        try:
            conn = connect(self.url)
            migrate(conn)
        except CentralError as exc:
            raise LinkError(str(exc)) from None
        self._conn = conn

    def send(self, rows: list[dict[str, Any]]) -> None:
        import psycopg

        try:
            with self._conn.transaction(), self._conn.cursor() as cur:
                cur.executemany(self._sql, [_values(self.station_id, r) for r in rows])
        except psycopg.Error as exc:
            raise LinkError(f"central database: {_first_line(exc)}") from None

    def disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass


def query_central(url: str, since: float | None = None, until: float | None = None, verdict: str | None = None,
                  station: str | None = None, limit: int | None = None, newest_first: bool = False
                  ) -> list[dict[str, Any]]:
    """Rows of the central table across stations (``station`` narrows to one), oldest first."""
    import psycopg

    where, args = time_window(since, until, "to_timestamp(%s)")
    for cond, value in (("verdict = %s", verdict.upper() if verdict else None), ("station_id = %s", station)):
        if value is not None:
            where.append(cond)
            args.append(value)
    order = "DESC" if newest_first else "ASC"
    sql = (f"SELECT {', '.join(COLUMNS)} FROM results" + (" WHERE " + " AND ".join(where) if where else "")
           + f" ORDER BY time {order}, station_id, sequence {order}" + (f" LIMIT {int(limit)}" if limit else ""))
    conn = connect(url)
    try:
        cur = conn.execute(sql, args)
        names = [d.name for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    except psycopg.Error as exc:
        raise CentralError(f"{redact(url)}: {_first_line(exc)}") from None
    finally:
        conn.close()


def central_summary(url: str, since: float | None = None, until: float | None = None) -> list[dict[str, Any]]:
    """Per station: total, OK, NG, ERROR, first and last time."""
    import psycopg

    where, args = time_window(since, until, "to_timestamp(%s)")
    sql = ("SELECT station_id, COUNT(*), COUNT(*) FILTER (WHERE verdict='OK'), COUNT(*) FILTER (WHERE verdict='NG'), "
           "COUNT(*) FILTER (WHERE verdict='ERROR'), MIN(time), MAX(time) FROM results"
           + (" WHERE " + " AND ".join(where) if where else "") + " GROUP BY station_id ORDER BY station_id")
    conn = connect(url)
    try:
        return [dict(zip(("station_id", "total", "OK", "NG", "ERROR", "first", "last"), r, strict=True))
                for r in conn.execute(sql, args).fetchall()]
    except psycopg.Error as exc:
        raise CentralError(f"{redact(url)}: {_first_line(exc)}") from None
    finally:
        conn.close()
