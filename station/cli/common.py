"""Helpers shared by the sub-commands: parameter parsing and progress output."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from station.core.progress import Progress


def parse_param(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as JSON where it parses (numbers, true/false, lists), else text."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def add_param_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--param", "-p", action="append", type=parse_param, default=[], metavar="KEY=VALUE",
                        help="a detector parameter, repeatable (e.g. -p coreset_ratio=0.01); also the image "
                             "geometry: -p fit=resize|pad|tiles, -p work_size=256 or [h,w], -p tile_overlap=0.25")


def parse_roi(text: str) -> list[int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected x,y,width,height in pixels, got {text!r}") from None
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise argparse.ArgumentTypeError("the region of interest needs x, y >= 0 and a positive size")
    return [x, y, w, h]


class ProgressPrinter:
    """Prints progress on stderr: an updating line on a terminal, a line per 10 % otherwise."""

    def __init__(self, stream=None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.stage = ""
        self.last_decile = -1
        self.t0 = time.perf_counter()

    def __call__(self, p: Progress) -> None:
        if p.stage != self.stage:
            if self.tty and self.stage:
                self.stream.write("\n")
            self.stage, self.last_decile, self.t0 = p.stage, -1, time.perf_counter()
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / p.fraction - elapsed if 0 < p.fraction < 1 else 0.0
        text = f"{p.stage}: {p.done}/{p.total} ({100 * p.fraction:.0f} %, {elapsed:.0f} s"
        text += f", ~{eta:.0f} s left)" if eta else ")"
        if p.message:
            text += f" {p.message}"
        if self.tty:
            self.stream.write("\r" + text.ljust(78))
            if p.done >= p.total:
                self.stream.write("\n")
                self.stage = ""
        else:
            decile = int(10 * p.fraction)
            if decile != self.last_decile:
                self.last_decile = decile
                self.stream.write(text + "\n")
        self.stream.flush()
