"""Training throughput of the seed model: emolens's pipeline against the notebook's, on FER2013-sized data.

Both pipelines train the same architecture with the same augmentation (rotation 10, shifts 0.1, horizontal
flip), batch 64, Adam 1e-4 with per-step decay 1e-6:
  - emolens: decoded uint8 arrays (cached) -> to_model_input -> Keras 3 preprocessing layers -> model, in fit;
  - notebook: tf_keras ImageDataGenerator(rescale=1/255, ...).flow_from_directory over the JPEG folders.
emolens is timed as a user gets it by default (`--precision auto`, which trains seed in mixed bfloat16 on a CPU
with bfloat16 hardware) and in float32. It also measures float32 and bfloat16 matrix-multiply peaks on this
machine in the same run (each precision's share is of its own peak), and splits emolens's default step time
into augmentation, forward and backward+update, to say where the time goes. Last, the `cpu` recipe's step
(mini_resnet) against the same step as it was before issue 30, built in the same run: images/s and CPU time
per image, which this shared host keeps steadier than the wall clock.

Needs the bench extra: `pip install --no-deps tf-keras` (installs beside tensorflow-cpu).
Usage: python bench/train_throughput.py [--data ../shared/data/fer2013.zip] [--steps 150]
       KERAS_BACKEND=torch python bench/train_throughput.py --emolens-only   (the notebook needs TensorFlow)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import zipfile
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from emolens import backend
from emolens.backend import thread_count
from emolens.data import load_dataset, to_model_input
from emolens.data.augment import AugmentConfig
from emolens.models import build_model
from emolens.train import trainer as trainer_module
from emolens.train.config import TrainConfig
from emolens.train.recipes import recipe_config
from emolens.train.trainer import build_trainer, resolve_precision

BATCH = 64
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fer2013.zip"
NOTEBOOK = "notebook (ImageDataGenerator.flow_from_directory, float32)"


def train_flops_per_image(model: keras.Model) -> float:
    """Multiply-adds x2 of one forward pass through `model`'s convolutions and dense layers, x3 for forward +
    backward (the usual estimate)."""
    forward = 0.0
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, filters = layer.output.shape
            rows, columns = layer.kernel_size
            forward += 2 * height * width * rows * columns * layer.input.shape[-1] * filters / layer.groups
        elif isinstance(layer, keras.layers.Dense):
            forward += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return 3.0 * forward


def matmul_peak_gflops(dtype: str, n: int = 4096, repeats: int = 5) -> float:
    a = keras.ops.convert_to_tensor(np.random.rand(n, n).astype("float32"), dtype=dtype)
    b = keras.ops.convert_to_tensor(np.random.rand(n, n).astype("float32"), dtype=dtype)
    keras.ops.convert_to_numpy(keras.ops.matmul(a, b))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        keras.ops.convert_to_numpy(keras.ops.matmul(a, b))
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def time_fit(model, x, y, steps: int, cpu_ms: dict[str, float] | None = None, name: str = "") -> float:
    """Images per second of model.fit over `steps` batches, after a warm-up that compiles the step; with
    `cpu_ms`, also stores its CPU milliseconds per image (every thread's) under `name`."""
    model.fit(x[: 10 * BATCH], y[: 10 * BATCH], batch_size=BATCH, epochs=1, verbose=0)
    start, cpu_start = time.perf_counter(), time.process_time()
    model.fit(x[: steps * BATCH], y[: steps * BATCH], batch_size=BATCH, epochs=1, verbose=0, shuffle=True)
    if cpu_ms is not None:
        cpu_ms[name] = 1e3 * (time.process_time() - cpu_start) / (steps * BATCH)
    return steps * BATCH / (time.perf_counter() - start)


def four_layer_augmenter(config: AugmentConfig, *, seed: int = 0, crop_shift: float = 0.0) -> keras.Sequential:
    """The augmentation before issue 30, for comparison in the same run: one Keras layer (and one resampling of
    the batch) per transform, the random crop's shift a fifth."""
    from keras import layers

    stages = [layers.RandomFlip("horizontal", seed=seed)] if config.flip else []
    stages += (
        [layers.RandomRotation(config.rotation / 360.0, fill_mode="nearest", seed=seed + 1)] if config.rotation else []
    )
    stages += (
        [layers.RandomTranslation(config.shift, config.shift, fill_mode="nearest", seed=seed + 2)]
        if config.shift
        else []
    )
    stages += [layers.RandomZoom(config.zoom, fill_mode="nearest", seed=seed + 3)] if config.zoom else []
    stages += (
        [layers.RandomTranslation(crop_shift, crop_shift, fill_mode="nearest", seed=seed + 5)] if crop_shift else []
    )
    return keras.Sequential(stages, name="augment")


def with_four_layer_augmenter(build, *, keras_batch_norm: bool = False):
    """`build()` with the trainer's augmenter swapped for `four_layer_augmenter`, and with `keras_batch_norm`
    Keras's own BatchNormalization kept (no `emolens.backend.fuse_batch_norm`): the training step before issue 30."""
    original, fuse = trainer_module.build_augmenter, backend.fuse_batch_norm
    trainer_module.build_augmenter = four_layer_augmenter
    if keras_batch_norm:
        backend.fuse_batch_norm = lambda model: 0
    try:
        return build()
    finally:
        trainer_module.build_augmenter, backend.fuse_batch_norm = original, fuse


def augmenter_ms_per_image(x: np.ndarray, repeats: int = 200) -> dict[str, float]:
    """Milliseconds per image of the augmentation alone (a batch of 64, in a tf.function as fit runs it), built
    as the trainer builds it (under its dtype policy) the old way and the new, for the default settings and
    for the cpu recipe's (zoom and a 44-pixel crop's shift too): a short op repeated, steadier than the
    difference of two whole training steps on a busy machine."""
    import tensorflow as tf

    from emolens.data.augment import build_augmenter
    from emolens.train.optim import resolve_precision

    batch = x[:BATCH]
    settings = {"default": (TrainConfig(), 0.0), "cpu recipe": (recipe_config("cpu"), (48 - 44) / 2 / 48)}
    times = {}
    for name, (config, crop_shift) in settings.items():
        keras.mixed_precision.set_dtype_policy("mixed_bfloat16" if resolve_precision(config) == "bf16" else "float32")
        try:
            built = {
                "four layers": four_layer_augmenter(config.augment, crop_shift=crop_shift),
                "one warp": build_augmenter(config.augment, crop_shift=crop_shift),
            }
        finally:
            keras.mixed_precision.set_dtype_policy("float32")
        for kind, augmenter in built.items():
            step = tf.function(lambda images, augmenter=augmenter: augmenter(images, training=True))
            for _ in range(10):
                step(batch)
            start = time.perf_counter()
            for _ in range(repeats):
                step(batch)
            times[f"{name}, {kind}"] = (time.perf_counter() - start) / repeats / BATCH * 1e3
    return times


def emolens_rates(images: np.ndarray, labels: np.ndarray, steps: int) -> tuple[dict[str, float], dict[str, float]]:
    """Images/s of emolens's training step at the default precision and in float32, and of the default step's
    parts (without augmentation; the forward pass alone); the default step with the augmentation as it was
    before (four Keras layers); the `cpu` recipe's step, and that step as it was before issue 30 (four layers,
    Keras's own BatchNormalization, float32: what auto chose for mini_resnet then). Also the CPU milliseconds
    per image of the cpu recipe's two rows, which this host keeps steadier than their wall-clock rates."""
    x = to_model_input(images)
    y = keras.utils.to_categorical(labels, 7).astype("float32")
    default, cpu = TrainConfig(), recipe_config("cpu")
    cpu_ms: dict[str, float] = {}
    rates = {"default": time_fit(build_trainer(default, num_classes=7), x, y, steps)}
    rates["default, four-layer augmentation"] = time_fit(
        with_four_layer_augmenter(lambda: build_trainer(default, num_classes=7)), x, y, steps
    )
    rates["cpu recipe"] = time_fit(build_trainer(cpu, num_classes=7), x, y, steps, cpu_ms, "cpu recipe")
    cpu_before = replace(cpu, precision="float32")
    rates["cpu recipe before issue 30"] = time_fit(
        with_four_layer_augmenter(lambda: build_trainer(cpu_before, num_classes=7), keras_batch_norm=True),
        x,
        y,
        steps,
        cpu_ms,
        "cpu recipe before issue 30",
    )
    rates["float32"] = time_fit(build_trainer(TrainConfig(precision="float32"), num_classes=7), x, y, steps)
    no_augment = TrainConfig(augment=AugmentConfig(rotation=0, shift=0, flip=False))
    rates["no augmentation"] = time_fit(build_trainer(no_augment, num_classes=7), x, y, steps)
    classifier = build_trainer(default, num_classes=7).get_layer("seed")
    classifier.predict(x[: 10 * BATCH], batch_size=BATCH, verbose=0)
    start = time.perf_counter()
    classifier.predict(x[: steps * BATCH], batch_size=BATCH, verbose=0)
    rates["forward only"] = steps * BATCH / (time.perf_counter() - start)
    return rates, cpu_ms


def notebook_rate(train_dir: Path, steps: int) -> float:
    import tf_keras
    from tf_keras import layers
    from tf_keras.preprocessing.image import ImageDataGenerator

    generator = ImageDataGenerator(
        rescale=1 / 255, rotation_range=10, width_shift_range=0.1, height_shift_range=0.1, horizontal_flip=True
    )
    flow = generator.flow_from_directory(
        train_dir, target_size=(48, 48), color_mode="grayscale", batch_size=BATCH, class_mode="categorical"
    )
    model = tf_keras.Sequential(
        [
            layers.Conv2D(32, 3, activation="relu", input_shape=(48, 48, 1)),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
            layers.Conv2D(128, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(128, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(0.25),
            layers.Flatten(),
            layers.Dense(1024, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(7, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=tf_keras.optimizers.legacy.Adam(learning_rate=1e-4, decay=1e-6),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(flow, steps_per_epoch=10, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(flow, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * BATCH / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="FER2013 zip (default ../shared/data/fer2013.zip)"
    )
    parser.add_argument("--steps", type=int, default=150, help="timed batches of 64 per pipeline (default 150)")
    parser.add_argument(
        "--emolens-only", action="store_true", help="skip the notebook pipeline, e.g. on the torch or JAX backend"
    )
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"error: no FER2013 zip at {args.data}; pass --data", file=sys.stderr)
        return 2
    train = load_dataset(args.data).split("train")
    order = np.random.default_rng(0).permutation(len(train))[: (args.steps + 10) * BATCH]
    pipelines = {}
    if not args.emolens_only:
        with tempfile.TemporaryDirectory() as folder:
            # The notebook reads JPEG folders: unpack the training images once, outside the timed part.
            with zipfile.ZipFile(args.data) as archive:
                members = [m for m in archive.namelist() if "/train/" in m and m.endswith(".jpg")]
                archive.extractall(folder, members)
            train_dir = next(Path(folder).rglob("train"))
            pipelines[NOTEBOOK] = (notebook_rate(train_dir, args.steps), "float32")
    rates, cpu_ms = emolens_rates(train.images[order], train.labels[order], args.steps)
    default_precision = resolve_precision(TrainConfig())
    peaks = {"float32": matmul_peak_gflops("float32"), "bf16": matmul_peak_gflops("bfloat16")}
    flops = train_flops_per_image(build_model("seed", input_shape=(48, 48, 1), num_classes=7))
    pipelines[f"emolens, default precision (auto: {default_precision})"] = (rates["default"], default_precision)
    pipelines["emolens, float32"] = (rates["float32"], "float32")

    print(
        f"\nseed model, batch {BATCH}, {args.steps} timed steps, "
        f"Keras {keras.__version__} on {keras.backend.backend()}, {thread_count()} threads"
    )
    print(
        f"matrix-multiply peaks (4096^3): float32 {peaks['float32']:.0f} GFLOP/s, bfloat16 {peaks['bf16']:.0f} GFLOP/s; "
        f"seed training step: {flops / 1e6:.0f} MFLOP per image\n"
    )
    print("| pipeline | images/s | GFLOP/s | % of its precision's matmul peak |")
    print("| --- | ---: | ---: | ---: |")
    for name, (rate, precision) in pipelines.items():
        print(
            f"| {name} | {rate:.0f} | {rate * flops / 1e9:.0f} | {100 * rate * flops / 1e9 / peaks[precision]:.0f}% |"
        )
    if not args.emolens_only:
        notebook = pipelines[NOTEBOOK][0]
        # The most any pipeline could reach here: the whole step at its precision's matmul peak.
        ceiling = peaks[default_precision] * 1e9 / flops
        print(
            f"\nemolens default / notebook: {rates['default'] / notebook:.2f}x (target 4x); "
            f"float32 / notebook: {rates['float32'] / notebook:.2f}x; the default step at 100% of its matmul peak "
            f"would be {ceiling:.0f} images/s, {ceiling / notebook:.2f}x the notebook"
        )
    full, no_aug, forward = rates["default"], rates["no augmentation"], rates["forward only"]
    alone = augmenter_ms_per_image(to_model_input(train.images[order]))
    # Augmentation measured on its own: the difference of two whole-step rates is noise at these step counts.
    per_image = {
        "augmentation": alone["default, one warp"] / 1e3,
        "forward": 1 / forward,
        "backward + update": 1 / no_aug - 1 / forward,
    }
    total = 1 / full
    print(
        "where the default step's time goes: "
        + ", ".join(f"{k} {1e3 * v:.2f} ms/img ({100 * v / total:.0f}%)" for k, v in per_image.items())
    )
    before = rates["default, four-layer augmentation"]
    print(
        f"default step with the augmentation as four Keras layers (before): {before:.0f} images/s; one warp: {full / before:.2f}x the step"
    )
    cpu_config = recipe_config("cpu")
    cpu_flops = train_flops_per_image(
        build_model(cpu_config.model, input_shape=(cpu_config.crop, cpu_config.crop, 1), num_classes=7)
    )
    print(
        f"\ncpu recipe (mini_resnet, 44-pixel crops): {cpu_flops / 1e6:.0f} MFLOP per image\n\n"
        "| cpu recipe step | images/s | CPU ms/img | GFLOP/s | % of its precision's matmul peak |\n"
        "| --- | ---: | ---: | ---: | ---: |"
    )
    cpu_rows = {
        f"now ({resolve_precision(cpu_config)})": ("cpu recipe", resolve_precision(cpu_config)),
        "before issue 30 (four augmentation layers, Keras's BatchNormalization, float32)": (
            "cpu recipe before issue 30",
            "float32",
        ),
    }
    for name, (key, precision) in cpu_rows.items():
        gflops = rates[key] * cpu_flops / 1e9
        print(
            f"| {name} | {rates[key]:.0f} | {cpu_ms[key]:.2f} | {gflops:.0f} | {100 * gflops / peaks[precision]:.0f}% |"
        )
    cpu, cpu_before = rates["cpu recipe"], rates["cpu recipe before issue 30"]
    print(
        f"now / before: {cpu / cpu_before:.2f}x the rate, "
        f"{cpu_ms['cpu recipe before issue 30'] / cpu_ms['cpu recipe']:.2f}x less CPU time (target 1.6x)"
    )
    steps = {"default": 1e3 / full, "cpu recipe": 1e3 / cpu}
    print("\n| augmentation alone, batch 64 | ms/img | share of its step (ms/img) |\n| --- | ---: | ---: |")
    for name, ms in alone.items():
        step = steps[name.split(",")[0]]
        print(f"| {name} | {ms:.3f} | {100 * ms / step:.0f}% of {step:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
