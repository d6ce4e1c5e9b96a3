"""Entry point of the ``station`` command.

``station`` alone opens the window; ``station <command> ...`` runs one headless task. Errors the user
can fix (a missing folder, a broken recipe, an unknown camera, images of a size the recipe cannot
serve) are printed as one or two clear lines and exit with status 2 -- never a traceback; ``-v``
adds the traceback for developers.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

import station

# Sub-command modules under station.cli, in the order --help lists them.
COMMANDS = [
    "train", "eval", "inspect_image", "retune", "golden",
    "inspect", "cameras", "results",
    "weights", "export", "bench",
    "gui", "selftest",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="station", description="Visual inspection station: teach parts from good samples, inspect, review.")
    parser.add_argument("--version", action="version", version=f"station {station.__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output and the traceback of an error (-vv: debug)")
    parser.add_argument("--max-image-pixels", type=int, metavar="N",
                        help="refuse image files whose header declares more pixels (default 100 million, "
                             "or $STATION_MAX_IMAGE_PIXELS)")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"station.cli.{name}")
        except ModuleNotFoundError as exc:  # a command not built yet; any other import error is a bug
            if exc.name != f"station.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input, reported as one line instead of a traceback."""
    from station.core.datasets import DatasetError
    from station.core.geometry import GeometryError
    from station.core.images import ImageLoadError
    from station.core.recipe import RecipeError
    from station.core.teach import TeachError
    from station.detectors.base import UnknownDetectorError

    errors: list[type[BaseException]] = [DatasetError, ImageLoadError, RecipeError, UnknownDetectorError,
                                         GeometryError, TeachError, FileNotFoundError, PermissionError]
    try:
        from station.acquisition.base import SourceError

        errors.append(SourceError)
    except ImportError:
        pass
    for module, name in (("station.weights", "WeightsError"), ("station.live.results_db", "ResultsError")):
        try:
            errors.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # -v also after the command (`station train ... -v`): where people put it when an error says so
    verbose = [a for a in extra if a in ("-v", "-vv", "--verbose")]
    if len(verbose) != len(extra):
        parser.error(f"unrecognized arguments: {' '.join(a for a in extra if a not in verbose)}")
    args.verbose += sum(2 if a == "-vv" else 1 for a in verbose)
    level = logging.WARNING - 10 * min(2, args.verbose)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.max_image_pixels is not None:
        from station.core.images import set_max_image_pixels

        if args.max_image_pixels < 1:
            parser.error("--max-image-pixels must be positive")
        set_max_image_pixels(args.max_image_pixels)
    if args.command is None:
        if "gui" in parser._subparsers._group_actions[0].choices:  # noqa: SLF001 - our own parser
            # `station [-v]` alone opens the window: the global options stay before the command
            args = parser.parse_args([*(sys.argv[1:] if argv is None else argv), "gui"])
        else:
            parser.print_help()
            return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except user_errors() as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # bad data or a bad parameter deep in a detector: its message, not a traceback
        if args.verbose:
            traceback.print_exc()
        print(f"error: {exc}" + ("" if args.verbose else "  (station -v ... shows where it came from)"),
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
