"""Headless live inspection: the acquisition/inspection threads, the results log and the image archive.

Qt-free: the GUI and ``station inspect`` drive the same :class:`~station.live.pipeline.LivePipeline`.
"""

from station.live.archive import ImageArchive
from station.live.pipeline import LivePipeline, LiveResult
from station.live.results_db import ResultRow, ResultsLog
from station.live.stats import PipelineStats

__all__ = ["ImageArchive", "LivePipeline", "LiveResult", "PipelineStats", "ResultRow", "ResultsLog"]
