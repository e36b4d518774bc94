"""Exporting a trained model for deployment: ONNX (run by ONNX Runtime, no TensorFlow) or a clean .keras file.

Either file carries the full model card (class names, preprocessing, recipe, data, measured test metrics), and
a copy of the card is written beside it as JSON, for people and for tools that never open the model.
An ONNX export is checked against Keras before it is kept: outputs must agree within 1e-4.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import tempfile
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from emolens import __version__
from emolens._io import atomic_path, write_json
from emolens.constants import FER2013_CLASSES
from emolens.data.preprocess import PREPROCESSING, to_model_input
from emolens.data.synth import draw_face
from emolens.errors import EmolensError
from emolens.models.card import ONNX_CARD_KEY, ModelCard
from emolens.models.classifier import OnnxClassifier, resolve_model_path
from emolens.rundir import RunDir
from emolens.train.record import RunRecord
from emolens.train.state import CARD_KEY

logger = logging.getLogger(__name__)

FORMATS = ("onnx", "keras")
TOLERANCE = 1e-4


def _best_epoch(run_dir: Path) -> dict[str, Any] | None:
    history = RunDir(run_dir).history
    if not history.is_file():
        return None
    with open(history, newline="") as file:
        rows = list(csv.DictReader(file))
    if not rows:
        return None
    best = max(rows, key=lambda row: float(row["val_accuracy"]))
    return {
        "epochs": len(rows),
        "best_epoch": int(best["epoch"]),
        "val_accuracy": round(float(best["val_accuracy"]), 4),
    }


def model_card(path: Path, card: ModelCard) -> ModelCard:
    """The card a deployed model carries: the training card plus, from its run folder, recipe, data and test metrics."""
    # The preprocessing is the code's, so the card states what this version of emolens does with inputs.
    card = dataclasses.replace(card, preprocessing=PREPROCESSING).with_details(**{CARD_KEY: None})
    files = RunDir(path.parent)
    if files.is_run():
        record = RunRecord.read(files)
        # The data by file name only (its folders are the training machine's), without the skipped-file count.
        data = dataclasses.replace(
            record.data,
            source=Path(record.data.source).name,
            labels=Path(record.data.labels).name if record.data.labels else None,
            skipped=None,
        )
        # Models it learned from (--from, --teacher) by their run folder and file only, for the same reason.
        recipe = record.config.to_dict()
        for setting in ("start_from", "teacher"):
            if recipe[setting]:
                recipe[setting] = "/".join(Path(recipe[setting]).parts[-2:])
        card = card.with_details(
            recipe=recipe,
            data=data.to_dict(),
            training={
                **(_best_epoch(path.parent) or {}),
                "environment": record.environment.to_dict(),
                "versions": dict(record.versions),
            },
        )
    if files.metrics.is_file():
        metrics = json.loads(files.metrics.read_text())
        card = card.with_details(
            evaluation={
                "data": Path(str(metrics["data"])).name,
                "split": metrics["split"],
                "images": metrics["num_images"],
                "test_time_augmentation": metrics["test_time_augmentation"],
                "accuracy": round(metrics["accuracy"], 4),
                "macro_f1": round(metrics["macro_f1"], 4),
                "recall": {name: round(row["recall"], 4) for name, row in metrics["per_class"].items()},
                "sharpness": metrics.get("sharpness"),
                "warnings": metrics.get("warnings", []),
                # With a labels file of votes, accuracy is against their majority (see emolens.evaluate.agreement).
                **({"labels": Path(metrics["labels"]["file"]).name} if metrics.get("labels") else {}),
                **({"vote_share": round(metrics["agreement"]["vote_share"], 4)} if metrics.get("agreement") else {}),
                **(
                    {"source_label_accuracy": metrics["source_label"]["accuracy"]}
                    if metrics.get("source_label")
                    else {}
                ),
            }
        )
    return card.with_details(
        exported={"by": f"emolens {__version__}", "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    )


def _check_images(size: int) -> np.ndarray:
    """Face-like test images for the export check: drawn faces of every expression, plus flat and noisy ones."""
    rng = np.random.default_rng(0)
    faces = [draw_face(emotion, rng, size=size) for emotion in FER2013_CLASSES for _ in range(2)]
    flat = [np.full((size, size), value, np.uint8) for value in (0, 128, 255)]
    noise = [rng.integers(0, 256, (size, size), dtype=np.uint8)]
    return np.stack(faces + flat + noise)


def export_model(
    model: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    format: str = "onnx",
    check_images: np.ndarray | None = None,
) -> Path:
    """Exports a run folder's model or a .keras file.

    Args:
        model: a run folder or a .keras file.
        out: the file to write. Defaults to `<run or model name>.<format>` in the current folder.
        format: "onnx" or "keras".
        check_images: uint8 images (N, H, W) to compare ONNX and Keras on. Defaults to drawn faces.

    Returns:
        The path written. Its card is also written beside it as `<name>.json`.

    Raises:
        EmolensError: bad arguments, or an ONNX file whose outputs differ from Keras by more than 1e-4.
    """
    if format not in FORMATS:
        raise EmolensError(f"unknown export format {format!r}: choose one of {', '.join(FORMATS)}.")
    path = resolve_model_path(model)
    if path.suffix != ".keras":
        raise EmolensError(f"{model} is already exported; export takes a run folder or a .keras file.")
    from emolens.models.saving import load_model, save_model

    keras_model, card = load_model(path, compile=False)
    card = model_card(path, card)
    name = path.resolve().parent.name if path.name == RunDir(path.parent).model.name else path.stem
    out = Path(out) if out is not None else Path(f"{name}.{format}")
    if out.suffix != f".{format}":
        raise EmolensError(f"the output file for format {format!r} must end in .{format}, not {out.name}.")
    out.parent.mkdir(parents=True, exist_ok=True)
    if format == "keras":
        save_model(keras_model, out, card)
    else:
        _export_onnx(keras_model, card, out, check_images)
    write_json(out.with_suffix(".json"), card.to_dict())
    logger.debug("Exported %s to %s (card: %s)", path, out, out.with_suffix(".json"))
    return out


def _export_onnx(keras_model: Any, card: ModelCard, out: Path, check_images: np.ndarray | None) -> None:
    import onnx

    size = int(keras_model.input_shape[1])
    images = check_images if check_images is not None else _check_images(size)
    expected = np.asarray(keras_model.predict_on_batch(to_model_input(images)))
    # tf2onnx narrates its graph optimisation at INFO; the user asked for a file, not a log of its passes.
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # tf2onnx probes numpy attributes that numpy 2 deprecates; the warnings are not the user's concern.
        warnings.simplefilter("ignore", FutureWarning)
        raw = Path(tmp) / "model.onnx"
        keras_model.export(str(raw), format="onnx", verbose=False)
        proto = onnx.load(str(raw))
    entry = proto.metadata_props.add()
    entry.key, entry.value = ONNX_CARD_KEY, json.dumps(card.to_dict())
    with atomic_path(out) as tmp_out:
        onnx.save(proto, str(tmp_out))
        # Compare the raw network on exactly the inputs Keras saw.
        exported = OnnxClassifier(tmp_out)
        difference = float(np.abs(exported.forward(to_model_input(images)) - expected).max())
        if difference > TOLERANCE:
            raise EmolensError(
                f"the ONNX export differs from the Keras model by {difference:.2e} (limit {TOLERANCE:g}); nothing was written."
            )
    logger.debug("ONNX and Keras agree within %.2e on %d images", difference, len(images))
