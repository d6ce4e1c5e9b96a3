"""Replaying a folder of images as a camera: an MVTec AD category or any folder.

``folder://<path>?fps=10&loop=1&split=test&live=0``

- An MVTec AD category replays its ``test`` images by default (``split=train`` the good training
  images, ``split=all`` both), each frame carrying its defect type (``meta["label"]``) and its
  ground-truth mask (``meta["mask"]``, ``bool``; all ``False`` for good parts, ``None`` when the mask
  is missing or unreadable). Any other folder replays all its images (sub-folders included) with
  ``label`` and ``mask`` ``None``: nobody said what they show.
- ``fps`` paces the frames (``0``, the default, as fast as they are asked for); ``loop=1`` starts
  again at the end, otherwise the source ends (``StopIteration``).
- A replay is not live by default: the live pipeline loses none of its frames. ``live=1`` makes it
  behave like a camera (frames are dropped when inspection falls behind).
- An unreadable file is skipped, logged and listed in :attr:`FolderSource.problems`; it never
  stops the replay. A folder where no file at all can be read fails clearly.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from station.acquisition.base import Frame, SourceError, SourceURI
from station.acquisition.paced import PacedSource
from station.core.datasets import (
    DatasetError,
    ImageFolder,
    MVTecCategory,
    Problems,
    Sample,
    load_ground_truth,
    open_dataset,
)
from station.core.images import ColorMode, ImageLoadError, load_image

SPLITS = ("test", "train", "all")


class FolderSource(PacedSource):
    """Images of a folder, in name order, as frames (see the module doc)."""

    def __init__(self, path: str | Path, *, fps: float = 0.0, loop: bool = False, split: str = "test",
                 live: bool = False, mode: ColorMode = "keep", uri: str | None = None) -> None:
        if fps < 0:
            raise SourceError(f"fps must be >= 0, not {fps}")
        if split not in SPLITS:
            raise SourceError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
        if mode not in ("keep", "rgb", "gray"):
            raise SourceError(f"mode must be keep, rgb or gray, not {mode!r}")
        super().__init__()
        self.path = Path(path).expanduser()
        self.fps = float(fps)
        self.loop = bool(loop)
        self.split = split
        self.live = bool(live)
        self.mode: ColorMode = mode
        self.uri = uri or f"folder://{self.path}"
        self.problems = Problems()
        self.samples: list[Sample] = []
        self.labelled = False  # True for an MVTec category (labels and masks known)
        self.loops = 0
        self._unreadable: set[Path] = set()  # skipped on later loops: reported once, not every pass
        self._position = 0
        self._frame_id = 0

    @classmethod
    def from_uri(cls, uri: str) -> FolderSource:
        parsed = SourceURI.parse(uri)
        if not parsed.target:
            raise SourceError(f"{uri}: no folder given; e.g. folder:///data/mvtec_ad/bottle")
        p = dict(parsed.params)
        known = {"fps", "loop", "split", "live", "mode"}
        unknown = set(p) - known
        if unknown:
            raise SourceError(f"{uri}: unknown option(s) {', '.join(sorted(unknown))}; known: "
                              f"{', '.join(sorted(known))}")
        try:
            fps = float(p.get("fps", 0))
        except ValueError:
            raise SourceError(f"{uri}: fps must be a number, not {p['fps']!r}") from None
        flag = lambda key: p.get(key, "0").lower() in ("1", "true", "yes", "on")  # noqa: E731
        return cls(parsed.target, fps=fps, loop=flag("loop"), split=p.get("split", "test"), live=flag("live"),
                   mode=p.get("mode", "keep"), uri=uri)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.samples)

    def open(self) -> None:
        """List the images (no pixels are read yet).

        Raises
        ------
        SourceError
            If the folder is missing or holds no images (for the chosen split).
        """
        try:
            dataset = open_dataset(self.path)
            if isinstance(dataset, MVTecCategory):
                self.labelled = True
                samples: list[Sample] = []
                if self.split in ("train", "all"):
                    samples += dataset.train_good()
                if self.split in ("test", "all"):
                    samples += dataset.test()
                self.problems.items.extend(dataset.problems.items)
            else:
                self.labelled = False
                samples = ImageFolder(self.path).samples()
        except DatasetError as exc:
            raise SourceError(str(exc)) from None
        if not samples:
            raise SourceError(f"{self.path}: no images to replay")
        self.samples = samples
        self._position = 0
        super().open()

    def next_frame(self, timeout: float = 1.0) -> Frame | None:
        """The next image, paced at ``fps``; ``None`` if not due within ``timeout``.

        Raises
        ------
        StopIteration
            At the end of a replay without ``loop``.
        SourceError
            If not started, or if a whole pass over the folder found no readable image.
        """
        self._require_acquiring()
        with self._lock:
            if not self._wait_turn(timeout):
                return None
            failures = 0
            while True:
                if self._position >= len(self.samples):
                    if not self.loop:
                        raise StopIteration
                    self._position = 0
                    self.loops += 1
                sample = self.samples[self._position]
                self._position += 1
                if sample.path in self._unreadable:
                    failures += 1
                    if failures >= len(self.samples):
                        raise SourceError(f"{self.path}: none of the {len(self.samples)} images can be read")
                    continue
                try:
                    image = load_image(sample.path, self.mode)
                except ImageLoadError as exc:
                    self._unreadable.add(sample.path)
                    self.problems.add(sample.path, str(exc).removeprefix(f"{sample.path}: "))
                    failures += 1
                    if failures >= len(self.samples):
                        raise SourceError(f"{self.path}: none of the {len(self.samples)} images can be read") from None
                    continue
                self._frame_id += 1
                return Frame(image=image, frame_id=self._frame_id, timestamp=time.time(),
                             pixel_format=_pixel_format(image), source=self.uri, meta=self._meta(sample, image))

    def _meta(self, sample: Sample, image: np.ndarray) -> dict[str, Any]:
        meta: dict[str, Any] = {"path": str(sample.path), "loop": self.loops}
        if self.labelled:
            meta["label"] = sample.label
            meta["mask"] = load_ground_truth(sample, image.shape[:2], self.problems)
        else:
            meta["label"] = None
            meta["mask"] = None
        return meta


def _pixel_format(image: np.ndarray) -> str:
    if image.ndim == 2:
        return "Mono8"
    return "RGBa8" if image.shape[2] == 4 else "RGB8"
