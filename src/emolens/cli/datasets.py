"""The `emolens data` subcommands: synth, faces, preview, inspect."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from emolens.cli._common import (
    _add_augment_flags,
    _add_detector_flags,
    _add_model_flag,
    _add_sources_argument,
    _augment_config,
    _command,
    _detector_config,
    _positive_int,
    _shown,
    console,
    stdout,
)
from emolens.constants import MAX_NEAR_THRESHOLD, NEAR_CONSTANT_STD, NEAR_THRESHOLD
from emolens.errors import EmolensError


def cmd_data_synth(args: argparse.Namespace) -> int:
    """Write a synthetic FER2013-style dataset of drawn faces."""
    from emolens.data.synth import synthesize_dataset

    try:
        out = synthesize_dataset(
            args.out, train_per_class=args.train_per_class, test_per_class=args.test_per_class, seed=args.seed
        )
    except (FileExistsError, ValueError) as error:
        raise EmolensError(str(error)) from error
    console.print(
        f"Wrote a synthetic FER2013-style dataset to [bold]{_shown(out)}[/] "
        f"({args.train_per_class} train and {args.test_per_class} test images per class)"
    )
    return 0


def cmd_data_faces(args: argparse.Namespace) -> int:
    """Your own photos and videos as a dataset: every face as a 48x48 crop, to sort by emotion.

    Find faces as `predict` does and write each as the 48x48 crop the classifier sees: into OUT/unlabelled/, or with
    --pre-label into OUT/train/<the bundled model's guess>/; OUT/faces.csv says where each came from. Sorted into
    OUT/train/<emotion>/, OUT is a dataset for `emolens train OUT --recipe finetune`.
    """
    from emolens._progress import track
    from emolens.predict import Sources
    from emolens.predict.collect import UNLABELLED, collect_faces

    sources = Sources(list(args.sources), every=args.every)
    total = sources.count()  # lists the folders, once: the progress bar's total and the pictures alike
    pictures = track(sources.pictures(), total=total, description="Pictures")
    summary = collect_faces(
        sources,
        args.out,
        detector=_detector_config(args),
        pre_label=args.pre_label,
        model=args.model,
        every=args.every,
        pictures=pictures,
    )
    for skipped in summary.skipped:
        console.print(f"[bold red]skipped[/] {_shown(skipped)}", soft_wrap=True)
    folders = ", ".join(f"{folder} {count}" for folder, count in sorted(summary.by_folder.items()))
    stdout.print(
        f"{summary.faces} faces from {summary.pictures} pictures in [bold]{_shown(args.out)}[/]"
        + (f": {folders}" if folders else "")
    )
    where = (
        f"{args.out}/train/<emotion>/ folders (the guesses are there: move the wrong ones)"
        if args.pre_label
        else f"{args.out}/train/<emotion>/ folders, from {args.out}/{UNLABELLED}/"
    )
    stdout.print(
        f"Next: sort them into {_shown(where)}, then [cyan]emolens train {_shown(args.out)} --recipe finetune[/]"
    )
    return 1 if summary.skipped else 0


def cmd_data_preview(args: argparse.Namespace) -> int:
    """A grid of training images after augmentation."""
    from emolens.preview import preview_augmentation

    path = preview_augmentation(
        args.data, args.out, count=args.count, augment=_augment_config(args), seed=args.seed, cache=not args.no_cache
    )
    console.print(f"Wrote [bold]{_shown(path)}[/]")
    return 0


def cmd_data_inspect(args: argparse.Namespace) -> int:
    """Find duplicates, leakage between splits, blank and unreadable images, class imbalance.

    Check a dataset before training on it. The source is only read; --fix writes a cleaned copy.
    """
    from emolens.data import load_dataset
    from emolens.data.inspection import inspect_dataset, write_cleaned_copy
    from emolens.inspection_report import write_report

    if args.labels and args.fix:
        raise EmolensError("--fix writes class folders, which cannot hold votes: run it without --labels.")
    dataset = load_dataset(args.data, cache=not args.no_cache, labels=args.labels)
    with console.status("Inspecting"):
        report = inspect_dataset(
            dataset,
            near=args.near or args.near_threshold is not None,
            threshold=NEAR_THRESHOLD if args.near_threshold is None else args.near_threshold,
        )
    written = write_report(dataset, report, args.out) if args.out else {}
    cleaned = write_cleaned_copy(dataset, report, args.fix) if args.fix else None
    if args.json:
        stdout.print_json(json.dumps(report.to_dict()))
        return 0
    _print_inspection(report)
    if written:
        console.print(
            f"Report: [bold]{_shown(written['report'])}[/] (every group with its files), class_counts.png, duplicates.png"
        )
    else:
        console.print("[dim]Every group with its files: --out DIR or --json.[/]")
    if cleaned:
        folder, removed = cleaned
        console.print(
            f"Cleaned copy: [bold]{_shown(folder)}[/], {len(removed)} images left out (listed in removed.csv)"
        )
    return 0


def _print_labels(labels: dict) -> None:
    if not labels:
        return
    table = Table(title="Labels file")
    for column in ("split", "labelled", "left out", "votes tied", "folder label = votes' majority"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split, row in labels.items():
        left_out = ", ".join(f"{n} {reason}" for reason, n in row["left_out"].items()) or "0"
        agree = (
            "n/a"
            if row["folder_agrees_with_majority"] is None
            else f"{row['folder_agrees_with_majority']:.1%} of {row['compared']}"
        )
        table.add_row(split, str(row["labelled"]), left_out, str(row["tied"]), agree)
    stdout.print(table)


def _print_inspection(report) -> None:
    counts = Table(title=f"Images per class in {_shown(report.source)}")
    counts.add_column("class")
    for split in report.counts:
        counts.add_column(split, justify="right")
    for name in report.class_names:
        counts.add_row(name, *(str(report.counts[split].get(name, 0)) for split in report.counts))
    ratios = report.imbalance().values()
    counts.add_row(
        "[dim]largest / smallest[/]",
        *(f"[dim]{ratio:.1f}x[/]" if ratio else "[red]class missing[/]" for ratio in ratios),
    )
    stdout.print(counts)
    numbers = report.summary()
    findings = Table(title="Findings")
    findings.add_column("check")
    findings.add_column("found", justify="right")
    findings.add_row("unreadable files, bad rows, stray files", str(numbers["skipped"]))
    findings.add_row("not 48x48 grayscale originally", str(numbers["not_48x48_gray"]))
    findings.add_row("blank (one value)", str(numbers["blank"]))
    findings.add_row(f"near-constant (std < {NEAR_CONSTANT_STD:g})", str(numbers["near_constant"]))
    findings.add_row(
        "exact duplicate groups",
        f"{numbers['exact_groups']} ({numbers['exact_images']} images; {numbers['exact_across_splits']} across splits, "
        f"{numbers['exact_conflicting']} with conflicting labels)",
    )
    if report.near is not None:
        findings.add_row(
            f"near-duplicate groups (pHash, <= {report.near_threshold} bits)",
            f"{numbers['near_groups']} ({numbers['near_images']} images; {numbers['near_across_splits']} across splits, "
            f"{numbers['near_conflicting']} with conflicting labels, {numbers['near_mirrored']} mirror images)",
        )
    stdout.print(findings)
    _print_labels(report.labels)
    shown = report.duplicate_sets()[:5]
    for group in shown:
        files = ", ".join(f"{m.name} ({m.label})" for m in group.members[:4]) + (
            " ..." if len(group.members) > 4 else ""
        )
        stdout.print(f"  [dim]{'near' if group.near else 'same'}:[/] {_shown(files)}")
    stdout.print("[bold]Verdict[/]")
    for line in report.verdict():
        stdout.print(f"  - {_shown(line)}")


def add_commands(commands) -> None:
    """Adds the `data` group: synth, faces, preview, inspect."""
    data = commands.add_parser("data", help="dataset tools", description="Dataset tools.").add_subparsers(
        dest="data_command", required=True, metavar="COMMAND"
    )
    for add in (_add_synth, _add_faces, _add_preview, _add_inspect):
        add(data)


def _add_synth(data) -> None:
    """`emolens data synth`: a drawn dataset, for trying everything without downloads."""
    synth = _command(data, "synth", cmd_data_synth, needs_backend=False)
    synth.add_argument("out", help="an empty or new folder")
    synth.add_argument(
        "--train-per-class", type=_positive_int, default=200, help="training images per class (default 200)"
    )
    synth.add_argument("--test-per-class", type=_positive_int, default=50, help="test images per class (default 50)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def _add_faces(data) -> None:
    """`emolens data faces`: the faces in a user's photos and videos, as a dataset to label."""
    faces = _command(data, "faces", cmd_data_faces, needs_backend=False)
    _add_sources_argument(faces, nargs="+")
    faces.add_argument("--out", required=True, help="the dataset folder to make")
    faces.add_argument(
        "--pre-label",
        action="store_true",
        help="file each face under train/<guess> by --model's answer, for a person to correct",
    )
    _add_model_flag(faces, purpose="the model whose guesses --pre-label uses: ")
    faces.add_argument("--every", type=_positive_int, default=10, help="in videos, take every K-th frame (default 10)")
    _add_detector_flags(faces)


def _add_preview(data) -> None:
    """`emolens data preview`: what augmentation does to training images."""
    preview = _command(data, "preview", cmd_data_preview)
    preview.add_argument("data", help="a dataset source with a train split")
    preview.add_argument("--out", default="preview.png", help="PNG to write (default preview.png)")
    preview.add_argument("--count", type=_positive_int, default=32, help="how many images (default 32)")
    preview.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    preview.add_argument("--no-cache", action="store_true", help="decode the dataset again instead of using the cache")
    _add_augment_flags(preview)


def _add_inspect(data) -> None:
    """`emolens data inspect`: a dataset's problems, before training on it."""
    from emolens.data.sources import source_kinds

    inspect = _command(data, "inspect", cmd_data_inspect, needs_backend=False)
    inspect.add_argument("data", help=source_kinds())
    inspect.add_argument(
        "--near", action="store_true", help="also find near duplicates and mirror images (perceptual hash)"
    )
    inspect.add_argument(
        "--near-threshold",
        type=int,
        metavar="BITS",
        help=f"largest pHash Hamming distance for near duplicates, 0-{MAX_NEAR_THRESHOLD} (implies --near; default {NEAR_THRESHOLD})",
    )
    inspect.add_argument(
        "--labels",
        metavar="FILE",
        help="a labels file (as train's --labels): also how often the folders' labels agree with its votes",
    )
    inspect.add_argument("--out", help="folder for report.json, class_counts.png and duplicates.png")
    inspect.add_argument("--fix", metavar="OUT", help="write a cleaned copy (PNG folders) to this new folder")
    inspect.add_argument("--json", action="store_true", help="print the full report as JSON")
    inspect.add_argument("--no-cache", action="store_true", help="decode the dataset again instead of using the cache")
