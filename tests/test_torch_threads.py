"""Process-wide torch settings stay put while a teach runs: the coreset's single-thread loop limits
only its own thread, so a live inspection beside it -- or one started meanwhile -- keeps its threads."""

from __future__ import annotations

import threading

import pytest

torch = pytest.importorskip("torch")

from station.core.devices import torch_threads_on_this_thread  # noqa: E402


def test_one_thread_for_the_caller_only():
    if torch.get_num_threads() < 2:
        pytest.skip("this machine gives torch a single thread anyway")
    default = torch.get_num_threads()
    inside, seen = threading.Event(), {}
    release = threading.Event()

    def teach_worker():
        with torch_threads_on_this_thread(1):
            seen["teach"] = torch.get_num_threads()
            inside.set()
            release.wait(10)
        seen["teach_after"] = torch.get_num_threads()

    def inspection_started_meanwhile():
        seen["new_inspection"] = torch.get_num_threads()

    worker = threading.Thread(target=teach_worker)
    worker.start()
    assert inside.wait(10)
    seen["running_inspection"] = torch.get_num_threads()
    late = threading.Thread(target=inspection_started_meanwhile)
    late.start()
    late.join()
    release.set()
    worker.join()
    assert seen == {"teach": 1, "running_inspection": default, "new_inspection": default, "teach_after": default}
