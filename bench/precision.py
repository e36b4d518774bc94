"""Does mixed bfloat16 (`--precision bf16`) train faster here, and is it as accurate?

Speed: images per second of emolens's own training step (augmentation + model + Adam), float32 against
mixed_bfloat16, for each model, on FER2013 training images, each configuration in a process of its own (the
first configuration built in a process once ran at a different speed), alternating them twice to even out
noise. With --jit auto,off also with XLA off (Keras compiles the step with XLA when every layer allows it;
off runs TensorFlow's own kernels, oneDNN's bfloat16 ones among them).
Profile (with --profile): TensorFlow's profiler over the same steps, one process per precision, and the time
per step of each kind of operation (self time, summed over the step's ops of that kind), side by side.
Accuracy (with --epochs): two short runs of the same recipe and seed, one per precision, on a per-class
subset of FER2013, compared on validation accuracy.

Usage: python bench/precision.py [--models seed,mini_resnet] [--steps 60] [--jit auto] [--profile] [--epochs 0] [--limit 800]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

import emolens.backend  # noqa: F401  (Keras, quietly)
from emolens.data import load_dataset
from emolens.data.preprocess import to_model_input
from emolens.train.config import TrainConfig
from emolens.train.trainer import build_trainer

ROOT = Path(__file__).resolve().parents[1]
BATCH = 64


def rate(model: str, precision: str, jit: str, x: np.ndarray, y: np.ndarray, steps: int) -> tuple[float, bool]:
    """Training images a second, and whether XLA compiled the step."""
    trainer = build_trainer(TrainConfig(model=model, precision=precision), num_classes=7, steps_per_epoch=steps)
    if jit == "off":
        trainer.jit_compile = False
    trainer.fit(x[: 5 * BATCH], y[: 5 * BATCH], batch_size=BATCH, verbose=0)  # compiles the step
    start = time.perf_counter()
    trainer.fit(x[: steps * BATCH], y[: steps * BATCH], batch_size=BATCH, verbose=0)
    return steps * BATCH / (time.perf_counter() - start), bool(trainer.jit_compile)


def rate_in_a_process(data: Path, model: str, precision: str, jit: str, steps: int) -> tuple[float, bool]:
    done = subprocess.run(
        [sys.executable, __file__, "--data", str(data), "--one", f"{model}:{precision}:{jit}", "--steps", str(steps)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"{model} {precision} jit={jit} failed: {done.stderr[-2000:]}")
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    return measured["rate"], measured["xla"]


def op_times(model: str, precision: str, x: np.ndarray, y: np.ndarray, steps: int) -> dict[str, float]:
    """Microseconds of self time per training step for each kind of TensorFlow operation."""
    import glob

    import tensorflow as tf
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as profiler_tools

    trainer = build_trainer(TrainConfig(model=model, precision=precision), num_classes=7, steps_per_epoch=steps)
    trainer.fit(x[: 5 * BATCH], y[: 5 * BATCH], batch_size=BATCH, verbose=0)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        trainer.fit(x[: steps * BATCH], y[: steps * BATCH], batch_size=BATCH, verbose=0)
        tf.profiler.experimental.stop()
        (trace,) = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
        table, ok = profiler_tools.xspace_to_tools_data([trace], "framework_op_stats", {})
    if not ok:
        raise SystemExit("TensorFlow's profiler gave no operation statistics")
    columns = [column["id"] for column in json.loads(table)[0]["cols"]]
    kind, self_time = columns.index("type"), columns.index("total_self_time")
    times: dict[str, float] = {}
    for row in json.loads(table)[0]["rows"]:
        cells = [cell.get("v") if cell else None for cell in row["c"]]
        if cells[kind] != "IDLE":  # the profiler's name for time no operation ran
            times[cells[kind]] = times.get(cells[kind], 0.0) + cells[self_time] / steps
    return times


def print_profiles(data: Path, models: list[str], steps: int) -> None:
    for model in models:
        times = {}
        for precision in ("float32", "bf16"):
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--data",
                    str(data),
                    "--one",
                    f"{model}:{precision}:profile",
                    "--steps",
                    str(steps),
                ],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise SystemExit(f"profiling {model} {precision} failed: {done.stderr[-2000:]}")
            times[precision] = json.loads(done.stdout.strip().splitlines()[-1])
        kinds = sorted(
            set(times["float32"]) | set(times["bf16"]),
            key=lambda k: -max(times["float32"].get(k, 0), times["bf16"].get(k, 0)),
        )
        print(
            f"\n{model}: self time per step of {BATCH}, ms, by kind of operation (TensorFlow's profiler, {steps} steps):\n"
        )
        print("| operation | float32 | mixed bfloat16 | bf16 / float32 |")
        print("| --- | ---: | ---: | ---: |")
        for kind in kinds[:14]:
            fp32, bf16 = times["float32"].get(kind, 0) / 1000, times["bf16"].get(kind, 0) / 1000
            print(f"| {kind} | {fp32:.1f} | {bf16:.1f} | {bf16 / fp32 if fp32 else float('inf'):.2f}x |")
        fp32, bf16 = sum(times["float32"].values()) / 1000, sum(times["bf16"].values()) / 1000
        print(f"| all operations | {fp32:.1f} | {bf16:.1f} | {bf16 / fp32:.2f}x |", flush=True)


def training_arrays(data: Path, steps: int) -> tuple[np.ndarray, np.ndarray]:
    train = load_dataset(data).split("train")
    x = to_model_input(train.images[: steps * BATCH])
    return x, keras.utils.to_categorical(train.labels[: steps * BATCH], 7).astype("float32")


def print_rates(data: Path, models: list[str], jits: list[str], steps: int) -> None:
    configurations = [(precision, jit) for jit in jits for precision in ("float32", "bf16")]
    print(
        f"Training images/s, batch {BATCH}, {steps} steps, best of 2 alternating rounds, a process each; {keras.backend.backend()}\n"
    )
    print("| model | XLA | float32 | mixed bfloat16 | bf16 / float32 |")
    print("| --- | --- | ---: | ---: | ---: |")
    for model in models:
        rates: dict[tuple[str, str], list[float]] = {configuration: [] for configuration in configurations}
        compiled: dict[tuple[str, str], bool] = {}
        for _ in range(2):
            for precision, jit in configurations:
                measured, compiled[precision, jit] = rate_in_a_process(data, model, precision, jit, steps)
                rates[precision, jit].append(measured)
        for jit in jits:
            fp32, bf16 = max(rates["float32", jit]), max(rates["bf16", jit])
            xla = "/".join("on" if compiled[precision, jit] else "off" for precision in ("float32", "bf16"))
            print(f"| {model} | {jit} ({xla}) | {fp32:.0f} | {bf16:.0f} | {bf16 / fp32:.2f}x |", flush=True)


def print_accuracy(data: Path, models: list[str], epochs: int, limit: int) -> None:
    from emolens.train import train as train_run

    print(f"\nValidation accuracy after {epochs} epochs, {limit} images per class, seed 0:\n")
    print("| model | float32 | mixed bfloat16 |")
    print("| --- | ---: | ---: |")
    for model in models:
        accuracy = {}
        for precision in ("float32", "bf16"):
            with tempfile.TemporaryDirectory() as tmp:
                config = TrainConfig(model=model, epochs=epochs, limit=limit, precision=precision)
                accuracy[precision] = train_run(data, config, out=Path(tmp) / "run", verbose=0).best_val_accuracy
        print(f"| {model} | {100 * accuracy['float32']:.1f}% | {100 * accuracy['bf16']:.1f}% |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "fer2013.zip")
    parser.add_argument("--models", default="seed,mini_resnet")
    parser.add_argument("--steps", type=int, default=60, help="timed batches of 64 per measurement (0: no speed rows)")
    parser.add_argument("--jit", default="auto", help="comma-separated: auto (Keras's choice) and/or off (XLA off)")
    parser.add_argument("--profile", action="store_true", help="profile each model's step in both precisions instead")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # model:precision:jit, measured in this process
    parser.add_argument(
        "--epochs", type=int, default=0, help="also train each precision this long and compare validation accuracy"
    )
    parser.add_argument("--limit", type=int, default=800, help="images per class for the accuracy runs")
    args = parser.parse_args()
    if args.one:
        model, precision, jit = args.one.split(":")
        arrays = training_arrays(args.data, args.steps)
        if jit == "profile":
            print(json.dumps(op_times(model, precision, *arrays, args.steps)))
            return 0
        measured, xla = rate(model, precision, jit, *arrays, args.steps)
        print(json.dumps({"rate": measured, "xla": xla}))
        return 0
    if args.profile:
        print_profiles(args.data, args.models.split(","), args.steps)
        return 0
    if args.steps:
        print_rates(args.data, args.models.split(","), args.jit.split(","), args.steps)
    if args.epochs:
        print_accuracy(args.data, args.models.split(","), args.epochs, args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
