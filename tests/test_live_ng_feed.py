"""The NG strip's bookkeeping (station/live/ng_feed.py), without Qt: each NG part once, oldest first,
the newest ``keep`` kept, a new session's sequence not mistaken for parts shown, New shift honoured."""

from __future__ import annotations

from types import SimpleNamespace

from station.live.ng_feed import NgFeed


def ng(*seqs: int) -> list[SimpleNamespace]:
    """Records as the session gives them: newest first (only ``seq`` matters here)."""
    return [SimpleNamespace(seq=s) for s in sorted(seqs, reverse=True)]


def seqs(taken) -> list[int]:
    return [r.seq for _k, r in taken]


def test_each_part_once_oldest_first_and_the_newest_kept():
    feed = NgFeed(keep=2)
    feed.new_session()
    assert seqs(feed.take_new(ng(1, 2))) == [1, 2]
    assert seqs(feed.take_new(ng(1, 2))) == []  # nothing new
    taken = feed.take_new(ng(2, 3, 4))  # the session forgot 1; 3 and 4 are new
    assert seqs(taken) == [3, 4] and len(feed) == 2
    assert feed.record(taken[-1][0]).seq == 4 and feed.record((1, 2)) is None  # 2 fell out of the strip


def test_a_new_session_and_a_new_shift():
    feed = NgFeed(keep=5)
    feed.new_session()
    feed.take_new(ng(1, 2))
    feed.new_session()  # sequence numbers start again: not taken for the parts already shown
    assert seqs(feed.take_new(ng(1))) == [1] and len(feed) == 3
    feed.new_shift(ng(1, 2))  # 2 arrived but was not shown: it belongs to the old shift
    assert len(feed) == 0
    assert seqs(feed.take_new(ng(1, 2, 3))) == [3]
