"""Headless live inspection: the acquisition, inspection and dispatch threads, the results log and the
image archive.

Qt-free: the window and ``station inspect`` drive the same :class:`~station.live.pipeline.LivePipeline`.
Results reach the outside through listeners called on the dispatch thread -- the API is documented in
:mod:`station.live.dispatch` (``pipeline.add_listener(fn)``, ``fn(live: LiveResult)``).
"""

from station.live.archive import ImageArchive
from station.live.dispatch import Dispatcher
from station.live.pipeline import LivePipeline
from station.live.result import LiveError, LiveResult, ResultListener
from station.live.results_db import ResultRow, ResultsLog
from station.live.stats import PipelineStats, yield_percent

__all__ = ["Dispatcher", "ImageArchive", "LiveError", "LivePipeline", "LiveResult", "PipelineStats", "ResultListener",
           "ResultRow", "ResultsLog", "yield_percent"]
