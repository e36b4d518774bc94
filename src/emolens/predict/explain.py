"""Why the model said so: Grad-CAM heat maps over each face (Selvaraju et al., 2017).

Grad-CAM weights the network's last feature maps (the input of its global pooling or flattening layer) by how
much each raises the predicted class, and keeps the positive part: the regions that argue for the answer.
It is the standard method for CNNs, needs one backward pass per face (no sampling, unlike occlusion or
SHAP), and works on every architecture emolens trains. The score differentiated is the predicted class's
log-probability, which is its logit less the log-sum over all classes: the map shows what speaks for this
class rather than for any other.

It needs gradients, so it runs the Keras model (a run folder, a .keras file, or the bundled default.keras),
loaded only when an explanation is asked for; ONNX prediction stays free of TensorFlow.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from emolens.data.preprocess import centre_crop, to_model_input
from emolens.errors import EmolensError
from emolens.models.classifier import DEFAULT_MODEL, keras_model_path

# A map is compared with the network's answer on the same face: far apart means the split below is wrong.
_AGREEMENT = 1e-3


def _pools_feature_maps(layer) -> bool:
    """Whether `layer` turns one stack of feature maps (N, H, W, C) into vectors (N, C'): global pooling or flattening."""
    return not isinstance(layer.input, (list, tuple)) and len(layer.input.shape) == 4 and len(layer.output.shape) == 2


class GradCam:
    """Grad-CAM heat maps for a Keras classifier.

    Args:
        model: "default", a run folder, a .keras file, or an .onnx file with its .keras twin beside it.

    Examples:
        >>> explainer = GradCam("default")                                        # doctest: +SKIP
        >>> maps = explainer.heatmaps(faces, classes)   # (K, 48, 48) in [0, 1]   # doctest: +SKIP
    """

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL) -> None:
        import keras

        from emolens.models.saving import load_model

        self.path = keras_model_path(model)
        network, self.card = load_model(self.path, compile=False)
        split = next((i for i, layer in enumerate(network.layers) if _pools_feature_maps(layer)), None)
        if split is None:
            raise EmolensError(
                f"{self.path}: no pooling or flattening layer after the last feature maps, so Grad-CAM has nothing to weigh."
            )
        # The network up to its last feature maps, and the chain of layers after them (pooling, dropout, dense).
        self.features = keras.Model(network.inputs, network.layers[split].input)
        self.head = network.layers[split:]
        probe = np.random.default_rng(0).integers(0, 256, (4, *self.card.input_shape[:2]), dtype=np.uint8)
        self._check_split(network, to_model_input(probe))

    def _scores(self, features, classes: np.ndarray):
        import keras

        outputs = features
        for layer in self.head:
            outputs = layer(outputs, training=False)
        picked = keras.ops.take_along_axis(outputs, keras.ops.convert_to_tensor(classes[:, None]), axis=1)
        return keras.ops.log(keras.ops.maximum(picked, 1e-12))

    def heatmaps(self, faces: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Heat maps (K, size, size) in [0, 1] over uint8 face crops (K, size, size), for class indices `classes`.

        A model trained on crops sees the centre crop, as prediction without TTA does; its map covers that
        crop and is zero in the margin around it.
        """
        from emolens import backend

        faces = np.asarray(faces)
        if len(faces) == 0:
            return np.zeros(faces.shape, dtype=np.float32)
        size, crop = faces.shape[1], self.card.input_shape[0]
        start = (size - crop) // 2
        inputs = centre_crop(to_model_input(faces), crop)
        features = np.asarray(self.features.predict_on_batch(inputs), dtype=np.float32)
        classes = np.asarray(classes, dtype=np.int64)
        gradients = backend.gradient(lambda tensor: self._scores(tensor, classes), features)
        weights = gradients.mean(axis=(1, 2), keepdims=True)  # one weight per feature map: its mean gradient
        cams = np.maximum((weights * features).sum(axis=-1), 0.0)
        peaks = cams.max(axis=(1, 2), keepdims=True)
        cams = np.divide(cams, peaks, out=np.zeros_like(cams), where=peaks > 0)
        maps = np.zeros(faces.shape, dtype=np.float32)
        for i, cam in enumerate(cams):
            maps[i, start : start + crop, start : start + crop] = cv2.resize(
                cam, (crop, crop), interpolation=cv2.INTER_LINEAR
            )
        return maps

    def _check_split(self, network, inputs: np.ndarray) -> None:
        """The head applied to the features must give the network's own answer: else the model is not a
        plain chain after its pooling layer, and the maps would explain something else."""
        import keras

        probabilities = np.asarray(network.predict_on_batch(inputs))
        classes = probabilities.argmax(axis=1)
        expected = np.log(np.maximum(probabilities[np.arange(len(classes)), classes], 1e-12))[:, None]
        features = keras.ops.convert_to_tensor(self.features.predict_on_batch(inputs))
        found = keras.ops.convert_to_numpy(self._scores(features, classes))
        if not np.allclose(found, expected, atol=_AGREEMENT):
            raise EmolensError(
                f"{self.path}: Grad-CAM cannot split this architecture after its last feature maps "
                "(the layers after them are not a plain chain)."
            )
