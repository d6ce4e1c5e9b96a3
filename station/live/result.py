"""What the live layer hands out for each frame: :class:`LiveResult` (the one result type of the
pipeline, the window, the CLI and the line outputs) and :class:`LiveError` (a problem to show)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from station.acquisition.base import Frame
from station.core.inspection import InspectionResult

OUT_OF_RANGE = "OUT_OF_RANGE"  # the verdict of a frame the input watch refused to judge


@dataclass
class LiveResult:
    """One frame's outcome. ``result`` is ``None`` when the inspection failed (see ``error``).

    Set on the inspection thread: everything but ``row_id`` and ``image_path``, which the dispatch
    thread fills in (the archive first, then the results-log row) before it calls any listener."""

    sequence: int  # increases by one per result of a run: a viewer skips what it has already shown
    frame: Frame
    result: InspectionResult | None
    error: str | None
    latency_ms: float  # acquisition -> verdict (the frame's wait in the hand-off included)
    inspect_ms: float  # the inspector alone
    generation: int = 0  # bumped by each threshold change: a viewer drops results of an older one
    done_at: float = 0.0  # time.monotonic() at the verdict
    recipe: str | None = None  # name of the recipe inspected with
    recipe_version: int | None = None
    row_id: int | None = None  # the results log's row, once written
    image_path: str | None = None  # the archived image, once written
    input_problem: str = ""  # why the frame was not judged: it is unlike the teach images (input watch)
    warning: str = ""  # the drift watch's warning when this frame was judged (empty: none)
    measures: dict[str, float] | None = None  # the frame's input measures (brightness, contrast, ...)

    @property
    def verdict(self) -> str:
        """``OK``, ``NG``, ``OUT_OF_RANGE`` (not judged: the input is unlike the teach images; never
        OK) or ``ERROR`` (the frame could not be inspected)."""
        if self.input_problem:
            return OUT_OF_RANGE
        return self.result.verdict.value if self.result is not None else "ERROR"

    @property
    def label(self) -> str | None:
        """The ground truth where the source knows it (a replay of a labelled folder, the demo)."""
        label = self.frame.meta.get("label")
        return label if isinstance(label, str) else None


ResultListener = Callable[[LiveResult], None]
"""Called with each :class:`LiveResult` on the pipeline's dispatch thread, in frame order, after the
result was archived and logged. See :mod:`station.live.dispatch` for the rules."""


@dataclass
class LiveError:
    """A problem for the operator: ``where`` it happened, a plain ``message`` and the raw ``details``."""

    where: str  # "camera", "recipe", "inspection", "results log"
    message: str
    details: str = ""
