"""Does mixed bfloat16 (`--precision bf16`) train faster here, and is it as accurate?

Speed: images per second of emolens's own training step (augmentation + model + Adam), float32 against
mixed_bfloat16, for each model, on FER2013 training images, alternating the two twice to even out noise.
Accuracy (with --epochs): two short runs of the same recipe and seed, one per precision, on a per-class
subset of FER2013, compared on validation accuracy.

Usage: python bench/precision.py [--models seed,mini_resnet] [--steps 60] [--epochs 0] [--limit 800]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import emolens.backend  # noqa: E402,F401  (Keras, quietly)
import keras  # noqa: E402
import numpy as np  # noqa: E402

from emolens.data import load_dataset  # noqa: E402
from emolens.data.preprocess import to_model_input  # noqa: E402
from emolens.train.config import TrainConfig  # noqa: E402
from emolens.train.trainer import build_trainer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BATCH = 64


def rate(model: str, precision: str, x: np.ndarray, y: np.ndarray, steps: int) -> float:
    trainer = build_trainer(TrainConfig(model=model, precision=precision), num_classes=7, steps_per_epoch=steps)
    trainer.fit(x[: 5 * BATCH], y[: 5 * BATCH], batch_size=BATCH, verbose=0)  # compiles the step
    start = time.perf_counter()
    trainer.fit(x[: steps * BATCH], y[: steps * BATCH], batch_size=BATCH, verbose=0)
    return steps * BATCH / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "fer2013.zip")
    parser.add_argument("--models", default="seed,mini_resnet")
    parser.add_argument("--steps", type=int, default=60, help="timed batches of 64 per measurement")
    parser.add_argument("--epochs", type=int, default=0, help="also train each precision this long and compare validation accuracy")
    parser.add_argument("--limit", type=int, default=800, help="images per class for the accuracy runs")
    args = parser.parse_args()

    train = load_dataset(args.data).split("train")
    x = to_model_input(train.images[: args.steps * BATCH])
    y = keras.utils.to_categorical(train.labels[: args.steps * BATCH], 7).astype("float32")
    print(f"Training images/s, batch {BATCH}, {args.steps} steps, best of 2 alternating rounds; {keras.backend.backend()}\n")
    print("| model | float32 | mixed bfloat16 | bf16 / float32 |")
    print("| --- | ---: | ---: | ---: |")
    for model in args.models.split(","):
        rates = {"float32": [], "bf16": []}
        for _ in range(2):
            for precision in rates:
                rates[precision].append(rate(model, precision, x, y, args.steps))
        fp32, bf16 = max(rates["float32"]), max(rates["bf16"])
        print(f"| {model} | {fp32:.0f} | {bf16:.0f} | {bf16 / fp32:.2f}x |", flush=True)

    if args.epochs:
        from emolens.train import train as train_run

        print(f"\nValidation accuracy after {args.epochs} epochs, {args.limit} images per class, seed 0:\n")
        print("| model | float32 | mixed bfloat16 |")
        print("| --- | ---: | ---: |")
        for model in args.models.split(","):
            accuracy = {}
            for precision in ("float32", "bf16"):
                with tempfile.TemporaryDirectory() as tmp:
                    config = TrainConfig(model=model, epochs=args.epochs, limit=args.limit, precision=precision)
                    accuracy[precision] = train_run(args.data, config, out=Path(tmp) / "run", verbose=0).best_val_accuracy
            print(f"| {model} | {100 * accuracy['float32']:.1f}% | {100 * accuracy['bf16']:.1f}% |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
