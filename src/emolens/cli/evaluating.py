"""The subcommands for a trained model: evaluate, calibrate, export, ensemble."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from rich.table import Table

from emolens.cli._common import (
    _add_tta_flag,
    _class_scale,
    _command,
    _pairs,
    _positive_int,
    _shown,
    _start_backend,
    console,
    stdout,
)

if TYPE_CHECKING:
    from emolens.evaluate import Evaluation


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Metrics, confusion matrix and an HTML report for a trained model."""
    from emolens.evaluate import evaluate
    from emolens.models.classifier import needs_keras

    if needs_keras(*args.models) or args.explain:
        _start_backend(args.verbose)
    class_map = _pairs(args.class_map, "--class-map", "joy=happy,rage=angry") if args.class_map else None
    evaluation = evaluate(
        args.models,
        args.data,
        split=args.split,
        out=args.out,
        batch_size=args.batch_size,
        cache=not args.no_cache,
        tta=args.tta,
        explain=args.explain,
        labels=args.labels,
        class_map=class_map,
    )
    if args.json:
        stdout.print_json(json.dumps(evaluation.to_dict()))
        return 0
    _print_per_class(evaluation)
    _print_agreement(evaluation)
    calibration = evaluation.calibration
    stdout.print(
        f"Calibration error (ECE, {calibration['bins']} bins): raw softmax {calibration['ece_raw']:.3f}, "
        f"as predicted [bold]{calibration['ece_calibrated']:.3f}[/]"
    )
    stdout.print(f"Report: [bold]{_shown(evaluation.report)}[/]")
    return 0


def _print_per_class(evaluation: Evaluation) -> None:
    """The per-class table, titled with what was scored."""
    augmentation = evaluation.test_time_augmentation
    tta = "" if augmentation == "none" else f", test-time augmentation: {augmentation}"
    table = Table(title=f"{evaluation.model} on {evaluation.split} ({evaluation.num_images} images{tta})")
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, row in evaluation.per_class.items():
        table.add_row(name, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"]))
    stdout.print(table)


def _print_agreement(evaluation: Evaluation) -> None:
    """Accuracy (against the votes' majority when there are votes), then agreement, classes and left-outs."""
    from emolens.evaluate.agreement import scoring_notes

    against = " against the votes' majority" if evaluation.agreement else ""
    stdout.print(f"Accuracy{against} [bold]{evaluation.accuracy:.4f}[/], macro-F1 [bold]{evaluation.macro_f1:.4f}[/]")
    if evaluation.agreement:
        stdout.print(
            f"Vote share: the predicted emotion got [bold]{evaluation.agreement['vote_share']:.4f}[/] "
            "of the annotators' votes on average"
        )
    source = evaluation.source_label
    if source and source["accuracy"] is not None:
        stdout.print(
            f"Accuracy against the folders' own labels [bold]{source['accuracy']:.4f}[/] ({source['num_images']} images)"
        )
    for note in scoring_notes(evaluation.to_dict()):
        stdout.print(_shown(note))


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit a model's confidence on its validation images and store it in the model.

    Fit a temperature on the validation images MODEL was trained beside (DATA's val/, or the slice of train that
    training held out) and write it into the model file's card; predict, evaluate and serve apply it.
    """
    from emolens.models.classifier import needs_keras
    from emolens.train.calibration import calibrate

    if needs_keras(args.model):
        _start_backend(args.verbose)
    scale = _class_scale(args.class_scale) if args.class_scale else None
    calibration = calibrate(args.model, args.data, cache=not args.no_cache, labels=args.labels, class_scale=scale)
    stdout.print(
        f"Temperature [bold]{calibration.temperature:.3f}[/], fitted on {calibration.images} validation images: "
        f"{calibration.error_change()}, "
        f"log-loss {calibration.nll_before:.3f} -> {calibration.nll_after:.3f}. Written into {_shown(args.model)}'s card."
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export a trained model to ONNX (or a clean .keras) with its model card."""
    from emolens.export import export_model

    out = export_model(args.model, args.out, format=args.format)
    console.print(f"Wrote [bold]{_shown(out)}[/] and its model card [bold]{_shown(out.with_suffix('.json'))}[/]")
    return 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    """Save one model that averages several trained ones."""
    from emolens.models.ensemble import build_ensemble

    out = build_ensemble(args.models, args.out)
    console.print(
        f"Wrote [bold]{_shown(out)}[/], the average of {len(args.models)} models. Use it as --model in predict, evaluate or export."
    )
    return 0


def add_commands(commands) -> None:
    """Adds evaluate, calibrate, export and ensemble."""
    for add in (_add_evaluate, _add_calibrate, _add_export, _add_ensemble):
        add(commands)


def _add_evaluate(commands) -> None:
    """`emolens evaluate`: scores one model (or an ensemble) on a split, with a report."""
    evaluate = _command(commands, "evaluate", cmd_evaluate, needs_backend=False)
    evaluate.add_argument(
        "models",
        nargs="+",
        metavar="MODEL",
        help="a run folder, a .keras or .onnx file, or `default`; several make an ensemble",
    )
    evaluate.add_argument("data", help="a dataset source; it may hold only the split evaluated")
    evaluate.add_argument(
        "--split", default="test", choices=("test", "val", "train"), help="which split (default test)"
    )
    evaluate.add_argument("--out", help="where to write the report files (default: beside the model)")
    evaluate.add_argument("--json", action="store_true", help="print metrics.json to stdout")
    evaluate.add_argument(
        "--batch-size", type=_positive_int, default=256, help="images per prediction batch (default 256)"
    )
    evaluate.add_argument("--no-cache", action="store_true", help="decode the dataset again instead of using the cache")
    _add_tta_flag(evaluate)
    evaluate.add_argument(
        "--labels",
        metavar="FILE",
        help="a labels file (as train's --labels); with votes, accuracy is against their majority, beside the vote share",
    )
    evaluate.add_argument(
        "--class-map",
        metavar="DATA=MODEL,...",
        help="match dataset classes to the model's where the common synonyms (anger, sadness...) do not",
    )
    evaluate.add_argument(
        "--explain",
        action="store_true",
        help="also draw the most confident mistakes under Grad-CAM heat maps in the report (one model; loads the Keras model)",
    )


def _add_calibrate(commands) -> None:
    """`emolens calibrate`: a temperature (and class scales) fitted on validation, kept in the card."""
    calibrate = _command(commands, "calibrate", cmd_calibrate, needs_backend=False)
    calibrate.add_argument("model", help="a run folder, a .keras or .onnx file, or `default` (rewritten in place)")
    calibrate.add_argument("data", help="the dataset the model was trained on")
    calibrate.add_argument(
        "--class-scale",
        metavar="CLASS=FACTOR,...",
        help="also scale some classes' probabilities before renormalising, e.g. neutral=0.6 "
        "(chosen on validation with bench/frontier.py); stored in the card",
    )
    calibrate.add_argument(
        "--labels",
        metavar="FILE",
        help="the labels file it was trained with, if any (with votes, confidence is fitted to the vote shares)",
    )
    calibrate.add_argument(
        "--no-cache", action="store_true", help="decode the dataset again instead of using the cache"
    )


def _add_export(commands) -> None:
    """`emolens export`: ONNX or a clean .keras file, with the model card beside it."""
    export = _command(commands, "export", cmd_export)
    export.add_argument("model", help="a run folder or a .keras file")
    export.add_argument("--format", default="onnx", choices=("onnx", "keras"), help="file format (default onnx)")
    export.add_argument("--out", help="file to write (default <run name>.<format>)")


def _add_ensemble(commands) -> None:
    """`emolens ensemble`: one .keras model averaging several."""
    ensemble = _command(commands, "ensemble", cmd_ensemble)
    ensemble.add_argument("models", nargs="+", metavar="MODEL", help="run folders or .keras files (two or more)")
    ensemble.add_argument("--out", required=True, help="the .keras file to write")
