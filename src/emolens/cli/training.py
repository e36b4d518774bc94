"""The training subcommands: train, evaluate, calibrate, export, ensemble, models, recipes, doctor."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from emolens.errors import EmolensError
from emolens.cli._common import (
    AUGMENT_SETTINGS,
    _add_augment_flags,
    _augment_overrides,
    _class_scale,
    _command,
    _pairs,
    _device_count,
    _fit_verbosity,
    _non_negative_int,
    _positive_int,
    _shown,
    _start_backend,
    console,
    logger,
    stdout,
)


# Settings fixed when a run starts (flag name -> TrainConfig field); --resume takes them from config.json.
RUN_SETTINGS = {
    "model": "model",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "learning_rate",
    "val_split": "val_split",
    "seed": "seed",
    "limit": "limit",
    "optimizer": "optimizer",
    "momentum": "momentum",
    "weight_decay": "weight_decay",
    "schedule": "schedule",
    "warmup_epochs": "warmup_epochs",
    "label_smoothing": "label_smoothing",
    "class_weight": "class_weight",
    "crop": "crop",
    "precision": "precision",
    "mixup": "mixup",
    "cutmix": "cutmix",
    "dedupe": "dedupe",
    "start_from": "start_from",
    "new_head": "new_head",
    "freeze_epochs": "freeze_epochs",
    "target": "target",
    "source_label_weight": "source_label_weight",
}


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
        # The message names the setting ("learning_rate=-1.0"); the user typed a flag (--lr).
        flags = [_flag(flag) for flag, field in RUN_SETTINGS.items() if f"{field}=" in str(error)]
        raise EmolensError(f"{error}." + (f" Change {' or '.join(flags)}." if flags else "")) from error


def _flag(setting: str) -> str:
    return "--from" if setting == "start_from" else "--" + setting.replace("_", "-")


def cmd_train(args: argparse.Namespace) -> int:
    from emolens.train import resume, train

    if args.resume:
        given = [
            flag
            for flag in (*RUN_SETTINGS, *AUGMENT_SETTINGS, "recipe", "out", "labels")
            if flag != "epochs" and getattr(args, flag) is not None
        ]
        ignored = [f"--{name.replace('_', '-')}" for name in given] + (["--no-flip"] if args.no_flip else [])
        if ignored:
            logger.warning("A resumed run keeps its own settings; ignoring %s.", ", ".join(ignored))
        result = resume(
            args.resume,
            data=args.data,
            epochs=args.epochs,
            cache=not args.no_cache,
            verbose=_fit_verbosity(),
            devices=args.devices,
        )
    else:
        if args.data is None:
            raise EmolensError("train needs DATA (a folder, .zip or FER2013 .csv), or --resume RUN to continue a run.")
        result = train(
            args.data,
            _train_config(args),
            out=args.out,
            cache=not args.no_cache,
            verbose=_fit_verbosity(),
            devices=args.devices,
            labels=args.labels,
        )
    console.print(
        f"[bold green]Done.[/] Best validation accuracy [bold]{result.best_val_accuracy:.4f}[/] at epoch {result.best_epoch}; "
        f"run in [bold]{_shown(result.run_dir)}[/]"
    )
    console.print(f"Next: [cyan]emolens evaluate {_shown(_evaluate_hint(result.run_dir))}[/]")
    return 0


def _evaluate_hint(run_dir) -> str:
    """The evaluate command for a finished run: its data and labels file, on test, or on the images it held out
    for validation when the data has no test split."""
    from emolens.rundir import RunDir

    saved = RunDir(run_dir).saved_config()
    data = saved["data"]
    split = "" if "test" in data.get("counts", {}) else " --split val"
    labels = f" --labels {data['labels']}" if data.get("labels") else ""
    return f"{run_dir} {data['source']}{labels}{split}"


def cmd_evaluate(args: argparse.Namespace) -> int:
    from emolens.evaluate import evaluate

    from emolens.models.classifier import needs_keras

    if needs_keras(*args.models) or args.explain:
        _start_backend(args.verbose)
    class_map = _pairs(args.class_map, "--class-map", "joy=happy,rage=angry") if args.class_map else None
    metrics = evaluate(
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
        stdout.print_json(json.dumps(metrics))
        return 0
    tta = (
        ""
        if metrics["test_time_augmentation"] == "none"
        else f", test-time augmentation: {metrics['test_time_augmentation']}"
    )
    table = Table(title=f"{metrics['model']} on {metrics['split']} ({metrics['num_images']} images{tta})")
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, row in metrics["per_class"].items():
        table.add_row(name, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"]))
    stdout.print(table)
    _print_agreement(metrics)
    calibration = metrics["calibration"]
    stdout.print(
        f"Calibration error (ECE, {calibration['bins']} bins): raw softmax {calibration['ece_raw']:.3f}, as predicted [bold]{calibration['ece_calibrated']:.3f}[/]"
    )
    stdout.print(f"Report: [bold]{_shown(metrics['report'])}[/]")
    return 0


def _print_agreement(metrics: dict) -> None:
    """Accuracy (against the votes' majority when there are votes), then agreement, classes and left-outs."""
    against = " against the votes' majority" if "agreement" in metrics else ""
    stdout.print(f"Accuracy{against} [bold]{metrics['accuracy']:.4f}[/], macro-F1 [bold]{metrics['macro_f1']:.4f}[/]")
    if "agreement" in metrics:
        stdout.print(
            f"Vote share: the predicted emotion got [bold]{metrics['agreement']['vote_share']:.4f}[/] of the annotators' votes on average"
        )
    source = metrics.get("source_label")
    if source and source["accuracy"] is not None:
        stdout.print(
            f"Accuracy against the folders' own labels [bold]{source['accuracy']:.4f}[/] ({source['num_images']} images)"
        )
    from emolens.evaluate.agreement import scoring_notes

    for note in scoring_notes(metrics):
        stdout.print(_shown(note))


def cmd_calibrate(args: argparse.Namespace) -> int:
    from emolens.models.classifier import needs_keras
    from emolens.train.calibration import calibrate

    if needs_keras(args.model):
        _start_backend(args.verbose)
    scale = _class_scale(args.class_scale) if args.class_scale else None
    calibration = calibrate(args.model, args.data, cache=not args.no_cache, labels=args.labels, class_scale=scale)
    stdout.print(
        f"Temperature [bold]{calibration.temperature:.3f}[/], fitted on {calibration.images} validation images: "
        f"calibration error (ECE) {calibration.ece_before:.3f} -> [bold]{calibration.ece_after:.3f}[/], "
        f"log-loss {calibration.nll_before:.3f} -> {calibration.nll_after:.3f}. Written into {_shown(args.model)}'s card."
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from emolens.export import export_model

    out = export_model(args.model, args.out, format=args.format)
    console.print(f"Wrote [bold]{_shown(out)}[/] and its model card [bold]{_shown(out.with_suffix('.json'))}[/]")
    return 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    from emolens.models.ensemble import build_ensemble

    out = build_ensemble(args.models, args.out)
    console.print(
        f"Wrote [bold]{_shown(out)}[/], the average of {len(args.models)} models. Use it as --model in predict, evaluate or export."
    )
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
        model = (
            recipe["model"] if "model" in recipe else f"{recipe['start_from']}'s"
        )  # a fine-tuning recipe keeps its start model's
        table.add_row(
            name, model, str(recipe["epochs"]), recipe["optimizer"], f"{recipe['learning_rate']:g}", recipe["schedule"]
        )
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
        console.print(
            f"[red]{failures} check(s) failed.[/] Reinstall with `pip install emolens` in a fresh virtual environment."
        )
        return 1
    stdout.print("[bold green]emolens is ready.[/]")
    return 0


def _add_train(commands) -> None:
    """`emolens train`: every TrainConfig setting as a flag (see RUN_SETTINGS), grouped as --help shows them."""
    train = _command(
        commands,
        "train",
        help="train a model on a folder, .zip or FER2013 .csv",
        description="Train a model; writes a run folder.",
    )
    train.add_argument("data", nargs="?", help="a folder with train/ and test/, a .zip of one, or the FER2013 .csv")
    train.add_argument(
        "--recipe",
        help="start from a named recipe (`emolens recipes`: seed, quick, cpu, ferplus, finetune, best); any flag below overrides it",
    )
    train.add_argument("--model", help="a name from `emolens models` (default seed)")
    train.add_argument("--epochs", type=_positive_int, help="total epochs (default 50)")
    train.add_argument("--batch-size", type=_positive_int, help="images per step (default 64)")
    train.add_argument("--lr", type=float, help="initial learning rate (default: the model's own)")
    train.add_argument(
        "--val-split", type=float, help="fraction of train for validation when there is no val/ (default 0.1)"
    )
    train.add_argument("--seed", type=int, help="random seed (default 0)")
    train.add_argument(
        "--limit",
        type=_positive_int,
        help="for quick runs: train on at most N images per class, and validate on at most N per class (evaluate's test split is never limited)",
    )
    train.add_argument(
        "--dedupe",
        nargs="?",
        const="exact",
        choices=("none", "exact", "near"),
        help="leave out blank images, duplicates within train and train copies of test images, as `data inspect --fix` "
        "(exact, the default) or `--fix --near` (near) would",
    )
    labelling = train.add_argument_group("labels from a file")
    labelling.add_argument(
        "--labels",
        metavar="FILE",
        help="a CSV keyed by each image's path, with a label column or one column of votes per class (FER+'s "
        "fer2013-ferplus.csv): replaces the folders' labels; unknown / not-a-face faces are left out",
    )
    labelling.add_argument(
        "--target",
        choices=("votes", "majority"),
        help="with votes: learn their distribution or their majority (default votes)",
    )
    labelling.add_argument(
        "--source-label-weight",
        type=float,
        help="with --labels: share of the target that is the folder's own label, e.g. 0.5 (default 0)",
    )
    finetune = train.add_argument_group("fine-tuning")
    finetune.add_argument(
        "--from",
        dest="start_from",
        metavar="MODEL",
        help="start from this model's weights: `default` (the bundled model), a run folder or a .keras file; its architecture and crop are used",
    )
    finetune.add_argument(
        "--new-head",
        action="store_const",
        const=True,
        help="with --from: a new output layer for DATA's classes (needed when they differ from the model's)",
    )
    finetune.add_argument(
        "--freeze-epochs",
        type=_non_negative_int,
        help="with --from: train only the output layer for this many epochs first (default 0)",
    )
    optimization = train.add_argument_group("optimization")
    optimization.add_argument("--optimizer", help="adam or sgd (Nesterov momentum) (default adam)")
    optimization.add_argument("--momentum", type=float, help="SGD momentum (default 0.9)")
    optimization.add_argument("--weight-decay", type=float, help="decoupled weight decay (default 0)")
    optimization.add_argument(
        "--schedule",
        help="inverse_time (the notebook's), cosine (with --warmup-epochs) or plateau (default inverse_time)",
    )
    optimization.add_argument("--warmup-epochs", type=int, help="linear warm-up before the cosine decay (default 0)")
    optimization.add_argument("--label-smoothing", type=float, help="cross-entropy label smoothing (default 0)")
    optimization.add_argument("--mixup", type=float, help="MixUp's Beta alpha, e.g. 0.2 (default 0: off)")
    optimization.add_argument(
        "--cutmix",
        type=float,
        help="CutMix's Beta alpha, e.g. 1.0 (default 0: off); with --mixup, one of the two per batch",
    )
    optimization.add_argument(
        "--precision",
        help="auto, float32 or bf16 (mixed bfloat16 while training; saved models are float32) "
        "(default auto: bf16 for the seed model on a CPU with AVX-512 BF16 or AMX, where it is faster and as accurate; else float32)",
    )
    optimization.add_argument(
        "--crop",
        type=int,
        help="train on random crops of this side, classify centre crops (44 or 40; default 48: none)",
    )
    optimization.add_argument(
        "--class-weight", help="loss weights for rare classes: none, balanced or sqrt (default none)"
    )
    train.add_argument("--out", help="run folder (default runs/<model>-<timestamp>)")
    train.add_argument("--resume", metavar="RUN", help="continue an interrupted run from its last finished epoch")
    train.add_argument(
        "--devices",
        type=_device_count,
        metavar="N|all",
        help="train data-parallel on N devices (JAX backend: KERAS_BACKEND=jax); --batch-size is the global batch (default: one device)",
    )
    train.add_argument("--no-cache", action="store_true", help="decode the dataset again instead of using the cache")
    _add_augment_flags(train)
    train.set_defaults(handler=cmd_train)


def add_commands(commands) -> None:
    """Adds train, evaluate and calibrate, then export, ensemble, models, recipes and doctor."""
    from emolens.models.classifier import TTA_MODES

    _add_train(commands)

    evaluate = _command(commands, "evaluate", help="metrics, confusion matrix and an HTML report for a trained model")
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
    evaluate.add_argument(
        "--tta",
        default="none",
        choices=TTA_MODES,
        help="test-time augmentation: flip, or crops for models trained on crops (default none)",
    )
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
    evaluate.set_defaults(handler=cmd_evaluate, needs_backend=False)

    calibrate = _command(
        commands,
        "calibrate",
        help="fit a model's confidence on its validation images and store it in the model",
        description="Fit a temperature on the validation images MODEL was trained beside (DATA's val/, or the slice of train that "
        "training held out) and write it into the model file's card; predict, evaluate and serve apply it.",
    )
    calibrate.add_argument("model", help="a run folder, a .keras or .onnx file, or `default` (rewritten in place)")
    calibrate.add_argument("data", help="the dataset the model was trained on")
    calibrate.add_argument(
        "--class-scale",
        metavar="CLASS=FACTOR,...",
        help="also scale some classes' probabilities before renormalising, e.g. neutral=0.6 (chosen on validation with bench/frontier.py); stored in the card",
    )
    calibrate.add_argument(
        "--labels",
        metavar="FILE",
        help="the labels file it was trained with, if any (with votes, confidence is fitted to the vote shares)",
    )
    calibrate.add_argument(
        "--no-cache", action="store_true", help="decode the dataset again instead of using the cache"
    )
    calibrate.set_defaults(handler=cmd_calibrate, needs_backend=False)

    export = _command(commands, "export", help="export a trained model to ONNX (or a clean .keras) with its model card")
    export.add_argument("model", help="a run folder or a .keras file")
    export.add_argument("--format", default="onnx", choices=("onnx", "keras"), help="file format (default onnx)")
    export.add_argument("--out", help="file to write (default <run name>.<format>)")
    export.set_defaults(handler=cmd_export)

    ensemble = _command(commands, "ensemble", help="save one model that averages several trained ones")
    ensemble.add_argument("models", nargs="+", metavar="MODEL", help="run folders or .keras files (two or more)")
    ensemble.add_argument("--out", required=True, help="the .keras file to write")
    ensemble.set_defaults(handler=cmd_ensemble)

    _command(commands, "models", help="list the model architectures").set_defaults(
        handler=cmd_models, needs_backend=False
    )
    recipes = _command(commands, "recipes", help="show the training recipes (plain settings; copy and override any)")
    recipes.add_argument("name", nargs="?", help="one recipe, printed as JSON")
    recipes.set_defaults(handler=cmd_recipes, needs_backend=False)
    _command(commands, "doctor", help="check the installation and show the backend and devices").set_defaults(
        handler=cmd_doctor
    )
