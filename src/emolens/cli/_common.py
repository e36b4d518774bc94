"""What every subcommand shares: safe printing, the consoles, argument types and shared flags."""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import re
import sys
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape

from emolens.errors import EmolensError

# Piped to a file or a CI log, Rich would wrap at 80 columns and split paths: there, lines are as long as they are.
_UNWRAPPED = 100_000
console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else _UNWRAPPED)
stdout = Console(highlight=False, width=None if sys.stdout.isatty() else _UNWRAPPED)
logger = logging.getLogger("emolens")


# C0 and C1 control characters but tab and newline: a file name can hold an escape sequence that clears the
# screen or sets the terminal's title, and Rich prints ESC as it is.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    """`text` with its control characters written as \\xNN."""
    return _CONTROL_CHARACTERS.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


# What _shown writes as escapes besides those: line breaks and tabs (a file name holding one would fake another
# output line) and the bidirectional controls that reorder what follows them (U+202E shows "gpj.exe" as "exe.jpg").
_UNSAFE_IN_ONE_LINE = re.compile(r"[\t\n\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _shown(value: object) -> str:
    """`value` (a name, a path, a one-line message) as text safe to print in Rich markup, on one line: control
    characters written as \\xNN, line breaks and bidirectional controls as \\n, \\u202e, ..., markup escaped."""
    one_line = _UNSAFE_IN_ONE_LINE.sub(lambda match: match.group().encode("unicode_escape").decode(), str(value))
    return escape(_printable(one_line))


class _PrintableLogFilter(logging.Filter):
    """Log messages name files too: the same control-character rule as the CLI's own output."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = _printable(record.getMessage()), None
        return True


def _start_backend(verbose: bool) -> None:
    """Imports Keras and its backend before any command does, without TensorFlow's C++ start-up chatter."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "2")
    import emolens.backend  # noqa: F401  (imports keras quietly; see there)


def _fit_verbosity() -> int:
    return 1 if sys.stdout.isatty() else 2


AUGMENT_SETTINGS = ("rotation", "shift", "zoom", "erasing")


def _augment_config(args: argparse.Namespace):
    from emolens.data.augment import AugmentConfig

    try:
        return AugmentConfig(**_augment_overrides(args))
    except ValueError as error:
        raise EmolensError(str(error)) from error


def _augment_overrides(args: argparse.Namespace) -> dict:
    overrides = {name: getattr(args, name) for name in AUGMENT_SETTINGS if getattr(args, name) is not None}
    return overrides | ({"flip": False} if args.no_flip else {})


def _detector_config(args: argparse.Namespace):
    """The detector flags as one DetectorConfig; a model file alone means YuNet (the detector that takes one)."""
    from emolens.predict.detectors import DEFAULT_DETECTOR, DetectorConfig

    name = args.detector or ("yunet" if args.detector_model else DEFAULT_DETECTOR)
    if args.conf is not None and name != "yunet":
        raise EmolensError(f"--conf needs a detector that scores its faces (--detector yunet); {name} gives no scores.")
    options = {} if args.conf is None else {"score_threshold": args.conf}
    return DetectorConfig(name, model_file=args.detector_model, min_face=args.min_face, options=options)


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port between 0 and 65535, got {text}")
    return value


def _device_count(text: str) -> int | str:
    return "all" if text == "all" else _positive_int(text)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _add_detector_flags(parser: argparse.ArgumentParser) -> None:
    from emolens.predict.detectors import DEFAULT_DETECTOR, DEFAULT_MIN_FACE, list_detectors
    from emolens.predict.detectors.yunet import DEFAULT_SCORE_THRESHOLD

    detectors = list_detectors()
    described = "; ".join(f"{spec.name}: {spec.description}" for spec in detectors)
    parser.add_argument(
        "--detector",
        choices=[spec.name for spec in detectors],
        help=f"face detector, default {DEFAULT_DETECTOR} ({described})",
    )
    parser.add_argument(
        "--detector-model",
        metavar="FILE",
        help="the detector's model file instead of the bundled one (implies --detector yunet)",
    )
    parser.add_argument(
        "--min-face",
        type=_positive_int,
        default=DEFAULT_MIN_FACE,
        help=f"smallest face side in pixels (default {DEFAULT_MIN_FACE})",
    )
    parser.add_argument(
        "--conf",
        type=float,
        metavar="SCORE",
        help="smallest detector score (0-1) a face needs to be reported: lower finds more faces, and more that are not "
        f"(yunet; default {DEFAULT_SCORE_THRESHOLD})",
    )


def _add_sources_argument(parser: argparse.ArgumentParser, nargs: str) -> None:
    """The SOURCE list that predict and `data faces` read (`nargs` "*" where --camera can stand in for it)."""
    parser.add_argument(
        "sources",
        nargs=nargs,
        metavar="SOURCE",
        help="image files, folders (searched recursively), video files, ZIPs of images or .txt lists of paths",
    )


def _add_model_flag(parser: argparse.ArgumentParser, purpose: str = "") -> None:
    """--model, the classifier a command runs; `purpose` says what for where that is not obvious."""
    parser.add_argument(
        "--model",
        default="default",
        help=f"{purpose}a run folder, a .keras or .onnx file, or `default`: the bundled model (the default)",
    )


def _add_tta_flag(parser: argparse.ArgumentParser) -> None:
    from emolens.constants import TTA_MODES

    parser.add_argument(
        "--tta",
        default="none",
        choices=TTA_MODES,
        help="test-time augmentation: flip, or crops for models trained on crops (default none)",
    )


def _add_augment_flags(parser: argparse.ArgumentParser) -> None:
    # No argparse defaults: an unset flag leaves the recipe's (or AugmentConfig's) value in place.
    group = parser.add_argument_group("augmentation (training only)")
    group.add_argument("--rotation", type=float, help="largest rotation in degrees (default 10; 0 turns it off)")
    group.add_argument("--shift", type=float, help="largest width/height shift as a fraction (default 0.1)")
    group.add_argument("--zoom", type=float, help="largest zoom as a fraction (default 0: off)")
    group.add_argument(
        "--erasing", type=float, help="probability of random erasing, one noisy rectangle per image (default 0: off)"
    )
    group.add_argument("--no-flip", action="store_true", help="no random horizontal flips")


def _command(
    group, name: str, handler: Callable[[argparse.Namespace], int], *, needs_backend: bool = True
) -> argparse.ArgumentParser:
    """A subcommand run by `handler`, whose docstring is its help: the first paragraph is the line `emolens --help`
    lists, and the rest (or that line, when there is no more) opens the command's own --help."""
    summary, _, details = inspect.cleandoc(handler.__doc__ or "").partition("\n\n")
    summary = " ".join(summary.split())
    parser = group.add_parser(
        name, help=summary[:1].lower() + summary[1:].rstrip("."), description=" ".join(details.split()) or summary
    )
    parser.set_defaults(handler=handler, needs_backend=needs_backend)
    return parser


def _pairs(text: str, flag: str, example: str) -> dict[str, str]:
    """`NAME=VALUE` pairs separated by commas, as --class-map and --class-scale take them."""
    pairs = [part.strip() for part in text.split(",") if part.strip()]
    if not pairs or any(part.count("=") != 1 or not all(side.strip() for side in part.split("=")) for part in pairs):
        raise EmolensError(f"cannot read {flag} {text!r}: give NAME=VALUE pairs separated by commas, as {example}.")
    return {name.strip(): value.strip() for name, value in (part.split("=") for part in pairs)}


def _class_scale(text: str) -> dict[str, float]:
    """--class-scale's CLASS=FACTOR pairs, the factors as numbers."""
    scale = {}
    for name, value in _pairs(text, "--class-scale", "neutral=0.6").items():
        try:
            scale[name] = float(value)
        except ValueError:
            raise EmolensError(
                f"--class-scale takes CLASS=FACTOR pairs with numbers, as neutral=0.6 (received {value!r})."
            ) from None
    return scale
