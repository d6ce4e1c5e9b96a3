"""The line watch of one run: the input watch (a frame the recipe cannot judge is not judged) and
the drift watch (a warning before false rejects climb), fed on the inspection thread by the pipeline
-- both cost about a millisecond a frame (:mod:`station.live.input_watch`, :mod:`station.live.drift`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from station.core.inspection import InspectionResult
from station.core.recipe import Recipe
from station.live.drift import DEFAULT_ALARM_LEVEL, DriftWatch
from station.live.input_watch import InputCheck, InputWatch

log = logging.getLogger(__name__)


class LineWatch:
    """``check`` each frame before it is judged, ``observe`` it after; ``warning`` is the drift now."""

    def __init__(self, recipe: Recipe, alarm_level: float = DEFAULT_ALARM_LEVEL, inputs: bool = True) -> None:
        self.inputs = InputWatch(recipe) if inputs else None
        self.drift = DriftWatch(recipe, alarm_level)
        self.warning = ""
        self._failed = False

    def check(self, image: np.ndarray) -> InputCheck:
        if self.inputs is None or self._failed:
            return InputCheck()
        try:
            return self.inputs.check(image)
        except Exception:  # noqa: BLE001 - a frame the watch cannot measure is still inspected
            self._failed = True
            log.exception("input watch failed; frames are judged without it from now on")
            return InputCheck()

    def observe(self, check: InputCheck, result: InspectionResult | None) -> str:
        self.warning = self.drift.observe(check, result).warning
        return self.warning


WatchFactory = Callable[[Recipe], LineWatch]


def line_watch(alarm_level: float = DEFAULT_ALARM_LEVEL, inputs: bool = True) -> WatchFactory:
    """A factory for :class:`~station.live.pipeline.LivePipeline` (``watch=``): the watch is built on
    the inspection thread, for the recipe the inspector was built with."""
    return lambda recipe: LineWatch(recipe, alarm_level, inputs)
