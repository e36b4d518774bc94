"""Trains and evaluates emolens's recipes on FER2013, under one protocol, and writes the accuracy table.

Protocol: train on train; checkpoints chosen on a stratified 10% validation slice of train; test (the zip's
test/, FER2013 PublicTest, 3,589 images) read once per model, without and with test-time flip averaging, and
scored also without the test images that have a copy in train: pixel-identical copies (`emolens data inspect`),
and near-identical or mirrored ones too (`emolens data inspect --near`).
Each recipe's run lives in RUNS/<recipe>; a finished run is evaluated as it is, an unfinished one is resumed
first (so a 2-hour recipe can be finished over several sittings), a missing one is trained. With two or more
runs, their ensemble (averaged probabilities) gets a row too.

Usage: python bench/accuracy.py [--data ../shared/data/fer2013.zip] [--recipes seed,cpu] [--runs runs/accuracy]
       [--epochs N (override, for a quick check)] [--out table.md]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def training_minutes(run: Path) -> float:
    with open(run / "history.csv", newline="") as file:
        return sum(float(row["seconds"]) for row in csv.DictReader(file)) / 60


def finished(run: Path) -> bool:
    from emolens.models.saving import read_card

    if not (run / "last.keras").is_file():
        return False
    state = read_card(run / "last.keras")["training_state"]
    return state["epochs_done"] >= json.loads((run / "config.json").read_text())["config"]["epochs"]


def ensure_trained(recipe: str, run: Path, data: Path, epochs: int | None) -> None:
    from emolens.train import resume, train
    from emolens.train.recipes import recipe_config

    if (run / "last.keras").is_file():
        if not finished(run):
            print(f"[{recipe}] resuming {run}", file=sys.stderr, flush=True)
            resume(run, data=data)
        return
    print(f"[{recipe}] training into {run}", file=sys.stderr, flush=True)
    train(data, recipe_config(recipe, epochs=epochs), out=run)


def leaked_test_files(data: Path) -> dict[str, set[str]]:
    """Test images with a copy in train, from one `emolens data inspect --near` pass: "exact", those with a
    pixel-identical copy; "near", those with a pixel-identical, near-identical or mirrored one."""
    from emolens.data import load_dataset
    from emolens.data.inspection import inspect_dataset

    report = inspect_dataset(load_dataset(data), near=True)

    def test_members(groups: list) -> set[str]:
        return {m.name for g in groups if {"train", "test"} <= set(g.splits) for m in g.members if m.split == "test"}

    return {"exact": test_members(report.exact), "near": test_members(report.duplicate_sets())}


def accuracy_without(evaluation: Path, left_out: set[str]) -> float:
    with open(evaluation / "predictions.csv", newline="") as file:
        rows = [row for row in csv.DictReader(file) if row["file"] not in left_out]
    return sum(row["true"] == row["predicted"] for row in rows) / len(rows)


def unleaked_accuracies(folder: Path, leaked: dict[str, set[str]]) -> dict[str, tuple[float, float]]:
    """Per kind of leak, accuracy without those test images: (no TTA, flip TTA), from the two evaluations in folder."""
    return {kind: (accuracy_without(folder / "evaluation-none", files), accuracy_without(folder / "evaluation-flip", files)) for kind, files in leaked.items()}


def row(label: str, recipe: str, parameters: str, minutes: str, none: dict, flip: dict, unleaked: dict[str, tuple[float, float]]) -> str:
    recall = ", ".join(f"{name} {100 * values['recall']:.0f}" for name, values in flip["per_class"].items())
    return (
        f"| {label} | {recipe} | {parameters} | {minutes} | {100 * none['accuracy']:.1f}% / {none['macro_f1']:.3f} | "
        f"{100 * flip['accuracy']:.1f}% / {flip['macro_f1']:.3f} | "
        + " | ".join(f"{100 * unleaked[kind][0]:.1f}% / {100 * unleaked[kind][1]:.1f}%" for kind in ("exact", "near"))
        + f" | {recall} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "fer2013.zip")
    parser.add_argument("--recipes", default="seed,cpu", help="comma-separated recipe names (default seed,cpu)")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "accuracy")
    parser.add_argument("--epochs", type=int, help="override every recipe's epochs (quick checks only; the table says so)")
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import emolens.backend  # noqa: F401  (Keras, without TensorFlow's start-up chatter)
    from emolens.evaluate import evaluate
    from emolens.models.saving import load_model

    recipes = [name.strip() for name in args.recipes.split(",") if name.strip()]
    leaked = leaked_test_files(args.data)
    lines = [
        f"Test: the test/ split of {args.data.name} (for the shared FER2013 zip: PublicTest, 3,589 images), read once per model; "
        f"checkpoints chosen on a 10% validation slice of train; accuracy / macro-F1."
        + (f" Every recipe cut to {args.epochs} epochs (a quick check, not the recipes' figures)." if args.epochs else ""),
        "",
        f"The unleaked columns leave out the test images that have a copy in train, no TTA / flip TTA: the "
        f"{len(leaked['exact'])} with a pixel-identical copy (`emolens data inspect`), and the {len(leaked['near'])} with a "
        "pixel-identical, near-identical or mirrored one (`emolens data inspect --near`).",
        "",
        f"| model | recipe | parameters | training time | test, no TTA | test, flip TTA | without {len(leaked['exact'])} exact copies | "
        f"without {len(leaked['near'])} exact or near copies | recall per class, flip TTA (%) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    runs = []
    for recipe in recipes:
        run = args.runs / recipe
        ensure_trained(recipe, run, args.data, args.epochs)
        none = evaluate(run, args.data, out=run / "evaluation-none")
        flip = evaluate(run, args.data, out=run / "evaluation-flip", tta="flip")
        model, card = load_model(run / "model.keras", compile=False)
        epochs = json.loads((run / "config.json").read_text())["config"]["epochs"]
        label = f"{card['model']} ({epochs} epochs, best {card['epoch']})"
        lines.append(row(label, recipe, f"{model.count_params() / 1e6:.2f} M", f"{training_minutes(run):.0f} min", none, flip, unleaked_accuracies(run, leaked)))
        runs.append(run)
    if len(runs) > 1:
        ensemble = args.runs / "ensemble"
        none = evaluate(runs, args.data, out=ensemble / "evaluation-none")
        flip = evaluate(runs, args.data, out=ensemble / "evaluation-flip", tta="flip")
        lines.append(row("ensemble of the above", "+".join(recipes), "", "", none, flip, unleaked_accuracies(ensemble, leaked)))
    if none.get("warnings"):
        lines += ["", *(f"Warning: {warning}" for warning in none["warnings"])]
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
