"""The `emolens` command: a thin layer over the Python API, with friendly output and one-line errors."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table

from emolens import __version__
from emolens.constants import MAX_NEAR_THRESHOLD, NEAR_CONSTANT_STD, NEAR_THRESHOLD
from emolens.errors import EmolensError

console = Console(stderr=True, highlight=False)
stdout = Console(highlight=False)
logger = logging.getLogger("emolens")


# C0 and C1 control characters but tab and newline: a file name can hold an escape sequence that clears the
# screen or sets the terminal's title, and Rich prints ESC as it is.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    """`text` with its control characters written as \\xNN."""
    return _CONTROL_CHARACTERS.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def _shown(value: object) -> str:
    """`value` as text safe to print in Rich markup: control characters written as \\xNN, markup escaped."""
    return escape(_printable(str(value)))


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


def _augment_config(args: argparse.Namespace):
    from emolens.data.augment import AugmentConfig

    try:
        return AugmentConfig(**_augment_overrides(args))
    except ValueError as error:
        raise EmolensError(str(error)) from error


# Settings fixed when a run starts (flag name -> TrainConfig field); --resume takes them from config.json.
RUN_SETTINGS = {
    "model": "model", "epochs": "epochs", "batch_size": "batch_size", "lr": "learning_rate", "val_split": "val_split",
    "seed": "seed", "limit": "limit", "optimizer": "optimizer", "momentum": "momentum", "weight_decay": "weight_decay",
    "schedule": "schedule", "warmup_epochs": "warmup_epochs", "label_smoothing": "label_smoothing", "class_weight": "class_weight",
    "crop": "crop", "precision": "precision", "mixup": "mixup", "cutmix": "cutmix", "dedupe": "dedupe",
    "start_from": "start_from", "new_head": "new_head", "freeze_epochs": "freeze_epochs",
}  # fmt: skip
AUGMENT_SETTINGS = ("rotation", "shift", "zoom", "erasing")


def _augment_overrides(args: argparse.Namespace) -> dict:
    overrides = {name: getattr(args, name) for name in AUGMENT_SETTINGS if getattr(args, name) is not None}
    return overrides | ({"flip": False} if args.no_flip else {})


def _train_config(args: argparse.Namespace):
    """The run's TrainConfig: the recipe (or the plain defaults), then every flag given on top of it."""
    from emolens.train import TrainConfig
    from emolens.train.recipes import recipe_config

    overrides = {field: getattr(args, flag) for flag, field in RUN_SETTINGS.items() if getattr(args, flag) is not None}
    augment = _augment_overrides(args)
    try:
        if args.recipe:
            return recipe_config(args.recipe, **overrides, augment=augment)
        return TrainConfig.from_dict({**overrides, "augment": augment})
    except ValueError as error:
        raise EmolensError(str(error)) from error


def cmd_train(args: argparse.Namespace) -> int:
    from emolens.train import resume, train

    if args.resume:
        given = [flag for flag in (*RUN_SETTINGS, *AUGMENT_SETTINGS, "recipe", "out") if flag != "epochs" and getattr(args, flag) is not None]
        ignored = [f"--{name.replace('_', '-')}" for name in given] + (["--no-flip"] if args.no_flip else [])
        if ignored:
            logger.warning("A resumed run keeps its own settings; ignoring %s.", ", ".join(ignored))
        result = resume(args.resume, data=args.data, epochs=args.epochs, cache=not args.no_cache, verbose=_fit_verbosity(), devices=args.devices)
    else:
        if args.data is None:
            raise EmolensError("train needs DATA (a folder, .zip or FER2013 .csv), or --resume RUN to continue a run.")
        result = train(args.data, _train_config(args), out=args.out, cache=not args.no_cache, verbose=_fit_verbosity(), devices=args.devices)
    console.print(
        f"[bold green]Done.[/] Best validation accuracy [bold]{result.best_val_accuracy:.4f}[/] at epoch {result.best_epoch}; "
        f"run in [bold]{_shown(result.run_dir)}[/]"
    )
    data_hint = args.data or "DATA"
    console.print(f"Next: [cyan]emolens evaluate {_shown(f'{result.run_dir} {data_hint}')}[/]")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from emolens.evaluate import evaluate

    from emolens.models.classifier import needs_keras

    if needs_keras(*args.models) or args.explain:
        _start_backend(args.verbose)
    metrics = evaluate(
        args.models, args.data, split=args.split, out=args.out, batch_size=args.batch_size, cache=not args.no_cache, tta=args.tta, explain=args.explain,
    )
    if args.json:
        stdout.print_json(json.dumps(metrics))
        return 0
    tta = "" if metrics["test_time_augmentation"] == "none" else f", test-time augmentation: {metrics['test_time_augmentation']}"
    table = Table(title=f"{metrics['model']} on {metrics['split']} ({metrics['num_images']} images{tta})")
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, row in metrics["per_class"].items():
        table.add_row(name, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"]))
    stdout.print(table)
    stdout.print(f"Accuracy [bold]{metrics['accuracy']:.4f}[/], macro-F1 [bold]{metrics['macro_f1']:.4f}[/]")
    calibration = metrics["calibration"]
    stdout.print(f"Calibration error (ECE, {calibration['bins']} bins): raw softmax {calibration['ece_raw']:.3f}, as predicted [bold]{calibration['ece_calibrated']:.3f}[/]")
    stdout.print(f"Report: [bold]{_shown(metrics['report'])}[/]")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from emolens.models.classifier import needs_keras
    from emolens.train.calibration import calibrate

    if needs_keras(args.model):
        _start_backend(args.verbose)
    calibration = calibrate(args.model, args.data, cache=not args.no_cache)
    stdout.print(
        f"Temperature [bold]{calibration.temperature:.3f}[/], fitted on {calibration.images} validation images: "
        f"calibration error (ECE) {calibration.ece_before:.3f} -> [bold]{calibration.ece_after:.3f}[/], "
        f"log-loss {calibration.nll_before:.3f} -> {calibration.nll_after:.3f}. Written into {_shown(args.model)}'s card."
    )
    return 0


def _face_summary(faces: list) -> str:
    if not faces:
        return "[dim]no face found[/]"
    shown = ", ".join(f"[bold]{face.emotion}[/] {face.confidence:.2f}" for face in faces[:6])
    more = f" and {len(faces) - 6} more" if len(faces) > 6 else ""
    return f"{len(faces)} face{'s' if len(faces) != 1 else ''}: {shown}{more}"


def _detector_config(args: argparse.Namespace):
    """The detector flags as one DetectorConfig; a model file alone means YuNet (the detector that takes one)."""
    from emolens.predict.detectors import DEFAULT_DETECTOR, DetectorConfig

    name = args.detector or ("yunet" if args.detector_model else DEFAULT_DETECTOR)
    return DetectorConfig(name, model_file=args.detector_model, min_face=args.min_face)


class _VideoSummary:
    """What one video or camera session showed, printed as one line when it ends."""

    def __init__(self) -> None:
        self._start(None)

    def _start(self, source: str | None) -> None:
        self.source = source
        self.analysed = self.with_faces = 0
        self.counts: dict[str, int] = {}
        self.tracks: set[int] = set()

    def add(self, result) -> None:
        if result.source != self.source:
            self.show()
            self._start(result.source)
        self.analysed += 1
        self.with_faces += bool(result.faces)
        for face in result.faces:
            self.counts[face.emotion] = self.counts.get(face.emotion, 0) + 1
            if face.track_id is not None:
                self.tracks.add(face.track_id)

    def show(self) -> None:
        if self.source is None:
            return
        seen = ", ".join(f"{emotion} {count}" for emotion, count in sorted(self.counts.items(), key=lambda item: -item[1])[:3])
        faces = f", {len(self.tracks)} face{'s' if len(self.tracks) != 1 else ''} tracked" if self.tracks else ""
        stdout.print(
            f"{_shown(self.source)}: {self.analysed} frames analysed, {self.with_faces} with faces{faces}" + (f"; most seen: {seen}" if seen else ""),
            soft_wrap=True,
        )
        self.source = None


def cmd_predict(args: argparse.Namespace) -> int:
    from emolens._progress import track
    from emolens.models.classifier import needs_keras
    from emolens.predict import Recognizer
    from emolens.predict.inputs import count_pictures, expand_sources
    from emolens.predict.writers import JsonLinesWriter, OutputFolder

    if not args.sources and args.camera is None:
        raise EmolensError("nothing to predict on: pass image files, folders or videos, or --camera N.")
    if args.engine == "ray":
        return _predict_on_ray(args)
    if args.address is not None or args.workers is not None:
        raise EmolensError("--address and --workers are for --engine ray.")
    if args.explain and args.out is None:
        raise EmolensError("--explain draws heat maps into the annotated pictures: pass --out DIR too.")
    if needs_keras(args.model) or args.explain:
        _start_backend(args.verbose)
    recognizer = Recognizer(args.model, detector=_detector_config(args), tta=args.tta, explain=args.explain)
    # Folders are listed once, for the progress bar's total and the predictions alike.
    sources = expand_sources(([args.camera] if args.camera is not None else []) + list(args.sources))
    out = OutputFolder(args.out, recognizer.class_names) if args.out else None
    json_lines = JsonLinesWriter(sys.stdout) if args.json else None
    video = _VideoSummary()
    failures = 0
    results = recognizer.predict(sources, stream=True, every=args.every, smooth=args.smooth, errors="keep")
    total = None if args.camera is not None else count_pictures(sources, every=args.every)
    try:
        for result in track(results, total=total, description="Pictures"):
            if result.error is not None:
                failures += 1
                console.print(f"[bold red]skipped[/] {_shown(f'{result.source}: {result.error}')}", soft_wrap=True)
                continue
            if json_lines is not None:
                json_lines.write(result)
            elif result.is_video_frame:
                video.add(result)
            else:
                video.show()
                stdout.print(f"{_shown(result.source)}: {_face_summary(result.faces)}", soft_wrap=True)
            if out is not None:
                out.write(result)
    except BaseException as error:
        if out is not None:
            out.close(error)
        raise
    if json_lines is None:
        video.show()
    if out is not None:
        out.close()
        if json_lines is None:
            stdout.print(f"Annotated files and faces.csv in [bold]{_shown(args.out)}[/]")
    if failures:
        console.print(f"[red]{failures} input(s) could not be read.[/]")
        return 1
    return 0


def _predict_on_ray(args: argparse.Namespace) -> int:
    from emolens.predict.ray_engine import BatchSettings, predict_to_parquet

    if args.out is None:
        raise EmolensError("--engine ray writes Parquet: pass --out DIR (a re-run skips what DIR already holds).")
    if args.camera is not None or args.json or args.explain:
        raise EmolensError("--engine ray reads files (images, videos, folders, ZIPs, lists) into Parquet; --camera, --json and --explain are for the local engine.")
    settings = BatchSettings(args.model, _detector_config(args), args.tta, args.every, args.smooth)
    summary = predict_to_parquet(args.sources, args.out, settings=settings, address=args.address, workers=args.workers)
    done = f"; {summary.skipped} input(s) already in {_shown(args.out)} skipped" if summary.skipped else ""
    stdout.print(
        f"{summary.inputs} input(s) in {summary.seconds:.1f} s (Ray's start {summary.startup_seconds:.1f} s): {summary.rows} rows in "
        f"{summary.parts} Parquet part(s) in [bold]{_shown(args.out)}[/]{done}",
        soft_wrap=True,
    )
    if summary.errors:
        console.print(f"[red]{summary.errors} input(s) could not be read: their rows say why (column `error`).[/]")
        return 1
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from emolens.export import export_model

    out = export_model(args.model, args.out, format=args.format)
    console.print(f"Wrote [bold]{_shown(out)}[/] and its model card [bold]{_shown(out.with_suffix('.json'))}[/]")
    return 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    from emolens.models.ensemble import build_ensemble

    out = build_ensemble(args.models, args.out)
    console.print(f"Wrote [bold]{_shown(out)}[/], the average of {len(args.models)} models. Use it as --model in predict, evaluate or export.")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from emolens.models import list_models

    table = Table(title="emolens models")
    table.add_column("name", style="bold")
    table.add_column("learning rate", justify="right")
    table.add_column("description")
    for spec in list_models():
        table.add_row(spec.name, f"{spec.learning_rate:g}", spec.description)
    stdout.print(table)
    return 0


def cmd_recipes(args: argparse.Namespace) -> int:
    from emolens.train.recipes import RECIPES, recipe_settings

    if args.name:
        stdout.print_json(json.dumps(recipe_settings(args.name)))
        return 0
    table = Table(title="emolens recipes (`emolens recipes NAME` for all settings)")
    for column in ("name", "model", "epochs", "optimizer", "lr", "schedule"):
        table.add_column(column, style="bold" if column == "name" else None, no_wrap=True)
    for name, recipe in RECIPES.items():
        model = recipe["model"] if "model" in recipe else f"{recipe['start_from']}'s"  # a fine-tuning recipe keeps its start model's
        table.add_row(name, model, str(recipe["epochs"]), recipe["optimizer"], f"{recipe['learning_rate']:g}", recipe["schedule"])
    stdout.print(table)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from emolens.doctor import run_checks

    failures = 0
    for check in run_checks():
        mark = "[green]  ok[/]" if check.ok else "[red]FAIL[/]"
        stdout.print(f"{mark}  [bold]{check.name}[/]: {_shown(check.detail)}", soft_wrap=True)
        failures += not check.ok
    if failures:
        console.print(f"[red]{failures} check(s) failed.[/] Reinstall with `pip install emolens` in a fresh virtual environment.")
        return 1
    stdout.print("[bold green]emolens is ready.[/]")
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    from emolens.data.synth import synthesize_dataset

    try:
        out = synthesize_dataset(args.out, train_per_class=args.train_per_class, test_per_class=args.test_per_class, seed=args.seed)
    except (FileExistsError, ValueError) as error:
        raise EmolensError(str(error)) from error
    console.print(f"Wrote a synthetic FER2013-style dataset to [bold]{_shown(out)}[/] ({args.train_per_class} train and {args.test_per_class} test images per class)")
    return 0


def cmd_data_faces(args: argparse.Namespace) -> int:
    from emolens._progress import track
    from emolens.predict.collect import UNLABELLED, collect_faces
    from emolens.predict.inputs import count_pictures, expand_sources, iter_pictures

    sources = expand_sources(list(args.sources))
    pictures = track(iter_pictures(sources, every=args.every), total=count_pictures(sources, every=args.every), description="Pictures")
    summary = collect_faces(sources, args.out, detector=_detector_config(args), pre_label=args.pre_label, model=args.model, every=args.every, pictures=pictures)
    for skipped in summary.skipped:
        console.print(f"[bold red]skipped[/] {_shown(skipped)}", soft_wrap=True)
    folders = ", ".join(f"{folder} {count}" for folder, count in sorted(summary.by_folder.items()))
    stdout.print(f"{summary.faces} faces from {summary.pictures} pictures in [bold]{_shown(args.out)}[/]" + (f": {folders}" if folders else ""))
    where = f"{args.out}/train/<emotion>/ folders (the guesses are there: move the wrong ones)" if args.pre_label else f"{args.out}/train/<emotion>/ folders, from {args.out}/{UNLABELLED}/"
    stdout.print(f"Next: sort them into {_shown(where)}, then [cyan]emolens train {_shown(args.out)} --recipe finetune[/]")
    return 1 if summary.skipped else 0


def cmd_data_preview(args: argparse.Namespace) -> int:
    from emolens.preview import preview_augmentation

    path = preview_augmentation(args.data, args.out, count=args.count, augment=_augment_config(args), seed=args.seed, cache=not args.no_cache)
    console.print(f"Wrote [bold]{_shown(path)}[/]")
    return 0


def cmd_data_inspect(args: argparse.Namespace) -> int:
    from emolens.data import load_dataset
    from emolens.data.inspection import inspect_dataset, write_cleaned_copy
    from emolens.inspection_report import write_report

    dataset = load_dataset(args.data, cache=not args.no_cache)
    with console.status("Inspecting"):
        report = inspect_dataset(dataset, near=args.near or args.near_threshold is not None, threshold=NEAR_THRESHOLD if args.near_threshold is None else args.near_threshold)
    written = write_report(dataset, report, args.out) if args.out else {}
    cleaned = write_cleaned_copy(dataset, report, args.fix) if args.fix else None
    if args.json:
        stdout.print_json(json.dumps(report.to_dict()))
        return 0
    _print_inspection(report)
    if written:
        console.print(f"Report: [bold]{_shown(written['report'])}[/] (every group with its files), class_counts.png, duplicates.png")
    else:
        console.print("[dim]Every group with its files: --out DIR or --json.[/]")
    if cleaned:
        folder, removed = cleaned
        console.print(f"Cleaned copy: [bold]{_shown(folder)}[/], {len(removed)} images left out (listed in removed.csv)")
    return 0


def _print_inspection(report) -> None:
    counts = Table(title=f"Images per class in {_shown(report.source)}")
    counts.add_column("class")
    for split in report.counts:
        counts.add_column(split, justify="right")
    for name in report.class_names:
        counts.add_row(name, *(str(report.counts[split].get(name, 0)) for split in report.counts))
    ratios = report.imbalance().values()
    counts.add_row("[dim]largest / smallest[/]", *(f"[dim]{ratio:.1f}x[/]" if ratio else "[red]class missing[/]" for ratio in ratios))
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
    shown = report.duplicate_sets()[:5]
    for group in shown:
        files = ", ".join(f"{m.name} ({m.label})" for m in group.members[:4]) + (" ..." if len(group.members) > 4 else "")
        stdout.print(f"  [dim]{'near' if group.near else 'same'}:[/] {_shown(files)}")
    stdout.print("[bold]Verdict[/]")
    for line in report.verdict():
        stdout.print(f"  - {_shown(line)}")


def cmd_serve(args: argparse.Namespace) -> int:
    from emolens.serve import serve

    serve(
        args.model, host=args.host, port=args.port, workers=args.workers, detector=_detector_config(args), tta=args.tta,
        max_upload_mb=args.max_upload_mb, allowed_hosts=args.allow_host, request_timeout_s=args.request_timeout,
    )  # fmt: skip
    return 0


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
    from emolens.predict.detectors import DEFAULT_DETECTOR, DEFAULT_MIN_FACE, detector_names

    parser.add_argument("--detector", choices=detector_names(), help=f"face detector (default {DEFAULT_DETECTOR}, bundled)")
    parser.add_argument("--detector-model", metavar="FILE", help="the detector's model file instead of the bundled one (implies --detector yunet)")
    parser.add_argument("--min-face", type=_positive_int, default=DEFAULT_MIN_FACE, help=f"smallest face side in pixels (default {DEFAULT_MIN_FACE})")


def _add_augment_flags(parser: argparse.ArgumentParser) -> None:
    # No argparse defaults: an unset flag leaves the recipe's (or AugmentConfig's) value in place.
    group = parser.add_argument_group("augmentation (training only)")
    group.add_argument("--rotation", type=float, help="largest rotation in degrees (default 10; 0 turns it off)")
    group.add_argument("--shift", type=float, help="largest width/height shift as a fraction (default 0.1)")
    group.add_argument("--zoom", type=float, help="largest zoom as a fraction (default 0: off)")
    group.add_argument("--erasing", type=float, help="probability of random erasing, one noisy rectangle per image (default 0: off)")
    group.add_argument("--no-flip", action="store_true", help="no random horizontal flips")


def _command(group, name: str, *, help: str, description: str | None = None) -> argparse.ArgumentParser:
    """A subcommand whose --help opens with a description line (its one-line help, unless it has a longer one)."""
    return group.add_parser(name, help=help, description=description or f"{help[0].upper()}{help[1:]}.")


def build_parser() -> argparse.ArgumentParser:
    from emolens.models.classifier import TTA_MODES

    parser = argparse.ArgumentParser(prog="emolens", description="Facial emotion recognition: train, evaluate and inspect FER2013-style models.")
    parser.add_argument("--version", action="version", version=f"emolens {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logs")
    parser.set_defaults(needs_backend=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = _command(commands, "train", help="train a model on a folder, .zip or FER2013 .csv", description="Train a model; writes a run folder.")
    train.add_argument("data", nargs="?", help="a folder with train/ and test/, a .zip of one, or the FER2013 .csv")
    train.add_argument("--recipe", help="start from a named recipe (`emolens recipes`: seed, cpu, best); any flag below overrides it")
    train.add_argument("--model", help="a name from `emolens models` (default seed)")
    train.add_argument("--epochs", type=_positive_int, help="total epochs (default 50)")
    train.add_argument("--batch-size", type=_positive_int, help="images per step (default 64)")
    train.add_argument("--lr", type=float, help="initial learning rate (default: the model's own)")
    train.add_argument("--val-split", type=float, help="fraction of train for validation when there is no val/ (default 0.1)")
    train.add_argument("--seed", type=int, help="random seed (default 0)")
    train.add_argument("--limit", type=_positive_int, help="at most N images per class in each split, for quick runs")
    train.add_argument(
        "--dedupe", nargs="?", const="exact", choices=("none", "exact", "near"),
        help="leave out blank images, duplicates within train and train copies of test images, as `data inspect --fix` "
        "(exact, the default) or `--fix --near` (near) would",
    )
    finetune = train.add_argument_group("fine-tuning")
    finetune.add_argument("--from", dest="start_from", metavar="MODEL", help="start from this model's weights: `default` (the bundled model), a run folder or a .keras file; its architecture and crop are used")
    finetune.add_argument("--new-head", action="store_const", const=True, help="with --from: a new output layer for DATA's classes (needed when they differ from the model's)")
    finetune.add_argument("--freeze-epochs", type=_non_negative_int, help="with --from: train only the output layer for this many epochs first (default 0)")
    optimization = train.add_argument_group("optimization")
    optimization.add_argument("--optimizer", help="adam or sgd (Nesterov momentum) (default adam)")
    optimization.add_argument("--momentum", type=float, help="SGD momentum (default 0.9)")
    optimization.add_argument("--weight-decay", type=float, help="decoupled weight decay (default 0)")
    optimization.add_argument("--schedule", help="inverse_time (the notebook's), cosine (with --warmup-epochs) or plateau (default inverse_time)")
    optimization.add_argument("--warmup-epochs", type=int, help="linear warm-up before the cosine decay (default 0)")
    optimization.add_argument("--label-smoothing", type=float, help="cross-entropy label smoothing (default 0)")
    optimization.add_argument("--mixup", type=float, help="MixUp's Beta alpha, e.g. 0.2 (default 0: off)")
    optimization.add_argument("--cutmix", type=float, help="CutMix's Beta alpha, e.g. 1.0 (default 0: off); with --mixup, one of the two per batch")
    optimization.add_argument(
        "--precision",
        help="auto, float32 or bf16 (mixed bfloat16 while training; saved models are float32) "
        "(default auto: bf16 for the seed model on a CPU with AVX-512 BF16 or AMX, where it is faster and as accurate; else float32)",
    )
    optimization.add_argument("--crop", type=int, help="train on random crops of this side, classify centre crops (44 or 40; default 48: none)")
    optimization.add_argument("--class-weight", help="loss weights for rare classes: none, balanced or sqrt (default none)")
    train.add_argument("--out", help="run folder (default runs/<model>-<timestamp>)")
    train.add_argument("--resume", metavar="RUN", help="continue an interrupted run from its last finished epoch")
    train.add_argument("--devices", type=_device_count, metavar="N|all", help="train data-parallel on N devices (JAX backend: KERAS_BACKEND=jax); --batch-size is the global batch (default: one device)")
    train.add_argument("--no-cache", action="store_true", help="decode the dataset again instead of using the cache")
    _add_augment_flags(train)
    train.set_defaults(handler=cmd_train)

    evaluate = _command(commands, "evaluate", help="metrics, confusion matrix and an HTML report for a trained model")
    evaluate.add_argument("models", nargs="+", metavar="MODEL", help="a run folder, a .keras or .onnx file, or `default`; several make an ensemble")
    evaluate.add_argument("data", help="a dataset source; it may hold only the split evaluated")
    evaluate.add_argument("--split", default="test", choices=("test", "val", "train"), help="which split (default test)")
    evaluate.add_argument("--out", help="where to write the report files (default: beside the model)")
    evaluate.add_argument("--json", action="store_true", help="print metrics.json to stdout")
    evaluate.add_argument("--batch-size", type=_positive_int, default=256, help="images per prediction batch (default 256)")
    evaluate.add_argument("--no-cache", action="store_true", help="decode the dataset again instead of using the cache")
    evaluate.add_argument("--tta", default="none", choices=TTA_MODES, help="test-time augmentation: flip, or crops for models trained on crops (default none)")
    evaluate.add_argument("--explain", action="store_true", help="also draw the most confident mistakes under Grad-CAM heat maps in the report (one model; loads the Keras model)")
    evaluate.set_defaults(handler=cmd_evaluate, needs_backend=False)

    calibrate = _command(
        commands, "calibrate", help="fit a model's confidence on its validation images and store it in the model",
        description="Fit a temperature on the validation images MODEL was trained beside (DATA's val/, or the slice of train that "
                    "training held out) and write it into the model file's card; predict, evaluate and serve apply it.",
    )  # fmt: skip
    calibrate.add_argument("model", help="a run folder, a .keras or .onnx file, or `default` (rewritten in place)")
    calibrate.add_argument("data", help="the dataset the model was trained on")
    calibrate.add_argument("--no-cache", action="store_true", help="decode the dataset again instead of using the cache")
    calibrate.set_defaults(handler=cmd_calibrate, needs_backend=False)

    predict = _command(
        commands,
        "predict",
        help="the emotion of every face in photos, folders, videos or a webcam",
        description="Find faces and recognise their emotions. Exit status 1 if any input could not be read.",
    )
    predict.add_argument("sources", nargs="*", metavar="SOURCE", help="image files, folders (searched recursively), video files, ZIPs of images or .txt lists of paths")
    predict.add_argument("--model", default="default", help="`default` (the bundled model), a run folder, a .keras or .onnx file")
    _add_detector_flags(predict)
    predict.add_argument("--every", type=_positive_int, default=1, help="analyse every K-th video frame (default 1)")
    predict.add_argument("--camera", type=int, metavar="N", help="read webcam N (0 is the first); stop with Ctrl-C")
    predict.add_argument("--out", help="folder for annotated pictures and videos, timelines and faces.csv")
    predict.add_argument("--json", action="store_true", help="print one JSON object per image or analysed frame")
    predict.add_argument("--smooth", type=_non_negative_int, default=0, metavar="N", help="in videos, average each tracked face's probabilities over its last N frames (default 0: off)")
    predict.add_argument("--tta", default="none", choices=TTA_MODES, help="test-time augmentation: flip, or crops for models trained on crops (default none)")
    predict.add_argument("--explain", action="store_true", help="with --out: a Grad-CAM heat map per face in the annotated pictures, and <name>.faceK.explain.png per face (loads the Keras model)")
    predict.add_argument("--engine", default="local", choices=("local", "ray"), help="local (this process) or ray: Ray Data actors writing Parquet to --out, resumable (default local)")
    predict.add_argument("--address", metavar="ADDR", help="with --engine ray: join this Ray cluster (auto, or ray://host:port); default: a local Ray for this command")
    predict.add_argument("--workers", type=_positive_int, metavar="N", help="with --engine ray: Ray actors, one CPU each (default: every CPU of the cluster)")
    predict.set_defaults(handler=cmd_predict, needs_backend=False)

    serve = _command(
        commands,
        "serve",
        help="an HTTP API and a web page (photos and the webcam) on this machine",
        description="Serve POST /v1/predict, /v1/health, /v1/model, the page at / and the OpenAPI description at /openapi.json.",
    )
    serve.add_argument("--model", default="default", help="`default` (the bundled model), a run folder, a .keras or .onnx file")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for every network)")
    serve.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    serve.add_argument("--workers", type=_positive_int, default=1, help="worker processes, each with its own model (default 1)")
    serve.add_argument("--max-upload-mb", type=float, default=10.0, help="largest upload in megabytes; larger ones get 413 (default 10)")
    serve.add_argument(
        "--allow-host", action="append", default=[], metavar="NAME",
        help="a host name or address clients may reach this server by (repeatable; * for any). Loopback names and the --host address always work",
    )  # fmt: skip
    serve.add_argument("--request-timeout", type=float, default=30.0, metavar="S", help="seconds a client has to send each whole request, upload included (default 30)")
    _add_detector_flags(serve)
    serve.add_argument("--tta", default="none", choices=TTA_MODES, help="test-time augmentation: flip, or crops for models trained on crops (default none)")
    serve.set_defaults(handler=cmd_serve, needs_backend=False)

    export = _command(commands, "export", help="export a trained model to ONNX (or a clean .keras) with its model card")
    export.add_argument("model", help="a run folder or a .keras file")
    export.add_argument("--format", default="onnx", choices=("onnx", "keras"), help="file format (default onnx)")
    export.add_argument("--out", help="file to write (default <run name>.<format>)")
    export.set_defaults(handler=cmd_export)

    ensemble = _command(commands, "ensemble", help="save one model that averages several trained ones")
    ensemble.add_argument("models", nargs="+", metavar="MODEL", help="run folders or .keras files (two or more)")
    ensemble.add_argument("--out", required=True, help="the .keras file to write")
    ensemble.set_defaults(handler=cmd_ensemble)

    _command(commands, "models", help="list the model architectures").set_defaults(handler=cmd_models, needs_backend=False)
    recipes = _command(commands, "recipes", help="show the training recipes (plain settings; copy and override any)")
    recipes.add_argument("name", nargs="?", help="one recipe, printed as JSON")
    recipes.set_defaults(handler=cmd_recipes, needs_backend=False)
    _command(commands, "doctor", help="check the installation and show the backend and devices").set_defaults(handler=cmd_doctor)

    data = _command(commands, "data", help="dataset tools").add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    synth = _command(data, "synth", help="write a synthetic FER2013-style dataset of drawn faces")
    synth.add_argument("out", help="an empty or new folder")
    synth.add_argument("--train-per-class", type=_positive_int, default=200, help="training images per class (default 200)")
    synth.add_argument("--test-per-class", type=_positive_int, default=50, help="test images per class (default 50)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.set_defaults(handler=cmd_data_synth, needs_backend=False)
    faces = _command(
        data, "faces", help="your own photos and videos as a dataset: every face as a 48x48 crop, to sort by emotion",
        description="Find faces as `predict` does and write each as the 48x48 crop the classifier sees: into OUT/unlabelled/, or "
                    "with --pre-label into OUT/train/<the bundled model's guess>/; OUT/faces.csv says where each came from. "
                    "Sorted into OUT/train/<emotion>/, OUT is a dataset for `emolens train OUT --recipe finetune`.",
    )  # fmt: skip
    faces.add_argument("sources", nargs="+", metavar="SOURCE", help="image files, folders, videos, ZIPs of images or .txt lists of paths")
    faces.add_argument("--out", required=True, help="the dataset folder to make")
    faces.add_argument("--pre-label", action="store_true", help="file each face under train/<guess> by --model's answer, for a person to correct")
    faces.add_argument("--model", default="default", help="the model whose guesses --pre-label uses (default: the bundled one)")
    faces.add_argument("--every", type=_positive_int, default=10, help="in videos, take every K-th frame (default 10)")
    _add_detector_flags(faces)
    faces.set_defaults(handler=cmd_data_faces, needs_backend=False)
    preview = _command(data, "preview", help="a grid of training images after augmentation")
    preview.add_argument("data", help="a dataset source with a train split")
    preview.add_argument("--out", default="preview.png", help="PNG to write (default preview.png)")
    preview.add_argument("--count", type=_positive_int, default=32, help="how many images (default 32)")
    preview.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    preview.add_argument("--no-cache", action="store_true", help="decode the dataset again instead of using the cache")
    _add_augment_flags(preview)
    preview.set_defaults(handler=cmd_data_preview)
    inspect = _command(
        data,
        "inspect",
        help="find duplicates, leakage between splits, blank and unreadable images, class imbalance",
        description="Check a dataset before training on it. The source is only read; --fix writes a cleaned copy.",
    )
    inspect.add_argument("data", help="a folder, .zip or FER2013 .csv")
    inspect.add_argument("--near", action="store_true", help="also find near duplicates and mirror images (perceptual hash)")
    inspect.add_argument("--near-threshold", type=int, metavar="BITS", help=f"largest pHash Hamming distance for near duplicates, 0-{MAX_NEAR_THRESHOLD} (implies --near; default {NEAR_THRESHOLD})")
    inspect.add_argument("--out", help="folder for report.json, class_counts.png and duplicates.png")
    inspect.add_argument("--fix", metavar="OUT", help="write a cleaned copy (PNG folders) to this new folder")
    inspect.add_argument("--json", action="store_true", help="print the full report as JSON")
    inspect.add_argument("--no-cache", action="store_true", help="decode the dataset again instead of using the cache")
    inspect.set_defaults(handler=cmd_data_inspect, needs_backend=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (0 ok, 1 a check failed, 2 bad input, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    if args.needs_backend:
        _start_backend(args.verbose)
    log_handler = RichHandler(console=console, show_path=False, show_time=False)
    log_handler.addFilter(_PrintableLogFilter())
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
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
        console.print(f"[bold red]error:[/] {_shown(f'cannot use{where}: {error.strerror or error}.')} Check the path and its permissions.", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        hint = " Resume with `emolens train --resume RUN`." if args.command == "train" else ""
        console.print(f"[yellow]Interrupted.[/]{hint}")
        return 130


if __name__ == "__main__":
    sys.exit(main())
