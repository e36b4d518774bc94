"""MkDocs hook: the command-line reference is generated from emolens's own argument parser, so it cannot drift."""

from __future__ import annotations

import argparse
import os
from typing import Any

MARKER = "<!-- cli-reference -->"


def _subcommands(parser: argparse.ArgumentParser, prefix: str) -> list[tuple[str, argparse.ArgumentParser]]:
    """Every command under `parser`, depth first, in the order `--help` lists them."""
    found = []
    for action in parser._actions:  # argparse keeps its subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.append((f"{prefix} {name}", child))
                found.extend(_subcommands(child, f"{prefix} {name}"))
    return found


def cli_reference() -> str:
    """One section per command with its `--help` text, wrapped at 100 columns whatever the terminal."""
    os.environ["COLUMNS"] = "100"
    from emolens.cli import build_parser

    parser = build_parser()
    sections = [f"## emolens\n\n```text\n{parser.format_help()}```\n"]
    for name, command in _subcommands(parser, "emolens"):
        sections.append(f"## {name}\n\n```text\n{command.format_help()}```\n")
    return "\n".join(sections)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    return markdown.replace(MARKER, cli_reference()) if MARKER in markdown else markdown
