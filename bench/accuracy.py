"""Trains and evaluates emolens's recipes on FER2013, under one protocol, and writes the accuracy table.

Protocol: train on train; checkpoints chosen on a stratified 10% validation slice of train; test (the zip's
test/, FER2013 PublicTest, 3,589 images) read once per model and test-time augmentation: none, flip averaging, and
ten crops for models trained on crops; scored also without the test images that have a copy in train:
pixel-identical copies (`emolens data inspect`), and near-identical or mirrored ones too (`emolens data inspect
--near`).
Each recipe's run lives in RUNS/<recipe>; a finished run is evaluated as it is, an unfinished one is resumed
first (so a 2-hour recipe can be finished over several sittings), a missing one is trained. With two or more
runs, their ensemble (averaged probabilities) gets a row too.

With --labels (FER+'s votes, ../shared/data/fer2013-ferplus.csv), the table is how often people would agree:
each model's accuracy against the votes' majority (FER+'s protocol: faces whose top vote is unknown, not a face or
tied left out), the mean vote share of its answer, and its accuracy against FER2013's own labels on the same faces
and on all of test/, without and with flip TTA. The recipes train on the votes; --models adds trained models
(run folders, model files, `default`) to evaluate as they are.

Usage: python bench/accuracy.py [--data ../shared/data/fer2013.zip] [--recipes seed,cpu] [--runs runs/accuracy]
       [--epochs N (override, for a quick check)] [--out table.md]
       python bench/accuracy.py --labels ../shared/data/fer2013-ferplus.csv --recipes ferplus [--models default,RUN]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from emolens.rundir import RunDir
from emolens.train import RunRecord, RunState, TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def training_minutes(run: Path) -> float:
    with open(RunDir(run).history, newline="") as file:
        return sum(float(row["seconds"]) for row in csv.DictReader(file)) / 60


def run_config(run: Path) -> TrainConfig:
    """The settings the run saved."""
    return RunRecord.read(run).config


def finished(run: Path) -> bool:
    if not RunDir(run).checkpoint.is_file():
        return False
    return RunState.read(RunDir(run).checkpoint).epochs_done >= run_config(run).epochs


def ensure_trained(recipe: str, run: Path, data: Path, epochs: int | None, labels: Path | None = None) -> None:
    from emolens.train import resume, train
    from emolens.train.recipes import recipe_config

    if RunDir(run).checkpoint.is_file():
        if not finished(run):
            print(f"[{recipe}] resuming {run}", file=sys.stderr, flush=True)
            resume(run, data=data)
        return
    print(f"[{recipe}] training into {run}", file=sys.stderr, flush=True)
    train(data, recipe_config(recipe, epochs=epochs), out=run, labels=labels)


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
    with open(RunDir(evaluation).predictions, newline="") as file:
        rows = [row for row in csv.DictReader(file) if row["file"] not in left_out]
    return sum(row["true"] == row["predicted"] for row in rows) / len(rows)


def trained_on_crops(run: Path) -> bool:
    return run_config(run).crop < 48


def evaluations(models: Path | list[Path], folder: Path, data: Path, crops: bool) -> dict[str, dict]:
    """metrics.json of each test-time augmentation, by name; each evaluation's files go to folder/evaluation-<tta>."""
    from emolens.evaluate import evaluate

    ttas = ("none", "flip", "crops") if crops else ("none", "flip")
    return {tta: evaluate(models, data, out=folder / f"evaluation-{tta}", tta=tta).to_dict() for tta in ttas}


def unleaked_accuracies(folder: Path, ttas: list[str], leaked: dict[str, set[str]]) -> dict[str, list[float]]:
    """Per kind of leak, accuracy without those test images, one per test-time augmentation evaluated in folder."""
    return {
        kind: [accuracy_without(folder / f"evaluation-{tta}", files) for tta in ttas] for kind, files in leaked.items()
    }


def row(
    label: str, recipe: str, parameters: str, minutes: str, scores: dict[str, dict], unleaked: dict[str, list[float]]
) -> str:
    best = scores.get("crops", scores["flip"])
    recall = ", ".join(f"{name} {100 * values['recall']:.0f}" for name, values in best["per_class"].items())
    tested = " | ".join(
        f"{100 * scores[tta]['accuracy']:.1f}% / {scores[tta]['macro_f1']:.3f}" if tta in scores else ""
        for tta in ("none", "flip", "crops")
    )
    return (
        f"| {label} | {recipe} | {parameters} | {minutes} | {tested} | "
        + " | ".join(" / ".join(f"{100 * value:.1f}%" for value in unleaked[kind]) for kind in ("exact", "near"))
        + f" | {recall} |"
    )


def model_name(path: str) -> str:
    """A run folder's or model file's name; a run's model.keras is named after its run."""
    run = RunDir.holding(path)
    return run.path.name if run else Path(path).name


def learned_from(model: str) -> str:
    """What `model` learned from: its run's settings, or a model file's card (the recipe export copies into it,
    an ensemble's members)."""
    from emolens.models.classifier import load_classifier

    if RunDir(Path(model)).is_run():
        record = RunRecord.read(Path(model))
        config, labels = record.config, record.data.labels
    else:
        card = load_classifier(model).card
        if card.get("members"):
            return "ensemble of " + ", ".join(model_name(member["path"]) for member in card.get("members"))
        if not isinstance(card.get("recipe"), dict):
            return "(no record)"
        config, labels = TrainConfig.from_dict(card.get("recipe")), (card.get("data") or {}).get("labels")
    learned = "FER2013 labels"
    if labels:
        learned = config.target + (
            f" + {config.source_label_weight:g} FER2013 label" if config.source_label_weight else ""
        )
    if config.teacher:
        views = "" if config.teacher_tta == "flip" else f", {config.teacher_tta}"
        learned += f" + {config.teacher_weight:g} teacher ({model_name(config.teacher)}{views})"
    return learned + f", {config.model}, {config.epochs} epochs"


def agreement_row(model: str, folder: Path, data: Path, labels: Path) -> str:
    """One model's row of the FER+ table; its evaluations go to folder/evaluation-ferplus-<tta> and -fer2013-<tta>."""
    from emolens.evaluate import evaluate

    votes = {
        tta: evaluate(model, data, labels=labels, tta=tta, out=folder / f"evaluation-ferplus-{tta}").to_dict()
        for tta in ("none", "flip")
    }
    plain = {
        tta: evaluate(model, data, tta=tta, out=folder / f"evaluation-fer2013-{tta}").to_dict()
        for tta in ("none", "flip")
    }
    run = Path(model)
    minutes = f"{training_minutes(run):.0f} min" if RunDir(run).history.is_file() else ""
    learned = learned_from(model)

    def pair(values: dict[str, float | None]) -> str:
        return " / ".join(f"{100 * value:.1f}%" for value in values.values())

    def of_all_faces(metrics: dict) -> float:
        # A model without contempt cannot agree on a contempt majority: such faces count as wrong, not as absent.
        lacked = sum(n for reason, n in metrics["left_out"].items() if reason.endswith("a class the model lacks"))
        return metrics["accuracy"] * metrics["num_images"] / (metrics["num_images"] + lacked)

    recall = ", ".join(
        f"{name} {100 * v['recall']:.0f}" for name, v in votes["flip"]["per_class"].items() if v["support"]
    )
    lacked = sum(n for reason, n in votes["none"]["left_out"].items() if reason.endswith("a class the model lacks"))
    return (
        f"| {model} | {learned} | {minutes} | {pair({t: of_all_faces(m) for t, m in votes.items()})} | "
        f"{pair({t: m['agreement']['vote_share'] for t, m in votes.items()})} | "
        f"{pair({t: m['source_label']['accuracy'] for t, m in votes.items()})} | "
        f"{pair({t: m['accuracy'] for t, m in plain.items()})} | "
        f"{votes['none']['num_images'] + lacked} / {plain['none']['num_images']} | {recall} |"
    )


def agreement_table(args: argparse.Namespace, recipes: list[str]) -> list[str]:
    models = [str(args.runs / recipe) for recipe in recipes] + [
        m.strip() for m in (args.models or "").split(",") if m.strip()
    ]
    for recipe in recipes:
        ensure_trained(recipe, args.runs / recipe, args.data, args.epochs, args.labels)
    lines = [
        f"How often people would agree, on the test/ split of {args.data.name} (PublicTest): accuracy against the FER+ "
        "majority (faces whose top vote is unknown, not a face or tied left out; a contempt majority counts as wrong for "
        "a model without contempt; vote share and FER2013 label on the faces of its classes), "
        "the mean share of votes the answer got, and accuracy against FER2013's own labels on the same faces and on all "
        "of test/; each without / with flip TTA."
        + (f" Every recipe cut to {args.epochs} epochs (a quick check)." if args.epochs else ""),
        "",
        "| model | learned from | training time | FER+ majority | vote share | FER2013 label, same faces "
        "| FER2013 label, all of test/ | faces (FER+ / all) | recall per class vs majority, flip (%) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for model in models:
        folder = Path(model) if Path(model).is_dir() else args.runs / Path(model).stem
        lines.append(agreement_row(model, folder, args.data, args.labels))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "fer2013.zip")
    parser.add_argument("--recipes", default="seed,cpu", help="comma-separated recipe names (default seed,cpu)")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "accuracy")
    parser.add_argument(
        "--epochs", type=int, help="override every recipe's epochs (quick checks only; the table says so)"
    )
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    parser.add_argument(
        "--labels", type=Path, help="FER+'s votes: train the recipes on them and write the agreement table"
    )
    parser.add_argument(
        "--models",
        help="with --labels: trained models to add to the table (run folders, model files, default), comma-separated",
    )
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import emolens.backend  # noqa: F401  (Keras, without TensorFlow's start-up chatter)
    from emolens.models.saving import load_model

    recipes = [name.strip() for name in args.recipes.split(",") if name.strip()]
    if args.labels:
        return _print_table(agreement_table(args, recipes), args.out)
    leaked = leaked_test_files(args.data)
    lines = [
        f"Test: the test/ split of {args.data.name} (for the shared FER2013 zip: PublicTest, 3,589 images), read once per model "
        "and test-time augmentation (ten crops only for models trained on crops); checkpoints chosen on a 10% validation "
        "slice of train; accuracy / macro-F1."
        + (
            f" Every recipe cut to {args.epochs} epochs (a quick check, not the recipes' figures)."
            if args.epochs
            else ""
        ),
        "",
        f"The unleaked columns leave out the test images that have a copy in train (none / flip / ten crops): the "
        f"{len(leaked['exact'])} with a pixel-identical copy (`emolens data inspect`), and the {len(leaked['near'])} with a "
        "pixel-identical, near-identical or mirrored one (`emolens data inspect --near`).",
        "",
        "| model | recipe | parameters | training time | test, no TTA | test, flip TTA | test, ten crops | "
        f"without {len(leaked['exact'])} exact copies | "
        f"without {len(leaked['near'])} exact or near copies | recall per class, best TTA (%) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    runs = []
    for recipe in recipes:
        run = args.runs / recipe
        ensure_trained(recipe, run, args.data, args.epochs)
        scores = evaluations(run, run, args.data, crops=trained_on_crops(run))
        model, card = load_model(RunDir(run).model, compile=False)
        epochs = run_config(run).epochs
        label = f"{card['model']} ({epochs} epochs, best {card['epoch']})"
        lines.append(
            row(
                label,
                recipe,
                f"{model.count_params() / 1e6:.2f} M",
                f"{training_minutes(run):.0f} min",
                scores,
                unleaked_accuracies(run, list(scores), leaked),
            )
        )
        runs.append(run)
    crop_sizes = {run_config(run).crop for run in runs}
    if len(runs) > 1 and len(crop_sizes) == 1:  # members must share their input size (the views are cut once for all)
        ensemble = args.runs / "ensemble"
        scores = evaluations(runs, ensemble, args.data, crops=trained_on_crops(runs[0]))
        lines.append(
            row(
                "ensemble of the above",
                "+".join(recipes),
                "",
                "",
                scores,
                unleaked_accuracies(ensemble, list(scores), leaked),
            )
        )
    elif len(runs) > 1:
        lines += [
            "",
            f"No ensemble row: the recipes classify inputs of different sizes ({', '.join(map(str, sorted(crop_sizes)))} pixels).",
        ]
    if scores["none"].get("warnings"):
        lines += ["", *(f"Warning: {warning}" for warning in scores["none"]["warnings"])]
    return _print_table(lines, args.out)


def _print_table(lines: list[str], out: Path | None) -> int:
    table = "\n".join(lines)
    print(table)
    if out:
        out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
