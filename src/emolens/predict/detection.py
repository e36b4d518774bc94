"""What every face detector is: a `FaceDetector` subclass that finds faces in a gray photo, and the
`Detections` it gives back. Which detectors there are, and which one to use, is the registry's job
(`detectors/`, whose modules are the detectors); how a box becomes a crop is `framing.py`'s."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import cv2
import numpy as np

from emolens.predict.framing import Framing

if TYPE_CHECKING:  # the registry builds detectors from their settings: it imports this module, not the reverse
    from emolens.predict.detectors import DetectorConfig

# Detection runs on a copy no larger than this: faces stay far above the minimum size, and a detector's cost
# grows with the pixel count (a 12-megapixel photo would take seconds with Haar).
DETECT_MAX_SIDE = 1024


@dataclass(frozen=True)
class Detections:
    """Faces found in one picture, left to right: boxes (K, 4) int x, y, w, h; scores (K,) in [0, 1] or None
    where the detector gives none; landmarks (K, 5, 2) as x, y (eyes, nose tip, mouth corners) or None.

    Examples:
        >>> from emolens.predict.detectors import DetectorConfig
        >>> found = DetectorConfig().build().detect(np.zeros((200, 200), np.uint8))   # a blank picture
        >>> len(found), found.boxes.shape
        (0, (0, 4))
    """

    boxes: np.ndarray
    scores: np.ndarray | None = None
    landmarks: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), dtype=np.int64))


class FaceDetector(ABC):
    """Finds faces in a gray (H, W) uint8 photo. Subclasses implement `_detect` on a photo already shrunk to at
    most DETECT_MAX_SIDE pixels, and are registered with `@register_detector` (whose example writes one).

    Examples:
        >>> from emolens.predict.detectors import DetectorConfig
        >>> detector = DetectorConfig("yunet").build()          # a FaceDetector, found by name
        >>> detector.name, detector.framing.scale > 0
        ('yunet', True)
    """

    name: ClassVar[str]
    framing: ClassVar[Framing]

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config

    def detect(self, gray: np.ndarray) -> Detections:
        scale = min(1.0, DETECT_MAX_SIDE / max(gray.shape))
        if scale < 1.0:
            # Sizes computed here, at least a pixel: OpenCV's own rounding empties a very thin strip and fails.
            size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
            small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        else:
            small = gray
        boxes, scores, landmarks = self._detect(small, max(1, round(self.config.min_face * scale)))
        if len(boxes) == 0:
            return Detections.empty()
        boxes = np.asarray(boxes, dtype=np.float64)
        # A picture a pixel or two high can make a CNN detector give NaN or absurd rows (seen: boxes 280 px high,
        # centred outside a 1-px strip, scored 0.9999): never faces. A face's centre is in the picture, and its
        # box at most twice the picture's size (a face that fills the frame overshoots it a little).
        height, width = small.shape
        finite = np.nan_to_num(boxes)
        centre_x, centre_y = finite[:, 0] + finite[:, 2] / 2, finite[:, 1] + finite[:, 3] / 2
        sane = (
            np.isfinite(boxes).all(axis=1)
            & (centre_x >= 0)
            & (centre_x <= width)
            & (centre_y >= 0)
            & (centre_y <= height)
            & (finite[:, 2] <= 2 * width)
            & (finite[:, 3] <= 2 * height)
        )
        boxes = np.round(np.where(sane[:, None], boxes, 0) / scale).astype(np.int64)
        keep = sane & (boxes[:, 2] >= self.config.min_face) & (boxes[:, 3] >= self.config.min_face)
        order = np.lexsort((boxes[keep, 1], boxes[keep, 0]))
        return Detections(
            boxes=boxes[keep][order],
            scores=None if scores is None else np.asarray(scores, dtype=np.float64)[keep][order],
            landmarks=None if landmarks is None else (np.asarray(landmarks, dtype=np.float64) / scale)[keep][order],
        )

    @abstractmethod
    def _detect(self, gray: np.ndarray, min_face: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(boxes (K, 4) x, y, w, h, scores (K,) or None, landmarks (K, 5, 2) or None) in `gray`'s pixels."""


__all__ = ["DETECT_MAX_SIDE", "Detections", "FaceDetector"]
