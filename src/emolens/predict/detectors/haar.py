"""OpenCV's Haar cascade for frontal faces: ships inside opencv-python-headless, misses turned faces and finds
faces in textures (collars, grass) that YuNet does not."""

from __future__ import annotations

from pathlib import Path

import cv2
import cv2.data  # the cascades' folder: imported by name, as cv2's type stubs leave this subpackage out
import numpy as np

from emolens.errors import EmolensError
from emolens.predict.detectors import DetectorConfig, FaceDetector, Framing, register_detector


# Haar's box is FER2013's frame: median side 0.974 of it, centred within 0.3% (bench/framing.py).
@register_detector(
    "haar",
    framing=Framing(scale=1 / 0.974, dy=0.003),
    description="OpenCV's Haar frontal-face cascade, without scores or landmarks",
)
class HaarDetector(FaceDetector):
    CASCADE = "haarcascade_frontalface_default.xml"

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__(config)
        if config.model_file is not None:
            raise EmolensError("the Haar detector takes no model file: drop --detector-model, or use --detector yunet.")
        path = Path(cv2.data.haarcascades) / self.CASCADE
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise EmolensError(f"OpenCV's Haar cascade is missing ({path}). Install opencv-python-headless<5.")

    def _detect(self, gray: np.ndarray, min_face: int) -> tuple[np.ndarray, None, None]:
        # 5 neighbours rejects most false positives on textured backgrounds. No histogram equalisation: on
        # photos with large flat areas it distorts the face's contrast and the cascade misses it (measured).
        boxes = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_face, min_face))
        return np.asarray(boxes).reshape(-1, 4), None, None
