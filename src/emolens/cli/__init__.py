"""The `emolens` command: a thin layer over the Python API, with friendly output and one-line errors."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Callable, Sequence

from rich.logging import RichHandler

from emolens import __version__
from emolens.cli import datasets, evaluating, predicting, serving, training
from emolens.cli._common import _PrintableLogFilter, _shown, _start_backend, console
from emolens.errors import EmolensError


def build_parser() -> argparse.ArgumentParser:
    """The `emolens` argument parser: one subcommand per API entry point (see the modules beside this one)."""
    parser = argparse.ArgumentParser(
        prog="emolens", description="Facial emotion recognition: train, evaluate and inspect FER2013-style models."
    )
    parser.add_argument("--version", action="version", version=f"emolens {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logs")
    parser.set_defaults(needs_backend=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    training.add_train(commands)
    evaluating.add_commands(commands)
    training.add_catalogue_commands(commands)
    predicting.add_commands(commands)
    serving.add_commands(commands)
    datasets.add_commands(commands)
    return parser


def _log_handler() -> logging.Handler:
    """Rich's log lines at a terminal; elsewhere (a file, CI) the same "LEVEL    message" lines, unwrapped and
    unpadded (Rich pads every log line to the console's width)."""
    if sys.stderr.isatty():
        return RichHandler(console=console, show_path=False, show_time=False)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)-8s %(message)s"))
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (0 ok, 1 a check failed, 2 bad input, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    if args.needs_backend:
        _start_backend(args.verbose)
    log_handler = _log_handler()
    log_handler.addFilter(_PrintableLogFilter())
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",  # Rich's own layout; the plain handler has its own formatter
        handlers=[log_handler],
        force=True,
    )
    logging.getLogger("emolens").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except EmolensError as error:
        console.print(f"[bold red]error:[/] {_shown(error)}", soft_wrap=True)
        return 2
    except BrokenPipeError:
        # The reader went away (`emolens predict --json ... | head -1`): stop quietly, as Unix tools do. Later
        # writes to the closed pipe (at exit, Python flushes stdout) go to /dev/null instead of raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:
        # A folder that cannot be created, a file that cannot be read or written: the user's path, not a bug.
        where = f" {error.filename}" if error.filename else ""
        full = error.errno in (errno.ENOSPC, errno.EDQUOT)
        hint = (
            "Free some space on that disk, or write somewhere else." if full else "Check the path and its permissions."
        )
        console.print(
            f"[bold red]error:[/] {_shown(f'cannot use{where}: {error.strerror or error}.')} {hint}", soft_wrap=True
        )
        return 2
    except KeyboardInterrupt:
        hint = " Resume with `emolens train --resume RUN`." if args.command == "train" else ""
        console.print(f"[yellow]Interrupted.[/]{hint}")
        return 130
