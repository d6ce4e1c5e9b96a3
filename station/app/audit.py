"""The audit log: who changed which threshold, minimum defect area or recipe, when, old -> new.

One JSON object per line, appended and fsync'ed line by line (``os.write`` of the whole line on a
file opened with ``O_APPEND``), never rewritten: a crash can at worst cut the last line short, and
readers skip such a line (and count it) instead of failing. Engineer log-ins are recorded too.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers, services): still audit, as "unknown"
        return "unknown"


@dataclass(frozen=True)
class AuditEntry:
    time: str  # ISO 8601 with the local UTC offset
    user: str  # the operating-system login
    role: str  # "engineer", "operator" or "system" (the station itself, e.g. the demo on first start)
    action: str  # e.g. "threshold", "min_defect_area", "recipe.created", "recipe.selected", "engineer.unlock"
    target: str  # what changed, e.g. "demo v2"
    old: Any = None
    new: Any = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class AuditLog:
    """Append-only JSON-lines audit log at ``path`` (safe to share between threads)."""

    def __init__(self, path: str | Path, user: str | None = None) -> None:
        self.path = Path(path)
        self.user = user or current_user()
        self._lock = threading.Lock()

    def record(self, action: str, target: str, old: Any = None, new: Any = None, role: str = "engineer",
               note: str = "", **extra: Any) -> AuditEntry:
        entry = AuditEntry(time=datetime.now(timezone.utc).astimezone().isoformat(timespec="milliseconds"),
                           user=self.user, role=role, action=action, target=target, old=old, new=new, note=note,
                           extra=extra)
        line = json.dumps(asdict(entry), default=str, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
            try:
                if self._last_line_cut(fd):  # a crash cut the previous line short: start a fresh line
                    line = "\n" + line
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        log.info("audit: %s %s %s: %r -> %r", entry.role, action, target, old, new)
        return entry

    @staticmethod
    def _last_line_cut(fd: int) -> bool:
        size = os.fstat(fd).st_size
        if size == 0:
            return False
        os.lseek(fd, size - 1, os.SEEK_SET)  # O_APPEND still appends the write at the end
        return os.read(fd, 1) != b"\n"

    def entries(self) -> tuple[list[AuditEntry], int]:
        """All readable entries, oldest first, and the number of unreadable lines skipped."""
        if not self.path.exists():
            return [], 0
        out: list[AuditEntry] = []
        bad = 0
        names = set(AuditEntry.__dataclass_fields__)
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    d = json.loads(line)
                    out.append(AuditEntry(**{k: v for k, v in d.items() if k in names}))
                except (json.JSONDecodeError, TypeError):
                    bad += 1
        return out, bad
