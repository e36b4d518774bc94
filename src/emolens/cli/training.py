"""The training subcommands: train, models, recipes, doctor (evaluating.py has what comes after training)."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from emolens.cli._common import (
    AUGMENT_SETTINGS,
    _add_augment_flags,
    _augment_overrides,
    _command,
    _device_count,
    _fit_verbosity,
    _non_negative_int,
    _positive_int,
    _shown,
    console,
    logger,
    stdout,
)
from emolens.constants import TTA_MODES
from emolens.errors import EmolensError

# Settings fixed when a run starts (flag name -> TrainConfig field); --resume takes them from config.json.
RUN_SETTINGS = {
    "model": "model",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "learning_rate",
    "val_split": "val_split",
    "seed": "seed",
    "split_seed": "split_seed",
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
    "teacher": "teacher",
    "teacher_weight": "teacher_weight",
    "teacher_tta": "teacher_tta",
    "teacher_sees": "teacher_sees",
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
    """Train a model on a folder, .zip or FER2013 .csv.

    Train a model; writes a run folder.
    """
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
    from emolens.train.record import RunRecord

    data = RunRecord.read(run_dir).data
    split = "" if "test" in (data.counts or {}) else " --split val"
    labels = f" --labels {data.labels}" if data.labels else ""
    return f"{run_dir} {data.source}{labels}{split}"


def cmd_models(args: argparse.Namespace) -> int:
    """List the model architectures."""
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
    """Show the training recipes (plain settings; copy and override any)."""
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
    """Check the installation and show the backend and devices."""
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


def add_train(commands) -> None:
    """`emolens train`: every TrainConfig setting as a flag (see RUN_SETTINGS), grouped as --help shows them."""
    from emolens.data.sources import source_kinds

    train = _command(commands, "train", cmd_train)
    train.add_argument("data", nargs="?", help=source_kinds())
    train.add_argument(
        "--recipe", help="start from a named recipe (`emolens recipes` lists them); any flag below overrides it"
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
        "--split-seed",
        type=int,
        help="seed the validation split alone, so ensemble members of different --seed hold out the same images "
        "(default: --seed)",
    )
    train.add_argument(
        "--limit",
        type=_positive_int,
        help="for quick runs: train on at most N images per class, and validate on at most N per class "
        "(evaluate's test split is never limited)",
    )
    train.add_argument(
        "--dedupe",
        nargs="?",
        const="exact",
        choices=("none", "exact", "near"),
        help="leave out blank images, duplicates within train and train copies of test images, as `data inspect --fix` "
        "(exact, the default) or `--fix --near` (near) would",
    )
    _add_labelling_flags(train)
    _add_finetuning_flags(train)
    _add_optimization_flags(train)
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


def _add_labelling_flags(train: argparse.ArgumentParser) -> None:
    """--labels, what to learn from them, and a teacher to distil."""
    labelling = train.add_argument_group("what the model learns: labels from a file, votes, a teacher")
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
    labelling.add_argument(
        "--teacher",
        metavar="MODEL",
        help="distil: a trained model (run folder, .keras or .onnx file, `default`) whose answers for the training "
        "images become part of the target",
    )
    labelling.add_argument(
        "--teacher-weight",
        type=float,
        help="with --teacher: share of the target that is the teacher's answer (default 0.5)",
    )
    labelling.add_argument(
        "--teacher-tta",
        choices=TTA_MODES,
        help="with --teacher: its answers' test-time augmentation, crops for a teacher trained on crops (default flip)",
    )
    labelling.add_argument(
        "--teacher-sees",
        choices=("faces", "views"),
        help="with --teacher: answer each training face once before training (faces, the default), or each "
        "augmented view as the student trains on it (views: consistent targets, the teacher's pass every step)",
    )


def _add_finetuning_flags(train: argparse.ArgumentParser) -> None:
    """--from and how to start from another model's weights."""
    finetune = train.add_argument_group("fine-tuning")
    finetune.add_argument(
        "--from",
        dest="start_from",
        metavar="MODEL",
        help="start from this model's weights: `default` (the bundled model), a run folder or a .keras file; "
        "its architecture and crop are used",
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


def _add_optimization_flags(train: argparse.ArgumentParser) -> None:
    """The optimizer, schedule, loss and precision flags."""
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
        "(default auto: bf16 for seed, mini_resnet and resnet on a CPU with AVX-512 BF16 or AMX, where it was measured "
        "faster and as accurate; else float32)",
    )
    optimization.add_argument(
        "--crop",
        type=int,
        help="train on random crops of this side, classify centre crops (44 or 40; default 48: none)",
    )
    optimization.add_argument(
        "--class-weight", help="loss weights for rare classes: none, balanced or sqrt (default none)"
    )


def add_catalogue_commands(commands) -> None:
    """Adds models, recipes and doctor: what is installed and what it offers."""
    _command(commands, "models", cmd_models, needs_backend=False)
    recipes = _command(commands, "recipes", cmd_recipes, needs_backend=False)
    recipes.add_argument("name", nargs="?", help="one recipe, printed as JSON")
    _command(commands, "doctor", cmd_doctor)
