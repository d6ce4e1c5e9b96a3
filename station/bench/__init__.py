"""Benchmarks of the detectors (fit time, latency, throughput, memory, threshold re-estimation).

Run from Python with :func:`run_bench` or from the shell with ``station bench``; speed targets are
checked here, never in timed unit tests.
"""

from __future__ import annotations

from station.bench.report import results_table
from station.bench.runner import BenchConfig, run_bench, run_case

__all__ = ["BenchConfig", "results_table", "run_bench", "run_case"]
