"""BatchNormalization trained through TensorFlow's fused kernel (emolens.backend.fuse_batch_norm) must compute
what Keras's own layer computes: the same outputs, gradients and moving statistics, in float32 and under mixed
bfloat16, with the layers' class and saved files unchanged."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from emolens import backend

pytestmark = pytest.mark.skipif(backend.backend_name() != "tensorflow", reason="the fused kernel is TensorFlow's")


def _small_net(policy: str) -> keras.Model:
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        keras.utils.set_random_seed(3)
        inputs = keras.Input((6, 6, 2))
        x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        outputs = keras.layers.Dense(3, activation="softmax", dtype="float32")(keras.layers.Dense(5)(x))
        return keras.Model(inputs, outputs)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def _one_training_step(model: keras.Model, images: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Outputs and weight gradients of a training-mode forward pass (which also updates the moving statistics)."""
    import tensorflow as tf

    target = tf.constant(np.eye(3, dtype="float32")[[0, 1, 2, 0, 1, 2, 0, 1]])

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            outputs = model(x, training=True)
            loss = keras.losses.categorical_crossentropy(target, outputs)
        return outputs, tape.gradient(loss, model.trainable_variables)

    outputs, gradients = step(tf.constant(images))
    return outputs.numpy(), [g.numpy() for g in gradients]


@pytest.mark.parametrize("policy, tolerance", [("float32", 1e-5), ("mixed_bfloat16", 2e-2)])
def test_the_fused_kernel_trains_as_keras_s_layer_does(policy, tolerance):
    images = np.random.default_rng(0).normal(2.0, 3.0, (8, 6, 6, 2)).astype("float32")
    keras_net, fused_net = _small_net(policy), _small_net(policy)
    fused_net.set_weights(keras_net.get_weights())
    assert backend.fuse_batch_norm(fused_net) == 1 and backend.fuse_batch_norm(keras.Sequential()) == 0

    keras_outputs, keras_gradients = _one_training_step(keras_net, images)
    fused_outputs, fused_gradients = _one_training_step(fused_net, images)
    np.testing.assert_allclose(fused_outputs, keras_outputs, atol=tolerance)
    for fused, expected in zip(fused_gradients, keras_gradients, strict=True):
        np.testing.assert_allclose(fused, expected, atol=tolerance * max(1.0, np.abs(expected).max()))
    # The moving mean and variance (Keras averages the biased batch variance) and everything else.
    for fused, expected in zip(fused_net.get_weights(), keras_net.get_weights(), strict=True):
        np.testing.assert_allclose(fused, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(fused_net.layers[2].moving_variance.numpy(), 1.0)  # the step did update them
    # Inference runs Keras's own code with those statistics.
    np.testing.assert_allclose(fused_net.predict(images, verbose=0), keras_net.predict(images, verbose=0), atol=1e-6)


def test_training_runs_the_fused_kernel_and_saved_files_keep_keras_s_layer(tmp_path):
    import tensorflow as tf

    net = _small_net("float32")
    backend.fuse_batch_norm(net)
    graph = tf.function(lambda x: net(x, training=True)).get_concrete_function(tf.TensorSpec((2, 6, 6, 2))).graph
    kinds = {op.type for op in graph.get_operations()}
    # One kernel, no separate statistics (Keras's own layer runs SquaredDifference and Rsqrt instead).
    assert {"FusedBatchNormV3", "SquaredDifference", "Rsqrt"} & kinds == {"FusedBatchNormV3"}

    net.save(tmp_path / "net.keras")
    reloaded = keras.saving.load_model(tmp_path / "net.keras")
    assert type(reloaded.layers[2]) is keras.layers.BatchNormalization
    images = np.random.default_rng(1).random((2, 6, 6, 2), dtype=np.float32)
    np.testing.assert_allclose(reloaded.predict(images, verbose=0), net.predict(images, verbose=0), atol=1e-6)


def test_new_and_resumed_runs_train_with_the_fused_kernel(tmp_path, monkeypatch):
    from conftest import write_tree
    from emolens.train import TrainConfig, resume, train

    fused = []
    fuse = backend.fuse_batch_norm
    monkeypatch.setattr(backend, "fuse_batch_norm", lambda model: fused.append(fuse(model)) or fused[-1])
    data = write_tree(tmp_path / "data", {"train": 8, "test": 2})
    train(data, TrainConfig(model="seed_bn", epochs=1, batch_size=8), out=tmp_path / "run", verbose=0)
    resume(tmp_path / "run", epochs=2, verbose=0)
    assert fused == [4, 4]  # seed_bn's four BatchNorm layers, in the new run's trainer and in the resumed one's
