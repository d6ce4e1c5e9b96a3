"""One result as it leaves the station: the versioned JSON message of ``docs/result-schema.json``.

The message is built from the row in the local results log (the outbox), never from live objects,
so what a receiver gets is exactly what the station recorded. ``id`` is ``<station id>-<sequence>``,
the sequence being the row's number in the local log: stable across re-sends, so a receiver that
sees a message twice (at-least-once delivery) keeps one.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

# Bump the number when a field changes meaning or goes away. 2: the verdict OUT_OF_RANGE (a part not
# judged: a receiver that passed every "not NG" part would pass it) and the drift ``warning``.
SCHEMA = "station.result/2"


def result_id(station_id: str, sequence: int) -> str:
    return f"{station_id}-{int(sequence)}"


def utc_iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def result_message(station_id: str, row: dict[str, Any]) -> dict[str, Any]:
    """The schema-2 message for one results-log row (``regions`` already decoded)."""
    regions = [{"area_px": r.get("area_px"), "bbox": r.get("bbox"), "peak": r.get("peak_score"),
                **({"area_mm2": r["area_mm2"]} if "area_mm2" in r else {})} for r in row.get("regions") or []]
    return {
        "schema": SCHEMA,
        "id": result_id(station_id, row["id"]),
        "station_id": station_id,
        "sequence": int(row["id"]),
        "time": utc_iso(float(row["time"])),
        "source": row.get("source"),
        "frame_id": row.get("frame_id"),
        "recipe": {"name": row.get("recipe"), "version": row.get("recipe_version")},
        "verdict": row["verdict"],
        "score": row.get("score"),
        "threshold": row.get("threshold"),
        "regions": regions,
        "trigger_id": row.get("trigger_id"),
        "latency_ms": row.get("latency_ms"),
        "error": row.get("error"),
        "warning": row.get("warning"),
    }


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), allow_nan=False, default=_finite).encode("utf-8")


def _finite(value: Any) -> Any:
    raise TypeError(f"not JSON: {type(value).__name__}")
