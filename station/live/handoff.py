"""The bounded hand-off between the acquisition thread and the inspection thread.

A live camera must never wait for inspection (its buffers would overflow in the driver, and an old
part's verdict is worth less than the current one), so when the hand-off is full the *oldest* frame
is dropped and counted. A replay must lose nothing, so its producer waits for room instead.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Closed(Exception):
    """The hand-off was closed and holds nothing more."""


class Handoff(Generic[T]):
    """A bounded FIFO of ``capacity`` items; ``drop_oldest`` chooses the policy when full."""

    def __init__(self, capacity: int = 4, drop_oldest: bool = True) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self.drop_oldest = drop_oldest
        self.dropped = 0  # items pushed out by newer ones (or discarded at shutdown)
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: T, timeout: float | None = None) -> bool:
        """Add ``item``. Drop-oldest never waits. Otherwise waits for room up to ``timeout`` (``None``:
        until there is room or the hand-off is closed); returns ``False`` if the item was not added."""
        with self._cond:
            if self._closed:
                return False
            if len(self._items) >= self.capacity:
                if self.drop_oldest:
                    self._items.popleft()
                    self.dropped += 1
                elif not self._cond.wait_for(lambda: len(self._items) < self.capacity or self._closed,
                                             timeout=timeout) or self._closed:
                    return False
            self._items.append(item)
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> T | None:
        """The oldest item; ``None`` if none came within ``timeout``.

        Raises
        ------
        Closed
            Once the hand-off is closed and empty.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._closed, timeout=timeout):
                return None
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            raise Closed

    def close(self) -> None:
        """No more items will come; waiting producers and consumers wake up."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def discard(self) -> int:
        """Drop everything still queued (a hard stop); the items count as dropped."""
        with self._cond:
            n = len(self._items)
            self._items.clear()
            self.dropped += n
            self._cond.notify_all()
            return n
