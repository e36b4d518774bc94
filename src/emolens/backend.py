"""Everything that depends on which Keras backend runs (TensorFlow, torch or JAX): the one place that imports them.

Model, augmentation and training code use only keras, keras.ops and numpy; this module answers the questions
they cannot: which devices there are, how many threads, which versions, and how to take a gradient.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from emolens._native import native_stderr_silenced

# TensorFlow 2.21 writes its C++ start-up notices (oneDNN, CPU features) to fd 2 while it is imported, and
# TF_CPP_MIN_LOG_LEVEL no longer stops them; when that variable asks for quiet, the import is silenced.
if "keras" not in sys.modules and os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") not in ("", "0"):
    with native_stderr_silenced():
        import keras
else:
    import keras

if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") not in ("", "0") and keras.backend.backend() == "tensorflow":
    # Its Python logger too: "tf.function retracing" advice fires whenever models of several input shapes
    # predict in one process (evaluating runs one after another), which is expected here, not a user's bug.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def backend_name() -> str:
    return keras.backend.backend()


def devices() -> list[str]:
    """Human-readable compute devices of the active backend, GPUs first, e.g. ["GPU:0 (NVIDIA H200)", "CPU"]."""
    name = backend_name()
    if name == "tensorflow":
        import tensorflow as tf

        found = [f"{d.device_type}:{d.name.rsplit(':', 1)[-1]}" for d in tf.config.list_physical_devices("GPU")]
        return [*found, "CPU"]
    if name == "torch":
        import torch

        found = [f"GPU:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
        return [*found, "CPU"]
    if name == "jax":
        import jax

        return [f"{d.platform.upper()}:{d.id} ({d.device_kind})" for d in jax.devices()]
    return ["CPU"]


def allow_xla(model: keras.Model) -> None:
    """On JAX, marks `model`'s geometric augmentation layers as compilable, so that Keras compiles its training
    step with XLA; other backends keep Keras's own choice.

    Keras turns XLA off for any model with RandomRotation, RandomTranslation or RandomZoom, whose TensorFlow
    kernels XLA cannot compile. On JAX they are plain jax.numpy and compile, and without XLA every training step
    runs op by op: several times slower, and on data-parallel CPU devices each op becomes a small sharded program
    whose all-reduces can deadlock XLA's CPU runtime (seen with two virtual devices on 2 cores).
    """
    if backend_name() != "jax":
        return
    geometric = (keras.layers.RandomRotation, keras.layers.RandomTranslation, keras.layers.RandomZoom)
    for layer in model._flatten_layers():
        if isinstance(layer, geometric):
            layer.supports_jit = True


def fuse_batch_norm(model: keras.Model) -> int:
    """On TensorFlow, has each BatchNormalization layer of `model` train with TensorFlow's one fused kernel
    (FusedBatchNormV3); returns how many layers do. Other backends keep Keras's layer (returns 0).

    Keras 3 computes a training batch's statistics, their gradients and the normalisation as a dozen
    elementwise operations, and under mixed bfloat16 casts every input to float32 and back; the fused kernel
    takes bfloat16 as it comes. Profiled (bench/precision.py --profile), those operations and casts were a
    third of mini_resnet's and resnet's training step. The layers keep their class, variables and saved
    config, inference runs Keras's own code, and the statistics and moving averages are Keras's (the kernel's
    unbiased batch variance is turned back into the biased one Keras averages), to float rounding.
    """
    if backend_name() != "tensorflow":
        return 0
    fused = 0
    for layer in model._flatten_layers():
        if type(layer) is keras.layers.BatchNormalization and not (layer.renorm or layer.synchronized):
            # Set on the instance: Keras calls `layer.call`, and saves only the class and its config.
            layer.call = functools.partial(_fused_batch_norm_call, layer, layer.call)
            fused += 1
    return fused


def _fused_batch_norm_call(
    layer: keras.layers.BatchNormalization,
    keras_call: Callable[..., Any],
    inputs: Any,
    training: bool | None = None,
    mask: Any = None,
) -> Any:
    """BatchNormalization's call: a training batch of NHWC images through FusedBatchNormV3, the rest Keras's."""
    import tensorflow as tf

    channels_last = len(inputs.shape) == 4 and layer.axis in (-1, 3)
    if not (training and layer.trainable and channels_last and mask is None and layer.center and layer.scale):
        return keras_call(inputs, training=training, mask=mask)
    outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
        inputs,
        tf.cast(layer.gamma, "float32"),
        tf.cast(layer.beta, "float32"),
        epsilon=layer.epsilon,
        data_format="NHWC",
        is_training=True,
    )
    values = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], "float32")
    variance = variance * (values - 1) / values
    layer.moving_mean.assign(layer.moving_mean * layer.momentum + mean * (1 - layer.momentum))
    layer.moving_variance.assign(layer.moving_variance * layer.momentum + variance * (1 - layer.momentum))
    return tf.cast(outputs, layer.compute_dtype)


def resolve_devices(devices: int | str | None) -> int:
    """How many devices `devices` asks for ("all", a count, or None for one), checked against the backend.

    Raises:
        EmolensError: not the JAX backend, or fewer devices than asked.
    """
    from emolens.errors import EmolensError

    if devices is None or devices == 1:
        return 1
    if backend_name() != "jax":
        raise EmolensError(
            f'--devices needs the JAX backend (this is {backend_name()}): pip install "emolens[jax]", then run with KERAS_BACKEND=jax.'
        )
    found = keras.distribution.list_devices()
    wanted = len(found) if devices == "all" else int(devices)
    if wanted < 1 or wanted > len(found):
        hint = (
            " On a CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N makes N virtual devices."
            if found[0].startswith("cpu")
            else ""
        )
        raise EmolensError(
            f"devices={devices}: this machine has {len(found)} JAX device(s) ({', '.join(found)}).{hint}"
        )
    return wanted


@contextmanager
def data_parallel(count: int) -> Iterator[None]:
    """Models built and trained inside are replicated on the first `count` devices, each batch split among
    them (keras.distribution.DataParallel; JAX only). One device: no distribution at all."""
    if count == 1:
        yield
        return
    distribution = keras.distribution.DataParallel(devices=keras.distribution.list_devices()[:count])
    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(distribution)
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


def gradient(function: Callable[[Any], Any], inputs: np.ndarray) -> np.ndarray:
    """d sum(function(inputs)) / d inputs, as NumPy: `function` maps a backend tensor to a tensor built with
    keras layers and keras.ops (Grad-CAM's class score). Each backend has its own autodiff."""
    name = backend_name()
    inputs = np.asarray(inputs, dtype=np.float32)
    if name == "tensorflow":
        import tensorflow as tf

        tensor = tf.convert_to_tensor(inputs)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            total = tf.reduce_sum(function(tensor))
        return tape.gradient(total, tensor).numpy()
    if name == "torch":
        tensor = keras.ops.convert_to_tensor(inputs).detach().requires_grad_(True)
        function(tensor).sum().backward()
        return tensor.grad.detach().cpu().numpy()
    if name == "jax":
        import jax

        return np.asarray(jax.grad(lambda tensor: function(tensor).sum())(inputs))
    raise NotImplementedError(f"gradients on the {name} backend")


def has_gpu() -> bool:
    return any(d.startswith("GPU") for d in devices())


@functools.cache
def cpu_has_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX-512 BF16 or AMX), as Linux reports it."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def thread_count() -> int:
    """CPU threads the backend uses for one operation."""
    name = backend_name()
    if name == "tensorflow":
        import tensorflow as tf

        return tf.config.threading.get_intra_op_parallelism_threads() or (os.cpu_count() or 1)
    if name == "torch":
        import torch

        return torch.get_num_threads()
    return os.cpu_count() or 1


class Environment(TypedDict):
    """What `summary` reports: the Keras backend's name, its devices ("GPU:0 (...)", "CPU") and CPU threads."""

    backend: str
    devices: list[str]
    threads: int


@functools.cache
def summary() -> Environment:
    """Backend, devices and threads: what the notebook's first cell printed. Fixed for a process, so asked once."""
    return {"backend": backend_name(), "devices": devices(), "threads": thread_count()}


def versions() -> dict[str, str]:
    """Versions of Python, emolens, Keras, the backend and the libraries a run depends on."""
    from emolens import __version__

    backend_package = {"tensorflow": "tensorflow", "torch": "torch", "jax": "jax"}.get(backend_name(), backend_name())
    found = {"python": platform.python_version(), "emolens": __version__, "keras": keras.__version__}
    for package in (backend_package, "numpy", "pillow", "scikit-learn"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            # tensorflow-cpu installs under its own distribution name.
            try:
                found[package] = metadata.version(f"{package}-cpu")
            except metadata.PackageNotFoundError:
                found[package] = "not installed"
    return found
