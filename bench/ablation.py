"""Which training choices matter on FER2013: short runs of the `cpu` recipe with one choice changed at a time.

Every variant trains the same number of epochs from the same seed (the schedule is scaled to the run, so a short
run still warms up and decays), and is scored on the validation slice only: the test split is for the recipes'
own figures (bench/accuracy.py). Each variant's run lives in RUNS/<variant>; a finished one is reused, an
unfinished one resumed, so the table can be built over several sittings.

Usage: python bench/ablation.py [--data ../shared/data/fer2013.zip] [--epochs 12] [--runs runs/ablation]
       [--variants baseline,resnet,...] [--limit N (images per class, for a smoke test)]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path
from typing import Any

from emolens.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]

# One change from the cpu recipe each, as TrainConfig overrides (augment merged key by key).
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "resnet": {"model": "resnet", "precision": "bf16"},
    "no crops (48 px)": {"crop": 48},
    "no label smoothing": {"label_smoothing": 0.0},
    "no class weights": {"class_weight": "none"},
    "mixup 0.2": {"mixup": 0.2},
    "random erasing 0.5": {"augment": {"erasing": 0.5}},
    "SGD-Nesterov 0.05": {"optimizer": "sgd", "learning_rate": 0.05, "momentum": 0.9},
}


def best_validation(run: Path) -> tuple[float, int, float]:
    """(best validation accuracy, its epoch, minutes of training) from the run's history."""
    with open(RunDir(run).history, newline="") as file:
        rows = list(csv.DictReader(file))
    best = max(rows, key=lambda row: float(row["val_accuracy"]))
    return float(best["val_accuracy"]), int(best["epoch"]), sum(float(row["seconds"]) for row in rows) / 60


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "fer2013.zip")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "ablation")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated variant names (default: all)")
    parser.add_argument("--limit", type=int, help="at most this many images per class (smoke tests only)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import emolens.backend  # noqa: F401  (Keras, without TensorFlow's start-up chatter)
    from emolens.train import RunRecord, RunState, resume, train
    from emolens.train.recipes import recipe_config

    names = [name.strip() for name in args.variants.split(",") if name.strip()]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        print(f"error: unknown variants {', '.join(unknown)}; known: {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    warmup = min(args.epochs - 1, max(1, round(args.epochs * 3 / 50)))  # the recipe's 3 of 50 epochs
    rows = []
    for name in names:
        run = args.runs / name.replace(" ", "_").replace("(", "").replace(")", "")
        files = RunDir(run)
        if files.checkpoint.is_file():
            if RunState.read(files.checkpoint).epochs_done < args.epochs:
                print(f"[{name}] resuming {run}", file=sys.stderr, flush=True)
                resume(run, data=args.data, verbose=0)
        else:
            print(f"[{name}] training into {run}", file=sys.stderr, flush=True)
            config = recipe_config("cpu", epochs=args.epochs, warmup_epochs=warmup, limit=args.limit, **VARIANTS[name])
            train(args.data, config, out=run, verbose=0)
        accuracy, epoch, minutes = best_validation(run)
        settings = RunRecord.read(files).config
        rows.append(
            f"| {name} | {settings.model}, crop {settings.crop} | {100 * accuracy:.1f}% (epoch {epoch}) | {minutes:.0f} min |"
        )
    limit = f", at most {args.limit} images per class" if args.limit else ""
    print(
        f"The cpu recipe with one change each, {args.epochs} epochs ({warmup} warm-up), seed 0{limit}; best validation accuracy:\n"
    )
    print("| variant | model | validation accuracy | training time |")
    print("| --- | --- | ---: | ---: |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
