"""Which NG parts the window's strip of recent NG parts shows -- the bookkeeping, without Qt.

A live session keeps its recent NG parts (:meth:`~station.live.session.LiveSession.ng_records`, newest
first). The strip shows each of them once, oldest first so the newest ends up in front, and keeps
the newest ``keep``. Parts are keyed by (session number, sequence): a new session starts its
sequence again and must not be taken for parts already shown. After New shift the old shift's parts
that were not shown yet stay out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from station.live.session import NgRecord

NgKey = tuple[int, int]  # (session number, sequence)


class NgFeed:
    def __init__(self, keep: int) -> None:
        self.keep = max(1, int(keep))
        self._session = 0
        self._seen: set[NgKey] = set()
        self._shown: dict[NgKey, NgRecord] = {}  # oldest first

    def new_session(self) -> None:
        """A new live session starts (its sequence numbers start again)."""
        self._session += 1

    def new_shift(self, current: Sequence[NgRecord] = ()) -> None:
        """The strip is emptied; ``current`` (the session's NG parts now) belong to the old shift."""
        self._shown.clear()
        self._seen = {(self._session, r.seq) for r in current}

    def take_new(self, records: Sequence[NgRecord]) -> list[tuple[NgKey, NgRecord]]:
        """The parts of ``records`` (newest first, as the session gives them) not shown yet, oldest
        first; they count as shown from now on."""
        keyed = {(self._session, r.seq): r for r in reversed(records)}
        new = [(k, r) for k, r in keyed.items() if k not in self._seen]
        self._shown.update(new)
        self._seen = set(keyed)
        for key in list(self._shown)[:max(0, len(self._shown) - self.keep)]:
            del self._shown[key]
        return new

    def record(self, key: object) -> NgRecord | None:
        """The part behind a thumbnail still shown."""
        return self._shown.get(key)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._shown)
