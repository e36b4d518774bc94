"""Does mixed bfloat16 (`--precision bf16`) train faster here, and is it as accurate?

Speed: images per second of emolens's own training step (augmentation + model + Adam), float32 against
mixed_bfloat16, for each model, on FER2013 training images, each configuration in a process of its own (the
first configuration built in a process once ran at a different speed), alternating them (--rounds, twice by
default): each one's best rate, and its CPU time per image (all threads, the median round). On this shared
2-core host the wall-clock rate of one configuration switches between levels (372 or 650 images/s for the
same mini_resnet step, minutes apart) while its CPU time per image stays within 2-3%, so the ratios are of
CPU time. With --jit auto,off also with XLA off (Keras compiles the step with XLA when every layer allows it;
off runs TensorFlow's own kernels, oneDNN's bfloat16 ones among them). Each row twice (--batch-norm picks):
BatchNormalization as training runs it (`emolens.backend.fuse_batch_norm`, TensorFlow's fused kernel) and
as Keras runs it, the code before issue 30's fix.
Profile (with --profile): TensorFlow's profiler over the same steps, one process per precision, and the time
per step of each kind of operation (self time, summed over the step's ops of that kind), side by side.
Accuracy (with --epochs): two short runs of the same recipe and seed, one per precision, on a per-class
subset of FER2013, compared on validation accuracy.

Usage: python bench/precision.py [--models seed,mini_resnet] [--steps 60] [--jit auto] [--batch-norm fused,keras]
       [--rounds 2] [--profile] [--epochs 0] [--limit 800]
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

import emolens.backend  # Keras, quietly
from emolens.data import load_dataset
from emolens.data.preprocess import to_model_input
from emolens.train.config import TrainConfig
from emolens.train.trainer import build_trainer

ROOT = Path(__file__).resolve().parents[1]
BATCH = 64
# model, precision, jit (auto: Keras's choice, off, or profile), batch_norm (fused: emolens's, keras: Keras's own)
Configuration = tuple[str, str, str, str]


def rate(model: str, precision: str, jit: str, x: np.ndarray, y: np.ndarray, steps: int) -> dict[str, float | bool]:
    """Training images a second, CPU milliseconds an image (every thread's), and whether XLA compiled the step."""
    trainer = build_trainer(TrainConfig(model=model, precision=precision), num_classes=7, steps_per_epoch=steps)
    if jit == "off":
        trainer.jit_compile = False
    trainer.fit(x[: 5 * BATCH], y[: 5 * BATCH], batch_size=BATCH, verbose=0)  # compiles the step
    start, cpu_start = time.perf_counter(), time.process_time()
    trainer.fit(x[: steps * BATCH], y[: steps * BATCH], batch_size=BATCH, verbose=0)
    return {
        "rate": steps * BATCH / (time.perf_counter() - start),
        "cpu_ms": 1e3 * (time.process_time() - cpu_start) / (steps * BATCH),
        "xla": bool(trainer.jit_compile),
    }


def rate_in_a_process(data: Path, configuration: Configuration, steps: int) -> dict[str, float | bool]:
    done = subprocess.run(
        [sys.executable, __file__, "--data", str(data), "--one", ":".join(configuration), "--steps", str(steps)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(configuration)} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


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
                    f"{model}:{precision}:profile:fused",
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


def print_rates(
    data: Path, models: list[str], jits: list[str], batch_norms: list[str], steps: int, rounds: int
) -> None:
    print(
        f"Training step, batch {BATCH}, {steps} steps, {rounds} alternating rounds, a process each; "
        f"{keras.backend.backend()}. images/s: the best round; CPU ms/img: every thread's CPU time, the median "
        "round (steady where the wall clock is not); the ratios are of CPU time; the last against float32 with "
        "Keras's own BatchNormalization\n"
    )
    print(
        "| model | XLA | BatchNorm | float32 images/s | bf16 images/s | float32 CPU ms/img | bf16 CPU ms/img "
        "| bf16 / float32 | bf16 / float32 Keras BN |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for model in models:
        configurations = [
            (model, precision, jit, norm) for jit in jits for norm in batch_norms for precision in ("float32", "bf16")
        ]
        runs: dict[Configuration, list[dict[str, float | bool]]] = {
            configuration: [] for configuration in configurations
        }
        for _ in range(rounds):
            for configuration in configurations:
                runs[configuration].append(rate_in_a_process(data, configuration, steps))
        best = {c: max(float(r["rate"]) for r in rs) for c, rs in runs.items()}
        cpu = {c: float(np.median([float(r["cpu_ms"]) for r in rs])) for c, rs in runs.items()}
        for jit in jits:
            baseline = cpu.get((model, "float32", jit, "keras"))
            for norm in batch_norms:
                fp32, bf16 = (model, "float32", jit, norm), (model, "bf16", jit, norm)
                xla = "/".join("on" if runs[c][0]["xla"] else "off" for c in (fp32, bf16))
                against = f"{baseline / cpu[bf16]:.2f}x" if baseline else "-"
                print(
                    f"| {model} | {jit} ({xla}) | {norm} | {best[fp32]:.0f} | {best[bf16]:.0f} | {cpu[fp32]:.2f} "
                    f"| {cpu[bf16]:.2f} | {cpu[fp32] / cpu[bf16]:.2f}x | {against} |",
                    flush=True,
                )


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
    parser.add_argument(
        "--batch-norm",
        default="fused,keras",
        help="comma-separated: fused (emolens.backend.fuse_batch_norm, what training runs) and/or keras (Keras's own)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; each configuration's best counts")
    parser.add_argument("--profile", action="store_true", help="profile each model's step in both precisions instead")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a Configuration, measured in this process
    parser.add_argument(
        "--epochs", type=int, default=0, help="also train each precision this long and compare validation accuracy"
    )
    parser.add_argument("--limit", type=int, default=800, help="images per class for the accuracy runs")
    args = parser.parse_args()
    if args.one:
        model, precision, jit, batch_norm = args.one.split(":")
        if batch_norm == "keras":
            emolens.backend.fuse_batch_norm = lambda model: 0  # build_trainer keeps Keras's own layer
        arrays = training_arrays(args.data, args.steps)
        if jit == "profile":
            print(json.dumps(op_times(model, precision, *arrays, args.steps)))
            return 0
        print(json.dumps(rate(model, precision, jit, *arrays, args.steps)))
        return 0
    if args.profile:
        print_profiles(args.data, args.models.split(","), args.steps)
        return 0
    if args.steps:
        print_rates(
            args.data, args.models.split(","), args.jit.split(","), args.batch_norm.split(","), args.steps, args.rounds
        )
    if args.epochs:
        print_accuracy(args.data, args.models.split(","), args.epochs, args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
