"""Does a distilled student fit its teacher, or only fail to generalise? Train against validation faces.

For each run trained with `--teacher`, on the faces it trained on and on the faces it held out for validation
(never test/): the student's and the teacher's accuracy against the FER+ majority (clear majorities only), how
often the student's top class is the teacher's, and the KL divergence from the teacher's answer to the
student's. A student that agrees with its teacher about as little on its own training faces as on new ones is
not overfitting: it cannot represent the teacher (its size) or has not yet learned it (its schedule), and more
data or augmentation will not help; a student close to its teacher on training faces only is the other case.

The teacher's answers on the training faces are the run's own (`teacher_answers.npy`, as the student learned
them); where the run has none, and on validation faces, they are asked of the teacher with the run's
`--teacher-tta` and kept in `--cache`, so a second student of the same teacher reuses them.

Usage: python bench/distill_fit.py RUN [RUN...] [--data ../shared/data/fer2013.zip]
       [--labels ../shared/data/fer2013-ferplus.csv] [--tta flip] [--cache ~/.cache/emolens/distill_fit]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from emolens.data.dataset import Split
    from emolens.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def fit_row(student: np.ndarray, teacher: np.ndarray, votes: np.ndarray) -> str:
    from emolens.data.labels import clear_majority

    clear, majority = clear_majority(votes), votes.argmax(axis=1)
    said, taught = student.argmax(axis=1), teacher.argmax(axis=1)
    kl = (teacher * (np.log(np.maximum(teacher, 1e-12)) - np.log(np.maximum(student, 1e-12)))).sum(axis=1)
    return (
        f"{clear.sum()} | {100 * (said[clear] == majority[clear]).mean():.1f}% | "
        f"{100 * (taught[clear] == majority[clear]).mean():.1f}% | {100 * (said == taught).mean():.1f}% | "
        f"{kl.mean():.3f} |"
    )


def teacher_answers(
    config: TrainConfig, split: Split, class_names: list[str], kept: Path | None, cache: Path
) -> np.ndarray:
    """The teacher's answers for `split`'s faces: from `kept` (the run's own, as the student learned them) where
    it exists, else from `cache`, else asked of the teacher and cached (a `--teacher-sees views` run keeps none)."""
    from emolens._io import atomic_path
    from emolens.train.data import teacher_probabilities

    if kept is not None and kept.is_file():
        return np.load(kept)
    digest = hashlib.sha256(f"{config.teacher}|{config.teacher_tta}|{split.names}".encode()).hexdigest()[:16]
    cached = cache / f"{digest}.npy"
    if cached.is_file():
        return np.load(cached)
    answers = teacher_probabilities(config.teacher, split.images, class_names, tta=config.teacher_tta)
    cache.mkdir(parents=True, exist_ok=True)
    with atomic_path(cached) as temporary, temporary.open("wb") as file:
        np.save(file, answers)
    return answers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders trained with --labels and --teacher")
    parser.add_argument("--data", type=Path, default=SHARED / "fer2013.zip")
    parser.add_argument("--labels", type=Path, default=SHARED / "fer2013-ferplus.csv")
    parser.add_argument("--tta", default="flip", help="the student's test-time augmentation")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "emolens" / "distill_fit")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from emolens.data.cache import load_dataset
    from emolens.models.classifier import load_classifiers
    from emolens.train.data import prepare_splits
    from emolens.train.record import RunRecord

    print(f"Student ({args.tta} TTA) against its teacher: faces with a clear FER+ majority, accuracy against it\n")
    print("| run | faces | clear faces | student | teacher | same top class | KL(teacher, student) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for run in args.runs:
        config = RunRecord.read(run).config
        if not config.teacher:
            print(f"| {run.name} | (not distilled: skipped) | | | | | |")
            continue
        student = load_classifiers([run / "model.keras"])
        dataset = load_dataset(args.data, labels=args.labels).with_classes(tuple(student.class_names))
        train, val, _ = prepare_splits(dataset, config)
        for name, split in (("train", train), ("validation", val)):
            kept = run / "teacher_answers.npy" if name == "train" else None
            teacher = teacher_answers(config, split, student.class_names, kept, args.cache)
            said = student.predict(split.images, tta=args.tta)
            print(f"| {run.name} | {name} | " + fit_row(said, teacher, split.votes), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
