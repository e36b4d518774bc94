"""Finding faces in a photo and cropping them the way FER2013's faces were cropped.

Two detectors: OpenCV's Haar frontal-face cascade (ships inside opencv-python-headless < 5) and YuNet
(`cv2.FaceDetectorYN`, from an .onnx file the user gives). Each returns boxes (x, y, w, h) in the photo's pixels.

FER2013's faces were framed by a face detector, so each detector's box maps to that framing by a fixed scale and
shift, measured by running the detector on FER2013 test faces (upscaled 4x, with replicated borders) and comparing
its box with the image frame: Haar's box is the FER2013 frame (median side 0.98 of it, centred), YuNet's box is
narrower and sits slightly high (median width 0.77, height 1.01, centre 2.3% above the frame's).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emolens.errors import EmolensError

DETECTORS = ("haar", "yunet")
# Detection runs on a copy no larger than this: faces stay far above the minimum size, and Haar's cost grows
# with the pixel count (a 12-megapixel photo would take seconds).
DETECT_MAX_SIDE = 1024
DEFAULT_MIN_FACE = 40


@dataclass(frozen=True)
class Framing:
    """How a detector's box maps to a FER2013-style square crop: side = scale * max(w, h), centre moved down by dy * side."""

    scale: float
    dy: float


FRAMINGS = {"haar": Framing(scale=1 / 0.98, dy=0.0), "yunet": Framing(scale=1 / 1.01, dy=0.023)}


class FaceDetector(ABC):
    """Finds faces in a gray (H, W) uint8 photo; boxes are (K, 4) int arrays of x, y, w, h, sorted left to right."""

    name: str

    def __init__(self, min_face: int = DEFAULT_MIN_FACE) -> None:
        if min_face < 1:
            raise EmolensError(f"--min-face must be a positive number of pixels, not {min_face}.")
        self.min_face = min_face
        self.framing = FRAMINGS[self.name]

    def detect(self, gray: np.ndarray) -> np.ndarray:
        scale = min(1.0, DETECT_MAX_SIDE / max(gray.shape))
        if scale < 1.0:
            # Sizes computed here, at least a pixel: OpenCV's own rounding empties a very thin strip and fails.
            size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
            small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        else:
            small = gray
        boxes = self._detect(small, max(1, round(self.min_face * scale)))
        if len(boxes) == 0:
            return np.zeros((0, 4), dtype=np.int64)
        boxes = np.round(np.asarray(boxes, dtype=np.float64) / scale).astype(np.int64)
        boxes = boxes[(boxes[:, 2] >= self.min_face) & (boxes[:, 3] >= self.min_face)]
        return boxes[np.lexsort((boxes[:, 1], boxes[:, 0]))]

    @abstractmethod
    def _detect(self, gray: np.ndarray, min_face: int) -> np.ndarray:
        """Boxes (K, 4) as x, y, w, h in `gray`'s pixels, for faces at least `min_face` pixels wide."""


class HaarDetector(FaceDetector):
    """OpenCV's Haar cascade for frontal faces: no model file needed, fast, misses turned faces."""

    name = "haar"
    CASCADE = "haarcascade_frontalface_default.xml"

    def __init__(self, min_face: int = DEFAULT_MIN_FACE) -> None:
        super().__init__(min_face)
        path = Path(cv2.data.haarcascades) / self.CASCADE
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise EmolensError(f"OpenCV's Haar cascade is missing ({path}). Install opencv-python-headless<5.")

    def _detect(self, gray: np.ndarray, min_face: int) -> np.ndarray:
        # 5 neighbours rejects most false positives on textured backgrounds. No histogram equalisation: on
        # photos with large flat areas it distorts the face's contrast and the cascade misses it (measured).
        return self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_face, min_face))


class YuNetDetector(FaceDetector):
    """YuNet, a small CNN detector: finds turned and small faces Haar misses. Needs its .onnx file."""

    name = "yunet"
    SCORE_THRESHOLD = 0.7

    def __init__(self, model_file: str | os.PathLike, min_face: int = DEFAULT_MIN_FACE) -> None:
        super().__init__(min_face)
        if not Path(model_file).is_file():
            raise EmolensError(f"no YuNet model at {model_file}. Pass the face_detection_yunet .onnx file with --detector-model.")
        try:
            self.net = cv2.FaceDetectorYN.create(str(model_file), "", (320, 320), self.SCORE_THRESHOLD)
        except cv2.error as error:
            raise EmolensError(f"could not load the YuNet model {model_file}: {error.msg.strip() or error}") from error

    def _detect(self, gray: np.ndarray, min_face: int) -> np.ndarray:
        self.net.setInputSize((gray.shape[1], gray.shape[0]))
        _, faces = self.net.detect(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
        if faces is None:
            return np.zeros((0, 4))
        return faces[:, :4]


def make_detector(kind: str = "haar", *, model_file: str | os.PathLike | None = None, min_face: int = DEFAULT_MIN_FACE) -> FaceDetector:
    """A face detector by name: "haar" (built in) or "yunet" (needs `model_file`)."""
    if kind == "haar":
        return HaarDetector(min_face)
    if kind == "yunet":
        if model_file is None:
            raise EmolensError("the YuNet detector needs its model file: pass --detector-model face_detection_yunet_2023mar.onnx.")
        return YuNetDetector(model_file, min_face)
    raise EmolensError(f"unknown detector {kind!r}: choose one of {', '.join(DETECTORS)}.")


def crop_faces(gray: np.ndarray, boxes: np.ndarray, framing: Framing, size: int = 48) -> np.ndarray:
    """Square crops (K, size, size) uint8 around each box, framed as FER2013 frames faces.

    Crops reaching past the photo's edge are filled by replicating the edge pixels, as a face at the border
    would otherwise be squashed or shifted.
    """
    crops = np.empty((len(boxes), size, size), dtype=np.uint8)
    height, width = gray.shape
    for i, (x, y, w, h) in enumerate(boxes):
        side = framing.scale * max(w, h)
        cx, cy = x + w / 2, y + h / 2 + framing.dy * side
        x0, y0 = round(cx - side / 2), round(cy - side / 2)
        x1, y1 = x0 + round(side), y0 + round(side)
        inside = gray[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
        square = cv2.copyMakeBorder(inside, max(-y0, 0), max(y1 - height, 0), max(-x0, 0), max(x1 - width, 0), cv2.BORDER_REPLICATE)
        interpolation = cv2.INTER_AREA if square.shape[0] > size else cv2.INTER_LINEAR
        crops[i] = cv2.resize(square, (size, size), interpolation=interpolation)
    return crops
