"""One interface over the two ways emolens runs a trained classifier: Keras and ONNX Runtime.

`load_classifier` takes a run folder, a .keras file, an .onnx file, or "default" (the model bundled in the
package, run by ONNX Runtime). The ONNX path imports neither Keras nor TensorFlow, so prediction starts fast
and serving stays light; Keras is imported only when a .keras model is asked for.

Both kinds carry the same emolens card (class names, input size, preprocessing, training sharpness): inside
the .keras zip as `emolens.json`, inside the .onnx file as the metadata property `emolens`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from emolens.constants import IMAGE_SIZE, TTA_MODES
from emolens.data.preprocess import centre_crop, to_model_input
from emolens.errors import EmolensError
from emolens.models.calibration import apply_class_scale, apply_temperature
from emolens.models.card import ONNX_CARD_KEY, ModelCard, read_card_text
from emolens.rundir import RunDir

DEFAULT_MODEL = "default"
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "weights"
MODEL_SUFFIXES = (".keras", ".onnx")


def check_tta(tta: str) -> str:
    """`tta` if it names a test-time augmentation (see `Classifier.views`), else an EmolensError that lists them.

    Examples:
        >>> check_tta("flip")
        'flip'
    """
    if tta not in TTA_MODES:
        raise EmolensError(f"unknown test-time augmentation {tta!r}: choose one of {', '.join(TTA_MODES)}.")
    return tta


def resolve_model_path(model: str | os.PathLike) -> Path:
    """The model file behind `model`: "default", a run folder (its model.keras), a .keras or an .onnx file."""
    if str(model) == DEFAULT_MODEL:
        path = BUNDLED_DIR / "default.onnx"
        if not path.is_file():
            raise EmolensError(f"the bundled model is missing from this installation ({path}). Reinstall emolens.")
        return path
    path = Path(model)
    if path.is_dir():
        if not RunDir(path).model.is_file():
            raise EmolensError(
                f"{path} has no model.keras: it is not a finished emolens run. Pass a run folder, a .keras or .onnx file, or `default`."
            )
        return RunDir(path).model
    if path.suffix not in MODEL_SUFFIXES:
        raise EmolensError(
            f"cannot use {path} as a model: expected a run folder, a .keras or .onnx file, or `default`."
        )
    if not path.is_file():
        raise EmolensError(f"no model file at {path}. Pass a run folder, a .keras or .onnx file, or `default`.")
    return path


def keras_model_path(model: str | os.PathLike) -> Path:
    """The .keras file behind `model`: the bundled default.keras for "default", a run's model.keras, a .keras
    file itself, or the .keras file beside an .onnx file of the same name.

    Raises:
        EmolensError: an .onnx file with no .keras beside it.
    """
    if str(model) == DEFAULT_MODEL:
        return BUNDLED_DIR / "default.keras"
    path = resolve_model_path(model)
    if path.suffix == ".keras":
        return path
    twin = path.with_suffix(".keras")
    if twin.is_file():
        return twin
    raise EmolensError(
        f"this needs the Keras model, and {path} is ONNX with no {twin.name} beside it: pass the run folder or the .keras file."
    )


def needs_keras(*models: str | os.PathLike) -> bool:
    """Whether loading `models` imports Keras (everything but .onnx files and the bundled default)."""
    return any(str(model) != DEFAULT_MODEL and Path(model).suffix != ".onnx" for model in models)


class Classifier(ABC):
    """A trained emotion classifier: uint8 face crops in, class probabilities out.

    Attributes:
        path: the model file.
        card: the emolens model card.
        run_dir: the run folder the model came from, or None.
    """

    def __init__(self, path: Path, card: ModelCard) -> None:
        self.path = path
        self.card = card
        run = RunDir.holding(path)
        self.run_dir = run.path if run is not None else None

    @property
    def class_names(self) -> list[str]:
        return list(self.card.class_names)

    @property
    def input_size(self) -> int:
        """The side of the face images `predict` takes (48 for FER2013-style models)."""
        size = self.card.image_size
        assert size is not None  # ModelCard fills it in from input_shape when a card leaves it out
        return size

    @property
    def crop_size(self) -> int:
        """The side of the network's input: smaller than input_size for a model trained on crops."""
        return self.card.input_shape[0]

    def views(self, inputs: np.ndarray, tta: str) -> list[np.ndarray]:
        """The network inputs whose probabilities are averaged: centre crop (the whole image for an uncropped
        model), with its mirror for "flip", or ten crops for "crops"."""
        size, crop = inputs.shape[1], self.crop_size
        if tta == "crops":
            self.check_views(tta)
            margin = size - crop
            corners = [(margin // 2, margin // 2), (0, 0), (0, margin), (margin, 0), (margin, margin)]
            crops = [inputs[:, top : top + crop, left : left + crop] for top, left in corners]
            return crops + [view[:, :, ::-1] for view in crops]
        centre = centre_crop(inputs, crop)  # what training validated with
        return [centre, centre[:, :, ::-1]] if tta == "flip" else [centre]

    def check_views(self, tta: str) -> None:
        """An EmolensError unless this model can give the views `tta` averages ("crops" needs one trained on crops)."""
        if tta == "crops" and self.crop_size >= IMAGE_SIZE:
            raise EmolensError(
                "test-time augmentation `crops` needs a model trained on crops (train with --crop 44 or 40); use `flip`."
            )

    @property
    def temperature(self) -> float:
        """The calibration temperature from the card (1 for a model never calibrated)."""
        return self.card.temperature or 1.0

    def predict(
        self, faces: np.ndarray, *, batch_size: int = 256, tta: str = "none", calibrated: bool = True
    ) -> np.ndarray:
        """Class probabilities (N, classes) for uint8 face crops (N, size, size), in batches of `batch_size`.

        `tta="flip"` averages each face with its horizontal mirror (twice the work, usually a little more
        accurate); `tta="crops"` averages ten crops, for models trained on crops (see `views`). `calibrated`
        applies the card's temperature and class_scale (see emolens.models.calibration); False gives the raw softmax.
        """
        calibrated_probabilities, raw = self.predict_both(faces, batch_size=batch_size, tta=tta)
        return calibrated_probabilities if calibrated else raw

    def predict_both(
        self, faces: np.ndarray, *, batch_size: int = 256, tta: str = "none"
    ) -> tuple[np.ndarray, np.ndarray]:
        """(calibrated, raw) class probabilities from one pass of the network: evaluate reports both."""
        raw = self._average_views(self._check_faces(faces, tta), batch_size, tta)
        return apply_class_scale(apply_temperature(raw, self.temperature), self.class_scale), raw

    @property
    def class_scale(self) -> np.ndarray | None:
        """The card's class_scale as one factor per class (1 for classes it does not name), or None."""
        scale = self.card.class_scale
        return None if not scale else np.array([scale.get(name, 1.0) for name in self.class_names], np.float64)

    def _check_faces(self, faces: np.ndarray, tta: str) -> np.ndarray:
        check_tta(tta)
        faces = np.asarray(faces)
        if faces.ndim == 2:
            faces = faces[None]
        if faces.shape[1:] != (self.input_size, self.input_size):
            raise ValueError(
                f"Expected face crops of shape (N, {self.input_size}, {self.input_size}). Received: shape={faces.shape}"
            )
        return faces

    def _average_views(self, faces: np.ndarray, batch_size: int, tta: str) -> np.ndarray:
        if len(faces) == 0:
            return np.zeros((0, len(self.class_names)), dtype=np.float32)
        views = self.views(to_model_input(faces), tta)
        return np.mean(
            [
                np.concatenate([self.forward(view[i : i + batch_size]) for i in range(0, len(view), batch_size)])
                for view in views
            ],
            axis=0,
        )

    @abstractmethod
    def forward(self, inputs: np.ndarray) -> np.ndarray:
        """Probabilities for one batch of model input (float32, N x H x W x 1)."""


class KerasClassifier(Classifier):
    """A .keras model, run by Keras on the configured backend."""

    def __init__(self, path: Path) -> None:
        from emolens.models.saving import load_model

        self.model, card = load_model(path, compile=False)
        super().__init__(path, card)

    def forward(self, inputs: np.ndarray) -> np.ndarray:
        # predict_on_batch, not predict(): no per-call dataset and callback setup, which dominates for a few
        # faces; it returns NumPy on every backend (a torch tensor would need detaching first).
        return np.asarray(self.model.predict_on_batch(inputs), dtype=np.float32)


# ONNX Runtime computes constant subgraphs when it loads a model: a 200-byte file holding ConstantOfShape
# [25000, 25000] takes 2.5 GB before anything could refuse it. An emotion model's largest tensor is a few
# megabytes (the bundled one's: 62,000 values), so 2^26 values (256 MB as float32) is far beyond any real one.
MAX_ONNX_TENSOR_VALUES = 2**26


def _refuse_tensors_beyond_reason(path: Path) -> None:
    """Refuses an .onnx file any of whose tensors, by shape inference with constants propagated, would hold more
    than MAX_ONNX_TENSOR_VALUES values (only the statically known dimensions count)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(onnx.load(str(path), load_external_data=False), data_prop=True)
    except Exception as error:  # onnx raises its own types, and protobuf's, for unreadable files
        raise EmolensError(f"could not load the ONNX model {path}: {error}") from error
    for value in [*inferred.graph.value_info, *inferred.graph.output]:
        dims = [dim.dim_value for dim in value.type.tensor_type.shape.dim if dim.dim_value > 0]
        if int(np.prod(dims, dtype=np.float64)) > MAX_ONNX_TENSOR_VALUES:
            shape = "x".join(map(str, dims))
            raise EmolensError(
                f"{path} computes a tensor {value.name!r} of {shape} values, above {MAX_ONNX_TENSOR_VALUES:,}: "
                "it is not a model emolens can load."
            )


class OnnxClassifier(Classifier):
    """An .onnx model, run by ONNX Runtime on the CPU."""

    def __init__(self, path: Path, *, threads: int | None = None) -> None:
        import onnxruntime

        if path.resolve().parent != BUNDLED_DIR:  # the shipped model is known; onnx costs 0.8 s to import
            _refuse_tensors_beyond_reason(path)

        options = onnxruntime.SessionOptions()
        # No spin-waiting after a run: ONNX Runtime's idle threads would keep the cores busy while OpenCV's
        # detector runs next (one photo on 2 cores: 16 ms with spinning, 10 ms without, measured).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for unreadable files
            raise EmolensError(f"could not load the ONNX model {path}: {error}") from error
        metadata = self.session.get_modelmeta().custom_metadata_map
        if ONNX_CARD_KEY not in metadata:
            raise EmolensError(f"{path} has no emolens card: export it with `emolens export MODEL --format onnx`.")
        network_input, network_output = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input_name = network_input.name
        card = read_card_text(metadata[ONNX_CARD_KEY], path).check_network(
            path, outputs=network_output.shape[-1], input_shape=network_input.shape
        )
        super().__init__(path, card)

    def forward(self, inputs: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: inputs})[0]


def ensemble_sharpness(cards: list[ModelCard]) -> float | None:
    """The training sharpness an ensemble's card records, for evaluate's data-shift warning: its members' median
    (members trained on the same data share it; the median keeps one odd member from deciding), or None if any
    member lacks one."""
    values = [card.train_sharpness for card in cards]
    known = [value for value in values if value]
    return float(np.median(known)) if len(known) == len(values) else None


class EnsembleClassifier(Classifier):
    """Several classifiers whose probabilities are averaged (classes matched by name)."""

    def __init__(self, members: list[Classifier]) -> None:
        first = members[0]
        for member in members[1:]:
            if sorted(member.class_names) != sorted(first.class_names) or (member.input_size, member.crop_size) != (
                first.input_size,
                first.crop_size,
            ):
                raise EmolensError(
                    f"{member.path} and {first.path} cannot be ensembled: their classes or input sizes differ."
                )
        self.members = members
        self.orders = [np.array([member.class_names.index(name) for name in first.class_names]) for member in members]
        card = ModelCard(
            model="ensemble of " + ", ".join(str(member.card.model or member.path.stem) for member in members),
            class_names=tuple(first.class_names),
            input_shape=first.card.input_shape,
            image_size=first.input_size,
            train_sharpness=ensemble_sharpness([member.card for member in members]),
            details={"members": [str(member.path) for member in members]},
        )
        super().__init__(Path("ensemble"), card)
        self.run_dir = None

    def forward(self, inputs: np.ndarray) -> np.ndarray:
        return np.mean(
            [member.forward(inputs)[:, order] for member, order in zip(self.members, self.orders, strict=True)], axis=0
        )

    def predict_both(
        self, faces: np.ndarray, *, batch_size: int = 256, tta: str = "none"
    ) -> tuple[np.ndarray, np.ndarray]:
        """The members' (calibrated, raw) probabilities, each averaged: every member applies its own temperature."""
        pairs = [member.predict_both(faces, batch_size=batch_size, tta=tta) for member in self.members]
        return tuple(
            np.mean([pair[kind][:, order] for pair, order in zip(pairs, self.orders, strict=True)], axis=0)
            for kind in (0, 1)
        )


def load_classifier(model: str | os.PathLike = DEFAULT_MODEL, *, threads: int | None = None) -> Classifier:
    """Loads a classifier for inference.

    Args:
        model: "default" (the bundled model), a run folder, a .keras or an .onnx file.
        threads: int, optional. ONNX Runtime's intra-op threads (default: all cores).

    Returns:
        A Classifier whose `predict` takes uint8 face crops.
    """
    path = resolve_model_path(model)
    if path.suffix == ".onnx":
        return OnnxClassifier(path, threads=threads)
    return KerasClassifier(path)


def load_classifiers(models: list[str | os.PathLike], *, threads: int | None = None) -> Classifier:
    """One classifier for one model, or an EnsembleClassifier averaging several."""
    if not models:
        raise EmolensError("no model given: pass a run folder, a .keras or .onnx file, or `default`.")
    if len(models) == 1:
        return load_classifier(models[0], threads=threads)
    members = [load_classifier(model, threads=threads) for model in models]
    return EnsembleClassifier(members)
