"""The trade between agreeing with FER+'s crowd and with FER2013's own labels, on validation faces only.

A model trained on votes learns that annotators often call a subtle face neutral; FER2013's single labeller named
an expression for most of them. For each model (and their ensemble), on the faces its run held out for validation
(never test/), this prints accuracy against the votes' majority and against the FER2013 label, as neutral's
probability is scaled by a factor before the decision (1 is the model as it is; `emolens calibrate MODEL DATA
--class-scale neutral=F` stores a chosen factor in the model's card): the frontier a prior shift reaches, beside
what a different training target reaches.

A model that is not a run folder (a .keras or .onnx file, or `default`, the bundled model) is scored on the
validation faces its card's recipe held out, as `emolens calibrate` chooses them; the ensemble row needs run
folders.

Usage: python bench/frontier.py RUN|MODEL [RUN...] [--data ../shared/data/fer2013.zip]
       [--labels ../shared/data/fer2013-ferplus.csv] [--tta flip] [--scales 1,0.8,0.6,0.5,0.4]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def scores(
    probabilities: np.ndarray, majority: np.ndarray, source: np.ndarray, neutral: int, factor: float
) -> tuple[float, float]:
    from emolens.models.calibration import apply_class_scale

    scale = np.ones(probabilities.shape[1])
    scale[neutral] = factor
    predicted = apply_class_scale(probabilities, scale).argmax(axis=1)
    known = source >= 0
    return float((predicted == majority).mean()), float((predicted[known] == source[known]).mean())


def validation_predictions(
    models: list[str], args: argparse.Namespace
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Probabilities (averaged over `models`), FER+ majority, FER2013 label and class names on the validation
    faces with a clear majority: those the run folders' used_images.csv list, or one model file's card recipe."""
    from emolens.data.labels import clear_majority
    from emolens.evaluate import predict_split
    from emolens.models.classifier import load_classifier
    from emolens.rundir import RunDir
    from emolens.train.calibration import validation_split

    if all(RunDir(Path(model)).is_run() for model in models):
        predictions = predict_split(models, args.data, split="val", labels=args.labels, tta=args.tta)
        return predictions.probabilities, predictions.y_true, predictions.source_labels, predictions.class_names
    (model,) = models
    classifier = load_classifier(model)
    val = validation_split(classifier, args.data, cache=True, labels=args.labels)
    faces = val.subset(np.flatnonzero(clear_majority(val.votes)))
    probabilities = classifier.predict(faces.images, tta=args.tta)
    return probabilities, faces.labels, faces.source_labels, list(classifier.class_names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "runs",
        nargs="+",
        help="run folders trained with --labels (their used_images.csv gives the validation faces), or model files",
    )
    parser.add_argument("--data", type=Path, default=SHARED / "fer2013.zip")
    parser.add_argument("--labels", type=Path, default=SHARED / "fer2013-ferplus.csv")
    parser.add_argument("--tta", default="flip")
    parser.add_argument("--scales", default="1,0.8,0.6,0.5,0.4", help="factors for neutral's probability")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from emolens.rundir import RunDir

    factors = [float(f) for f in args.scales.split(",")]
    models = {Path(model).name: [model] for model in args.runs}
    if len(args.runs) > 1 and all(RunDir(Path(model)).is_run() for model in args.runs):
        models["ensemble"] = list(args.runs)
    print(
        f"Validation faces of each run (FER+ clear majority), {args.tta} TTA: FER+ majority / FER2013 label accuracy\n"
    )
    print("| model | " + " | ".join(f"neutral x {f:g}" for f in factors) + " |")
    print("| --- |" + " ---: |" * len(factors))
    for name, members in models.items():
        probabilities, majority, source, class_names = validation_predictions(members, args)
        neutral = class_names.index("neutral")
        cells = [scores(probabilities, majority, source, neutral, f) for f in factors]
        print(
            f"| {name} ({len(majority)} faces) | "
            + " | ".join(f"{100 * a:.1f}% / {100 * b:.1f}%" for a, b in cells)
            + " |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
