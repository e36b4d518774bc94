"""The emotion of every face in a photo: decode, detect, crop, classify (faces of many photos in one batch).

    from emolens import Recognizer
    faces = Recognizer().predict("photo.jpg")
    faces[0].emotion, faces[0].confidence, faces[0].box
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import cv2
import numpy as np
from PIL import Image

from emolens.data.decode import UndecodableImage, decode_photo, pil_to_rgb
from emolens.errors import EmolensError
from emolens.models.classifier import DEFAULT_MODEL, TTA_MODES, Classifier, load_classifier
from emolens.predict.faces import DEFAULT_MIN_FACE, crop_faces, make_detector

ImageInput = Union[str, os.PathLike, bytes, np.ndarray, Image.Image]
Color = Literal["rgb", "bgr"]


@dataclass(frozen=True)
class Face:
    """One face: its box (x, y, w, h) in the photo's pixels, the top emotion, its probability, and all of them."""

    box: tuple[int, int, int, int]
    emotion: str
    confidence: float
    probabilities: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"box": list(self.box), "emotion": self.emotion, "confidence": self.confidence, "probabilities": dict(self.probabilities)}


@dataclass(frozen=True)
class ImageResult:
    """The faces found in one image (or one video frame), as `emolens predict --json` prints it."""

    source: str
    width: int
    height: int
    faces: list[Face] = field(default_factory=list)
    frame: int | None = None  # video frames only
    time: float | None = None  # seconds into the video

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"source": self.source, "width": self.width, "height": self.height}
        if self.frame is not None:
            result["frame"], result["time"] = self.frame, self.time
        result["faces"] = [face.to_dict() for face in self.faces]
        return result


def to_gray(image: ImageInput, color: Color | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Any supported image input -> (gray (H, W) uint8, RGB (H, W, 3) uint8 or None for gray input).

    Files and bytes are decoded with the same mode handling as training data (EXIF rotation, 16-bit, CMYK,
    transparency). A 3- or 4-channel numpy array needs `color` ("rgb" or "bgr"): OpenCV gives BGR, most others RGB,
    and guessing wrong silently changes the gray levels.
    """
    if isinstance(image, (str, os.PathLike)):
        image = Path(image).read_bytes()
    if isinstance(image, (bytes, Image.Image)):
        rgb = decode_photo(image) if isinstance(image, bytes) else pil_to_rgb(image)
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), rgb
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise TypeError(f"Expected a uint8 image array. Received: dtype={array.dtype}")
    if array.ndim == 2:
        return array, None
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"Expected an image array of shape (H, W), (H, W, 3) or (H, W, 4). Received: shape={array.shape}")
    if color not in ("rgb", "bgr"):
        raise ValueError("A colour image array needs color='rgb' or color='bgr' (OpenCV arrays are BGR).")
    rgb = np.ascontiguousarray(array[..., :3] if color == "rgb" else array[..., 2::-1])
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), rgb


class Recognizer:
    """Finds faces and recognises their emotions.

    Args:
        model: "default" (the bundled model, run by ONNX Runtime), a run folder, a .keras or an .onnx file.
        detector: "haar" (built in) or "yunet" (needs `detector_model`).
        detector_model: path to YuNet's .onnx file.
        min_face: smallest face side, in the photo's pixels, worth classifying. Defaults to 40.
        batch_size: faces per classifier call. Defaults to 256.
        classifier: an already loaded Classifier, used instead of `model` (to share one between recognizers).
        tta: test-time augmentation: "none", "flip" (each face averaged with its mirror) or "crops" (ten crops,
            for models trained on crops). Defaults to "none".
    """

    def __init__(
        self,
        model: str | os.PathLike = DEFAULT_MODEL,
        *,
        detector: str = "haar",
        detector_model: str | os.PathLike | None = None,
        min_face: int = DEFAULT_MIN_FACE,
        batch_size: int = 256,
        classifier: Classifier | None = None,
        tta: str = "none",
    ) -> None:
        if tta not in TTA_MODES:
            raise EmolensError(f"unknown test-time augmentation {tta!r}: choose one of {', '.join(TTA_MODES)}.")
        self.tta = tta
        self.classifier = classifier or load_classifier(model)
        self.detector = make_detector(detector, model_file=detector_model, min_face=min_face)
        self.batch_size = batch_size

    @property
    def class_names(self) -> list[str]:
        return self.classifier.class_names

    def predict(self, image: ImageInput, *, color: Color | None = None) -> list[Face]:
        """The faces in one image, left to right.

        Args:
            image: a file path, encoded bytes, a PIL image, or a uint8 numpy array (gray, or colour with `color`).
            color: "rgb" or "bgr", for colour numpy arrays only.

        Raises:
            UndecodableImage: the file or bytes are not a readable image.
        """
        return self.predict_many([image], color=color)[0]

    def predict_many(self, images: Sequence[ImageInput], *, color: Color | None = None) -> list[list[Face]]:
        """The faces in each of `images`; all their faces go through the classifier together."""
        grays = [to_gray(image, color)[0] for image in images]
        return self.recognize(grays)

    def recognize(self, grays: Sequence[np.ndarray]) -> list[list[Face]]:
        """The faces in each of several gray (H, W) uint8 photos, classified in shared batches."""
        all_boxes = [self.detector.detect(gray) for gray in grays]
        size = self.classifier.input_size
        crops = [crop_faces(gray, boxes, self.detector.framing, size) for gray, boxes in zip(grays, all_boxes)]
        stacked = np.concatenate(crops) if crops else np.zeros((0, size, size), dtype=np.uint8)
        probabilities = self.classifier.predict(stacked, batch_size=self.batch_size, tta=self.tta)
        names = self.class_names
        results, start = [], 0
        for boxes in all_boxes:
            faces = []
            for box, p in zip(boxes, probabilities[start : start + len(boxes)]):
                top = int(p.argmax())
                faces.append(
                    Face(
                        box=tuple(int(v) for v in box),
                        emotion=names[top],
                        confidence=round(float(p[top]), 4),
                        probabilities={name: round(float(v), 4) for name, v in zip(names, p)},
                    )
                )
            results.append(faces)
            start += len(boxes)
        return results


__all__ = ["Face", "ImageResult", "Recognizer", "UndecodableImage", "to_gray"]
