"""YuNet, a small CNN face detector (OpenCV model zoo, MIT): bundled with emolens and its default. It finds
turned and small faces Haar misses, gives a score per face and five landmarks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from emolens.errors import EmolensError
from emolens.models.classifier import BUNDLED_DIR
from emolens.predict.detectors import DetectorConfig, FaceDetector, Framing, register_detector

BUNDLED_MODEL = BUNDLED_DIR / "face_detection_yunet_2023mar.onnx"
DEFAULT_SCORE_THRESHOLD = 0.7


# YuNet's box is narrower than FER2013's frame and sits slightly high (bench/framing.py).
@register_detector(
    "yunet",
    framing=Framing(scale=1 / 1.005, dy=0.023),
    description="the YuNet CNN, bundled, with scores and five landmarks",
)
class YuNetDetector(FaceDetector):
    def __init__(self, config: DetectorConfig) -> None:
        super().__init__(config)
        model_file = Path(config.model_file) if config.model_file is not None else BUNDLED_MODEL
        if not model_file.is_file():
            raise EmolensError(
                f"no YuNet model at {model_file}: pass a face_detection_yunet .onnx file with --detector-model, "
                "or leave it out for the bundled one."
            )
        threshold = float(config.options.get("score_threshold", DEFAULT_SCORE_THRESHOLD))
        if not 0.0 < threshold < 1.0:
            raise EmolensError(f"YuNet's score threshold must be between 0 and 1, not {threshold}.")
        try:
            self.net = cv2.FaceDetectorYN.create(str(model_file), "", (320, 320), threshold)
        except cv2.error as error:
            raise EmolensError(f"could not load the YuNet model {model_file}: {error.msg.strip() or error}") from error

    def _detect(self, gray: np.ndarray, min_face: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.net.setInputSize((gray.shape[1], gray.shape[0]))
        _, faces = self.net.detect(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
        if faces is None:
            return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
        # Each row: x, y, w, h, then right eye, left eye, nose tip, right and left mouth corner (x, y), then score.
        return faces[:, :4], faces[:, 14], faces[:, 4:14].reshape(-1, 5, 2)
