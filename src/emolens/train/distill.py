"""Distilling with a consistent teacher: the teacher answers each augmented view as the student sees it.

With `teacher_sees="faces"` a teacher answers once per training face, before training (`train/data.py`), and
the student learns that one answer for every flipped, rotated and shifted view of the face. With "views" the
teacher sits inside the trainer, frozen, and answers the very view the student is trained on at each step
(the "consistent teaching" of Beyer et al., 2022, "Knowledge distillation: a good teacher is patient and
consistent"): the target moves with the augmentation, at the price of the teacher's forward pass every step.

The trainer then outputs the student's probabilities and the teacher's side by side (`TeacherAnswers`), and
`ViewDistillationLoss` mixes the teacher's share into the target; `StudentAccuracy` scores the student's half.
All three are saved with the run's checkpoint, so a resumed run keeps its teacher.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
from keras import ops

from emolens.constants import IMAGE_SIZE
from emolens.errors import EmolensError
from emolens.train.data import teacher_class_order

# Probabilities are floored here before their logarithm, as the NumPy calibration does (models/calibration.py).
_TINY = 1e-12


@keras.saving.register_keras_serializable(package="emolens")
class TeacherAnswers(keras.layers.Layer):
    """A frozen teacher's calibrated answers for a batch of augmented full-size views, in the data's class order.

    Args:
        teacher: the teacher network (probabilities out); it is frozen and always runs in inference mode, so its
            dropout and batch statistics never move.
        temperature: the teacher's calibration temperature (its card's), applied as `predict` applies it.
        class_scale: one factor per teacher class (its card's class_scale), or None.
        order: the teacher's class index for each of the data's classes.
    """

    def __init__(
        self,
        teacher: keras.Model,
        *,
        temperature: float = 1.0,
        class_scale: Sequence[float] | None = None,
        order: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.teacher = teacher
        self.teacher.trainable = False
        self.temperature = float(temperature)
        self.class_scale = None if class_scale is None else [float(factor) for factor in class_scale]
        self.order = None if order is None else [int(index) for index in order]

    def call(self, views: Any) -> Any:
        crop = int(self.teacher.input_shape[1])
        start = (IMAGE_SIZE - crop) // 2
        views = views[:, start : start + crop, start : start + crop, :]
        probabilities = ops.cast(self.teacher(views, training=False), "float32")
        if self.temperature != 1.0:
            logits = ops.log(ops.maximum(probabilities, _TINY)) / self.temperature
            probabilities = ops.softmax(logits, axis=-1)
        if self.class_scale is not None:
            probabilities = probabilities * ops.convert_to_tensor(self.class_scale, "float32")
            probabilities = probabilities / ops.sum(probabilities, axis=-1, keepdims=True)
        if self.order is not None:
            probabilities = ops.take(probabilities, ops.convert_to_tensor(self.order, "int32"), axis=-1)
        return ops.stop_gradient(probabilities)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        classes = len(self.order) if self.order is not None else self.teacher.output_shape[-1]
        return (input_shape[0], classes)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "teacher": keras.saving.serialize_keras_object(self.teacher),
            "temperature": self.temperature,
            "class_scale": self.class_scale,
            "order": self.order,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TeacherAnswers:
        config = dict(config)
        teacher = keras.saving.deserialize_keras_object(config.pop("teacher"))
        return cls(teacher, **config)


def _in_mixed_bfloat16(network: keras.Model) -> keras.Model:
    """A copy of `network` (float32, as model.keras is saved) whose layers compute in bfloat16, with its weights."""

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if "dtype" in config:
            config["dtype"] = "mixed_bfloat16"
        return layer.__class__.from_config(config)

    twin = keras.models.clone_model(network, clone_function=clone, recursive=True)
    twin.set_weights(network.get_weights())
    return twin


def teacher_answers_layer(teacher: str, class_names: Sequence[str], *, precision: str = "float32") -> TeacherAnswers:
    """`TeacherAnswers` for the model `teacher` ("default", a run folder, a .keras file, or an .onnx file with
    its .keras beside it: the teacher must run inside the trainer, so it must be a Keras model). With precision
    "bf16" the teacher computes in bfloat16 as the student does (bench/precision.py: a resnet's training step
    1.6x cheaper so; the answers move by a few thousandths)."""
    from emolens.models.classifier import keras_model_path
    from emolens.models.saving import load_model

    network, card = load_model(keras_model_path(teacher), compile=False)
    if card.image_size != IMAGE_SIZE:
        raise EmolensError(
            f"the teacher {teacher} takes {card.image_size}-pixel faces; a teacher answering each view needs "
            f"{IMAGE_SIZE}-pixel ones as the student's."
        )
    if precision == "bf16":
        network = _in_mixed_bfloat16(network)
    scale = card.class_scale
    return TeacherAnswers(
        network,
        temperature=card.temperature or 1.0,
        class_scale=None if not scale else [scale.get(name, 1.0) for name in card.class_names],
        order=teacher_class_order(teacher, card.class_names, class_names),
        name="teacher_answers",
    )


@keras.saving.register_keras_serializable(package="emolens")
class ViewDistillationLoss(keras.losses.Loss):
    """Cross-entropy of the student's half of `y_pred` against `(1 - teacher_weight) * y_true + teacher_weight *
    the teacher's half`: y_true holds the rest of the target (votes, labels, the source's label), summing to 1.

    Args:
        teacher_weight: the teacher's share of the target.
        label_smoothing: smooths the mixed target, as keras.losses.CategoricalCrossentropy's.
    """

    def __init__(
        self,
        teacher_weight: float = 0.5,
        label_smoothing: float = 0.0,
        name: str = "view_distillation",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        self.teacher_weight = float(teacher_weight)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        classes = y_true.shape[-1]
        student, teacher = y_pred[..., :classes], y_pred[..., classes:]
        target = (1.0 - self.teacher_weight) * ops.cast(y_true, student.dtype) + self.teacher_weight * teacher
        return keras.losses.categorical_crossentropy(target, student, label_smoothing=self.label_smoothing)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "teacher_weight": self.teacher_weight,
            "label_smoothing": self.label_smoothing,
        }


@keras.saving.register_keras_serializable(package="emolens")
class StudentAccuracy(keras.metrics.CategoricalAccuracy):
    """Categorical accuracy of the student's half of `y_pred` (the trainer outputs the teacher's answers after it)."""

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        return super().update_state(y_true, y_pred[..., : y_true.shape[-1]], sample_weight=sample_weight)
