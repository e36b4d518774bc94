"""Face detectors by name, and the settings that choose one.

Each detector is one module in this package that registers its class with `@register_detector`; importing the
package finds them all, so adding a detector is adding a file. A `DetectorConfig` (name, model file, smallest
face) is the one object that says which detector to use: the CLI, the Python API and serve's worker processes
all pass it along and build the detector from it.

FER2013's faces were framed by a face detector, so each detector's box maps to that framing by a fixed scale and
shift (`Framing`), measured by `bench/framing.py` on FER2013's own test faces.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import cv2
import numpy as np

from emolens.data.preprocess import resize_face
from emolens.errors import EmolensError

DEFAULT_DETECTOR = "yunet"
DEFAULT_MIN_FACE = 40
# Detection runs on a copy no larger than this: faces stay far above the minimum size, and a detector's cost
# grows with the pixel count (a 12-megapixel photo would take seconds with Haar).
DETECT_MAX_SIDE = 1024


@dataclass(frozen=True)
class Framing:
    """How a detector's box maps to a FER2013-style square crop: side = scale * max(w, h), centre moved down by dy * side.

    Examples:
        >>> crop_squares(np.array([[20, 20, 40, 40]]), Framing(scale=1.5, dy=0.0)).tolist()   # x, y, side
        [[10, 10, 60]]
    """

    scale: float
    dy: float


@dataclass(frozen=True)
class Detections:
    """Faces found in one picture, left to right: boxes (K, 4) int x, y, w, h; scores (K,) in [0, 1] or None
    where the detector gives none; landmarks (K, 5, 2) as x, y (eyes, nose tip, mouth corners) or None.

    Examples:
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
    most DETECT_MAX_SIDE pixels, and are registered with `@register_detector`.

    Examples:
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


@dataclass(frozen=True)
class DetectorSpec:
    """A registered detector: its class and a line for `--help` and the README.

    Examples:
        >>> spec = list_detectors()[0]
        >>> spec.name, spec.detector.__name__
        ('yunet', 'YuNetDetector')
    """

    name: str
    detector: type[FaceDetector]
    description: str


_DETECTORS: dict[str, DetectorSpec] = {}


def register_detector(name: str, *, framing: Framing, description: str):
    """Class decorator: registers a FaceDetector subclass under `name`, with its FER2013 framing.

    Examples:
        >>> @register_detector("mine", framing=Framing(scale=1.2, dy=0.0), description="my detector")  # doctest: +SKIP
        ... class MyDetector(FaceDetector):
        ...     def _detect(self, gray):
        ...         ...   # (boxes, scores or None, landmarks or None)
    """

    def add(detector: type[FaceDetector]) -> type[FaceDetector]:
        if name in _DETECTORS:
            raise ValueError(f"A detector named '{name}' is already registered.")
        detector.name, detector.framing = name, framing
        _DETECTORS[name] = DetectorSpec(name, detector, description)
        return detector

    return add


def _load_builtin_detectors() -> None:
    # Every module of this package is a detector; importing it registers it.
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def detector_names() -> list[str]:
    """The registered detector names, default first.

    Examples:
        >>> detector_names()
        ['yunet', 'haar']
    """
    _load_builtin_detectors()
    return sorted(_DETECTORS, key=lambda name: (name != DEFAULT_DETECTOR, name))


def list_detectors() -> list[DetectorSpec]:
    """Every registered detector's spec, default first.

    Examples:
        >>> [spec.name for spec in list_detectors()]
        ['yunet', 'haar']
    """
    return [_DETECTORS[name] for name in detector_names()]


@dataclass(frozen=True)
class DetectorConfig:
    """Which detector to use, and how.

    Args:
        name: a registered detector ("yunet", the default, or "haar"; see `detector_names()`).
        model_file: the detector's model file, for detectors that take one; None uses the bundled one.
        min_face: smallest face side, in the photo's pixels, worth reporting. Defaults to 40.
        options: detector-specific settings (YuNet: "score_threshold"), as plain values.

    Examples:
        >>> DetectorConfig("haar", min_face=60).build().name
        'haar'
    """

    name: str = DEFAULT_DETECTOR
    model_file: str | None = None
    min_face: int = DEFAULT_MIN_FACE
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.min_face < 1:
            raise EmolensError(f"min_face must be a positive number of pixels, not {self.min_face}.")

    def build(self) -> FaceDetector:
        """The detector these settings describe; an unknown name suggests close ones."""
        names = detector_names()
        if self.name not in _DETECTORS:
            close = difflib.get_close_matches(self.name, names, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise EmolensError(f"unknown detector '{self.name}'.{hint} Detectors: {', '.join(names)}.")
        return _DETECTORS[self.name].detector(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DetectorConfig:
        return cls(**values)


# The settings a caller gets by naming none: one shared instance, as a default argument's would be.
DEFAULT_DETECTOR_CONFIG = DetectorConfig()


def crop_squares(boxes: np.ndarray, framing: Framing) -> np.ndarray:
    """The square each face is cropped from, (K, 3) ints: left x, top y and side in the picture's pixels
    (it may reach past the picture's edge).

    Examples:
        >>> crop_squares(np.array([[20, 20, 40, 40]]), Framing(scale=1.5, dy=0.0)).tolist()
        [[10, 10, 60]]
    """
    squares = np.empty((len(boxes), 3), dtype=np.int64)
    for i, (x, y, w, h) in enumerate(boxes):
        side = framing.scale * max(w, h)
        cx, cy = x + w / 2, y + h / 2 + framing.dy * side
        squares[i] = round(cx - side / 2), round(cy - side / 2), round(side)
    return squares


def crop_faces(gray: np.ndarray, boxes: np.ndarray, framing: Framing, size: int = 48) -> np.ndarray:
    """Square crops (K, size, size) uint8 around each box, framed as FER2013 frames faces (see `crop_squares`).

    Crops reaching past the photo's edge are filled by replicating the edge pixels, as a face at the border
    would otherwise be squashed or shifted.

    Examples:
        >>> crop_faces(np.zeros((100, 100), np.uint8), np.array([[20, 20, 40, 40]]), Framing(scale=1.0, dy=0.0)).shape
        (1, 48, 48)
    """
    crops = np.empty((len(boxes), size, size), dtype=np.uint8)
    height, width = gray.shape
    for i, (x0, y0, side) in enumerate(crop_squares(boxes, framing)):
        x1, y1 = x0 + side, y0 + side
        inside = gray[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
        square = cv2.copyMakeBorder(
            inside, max(-y0, 0), max(y1 - height, 0), max(-x0, 0), max(x1 - width, 0), cv2.BORDER_REPLICATE
        )
        crops[i] = resize_face(square, size)
    return crops


__all__ = [
    "DEFAULT_DETECTOR",
    "DEFAULT_DETECTOR_CONFIG",
    "DEFAULT_MIN_FACE",
    "Detections",
    "DetectorConfig",
    "DetectorSpec",
    "FaceDetector",
    "Framing",
    "crop_faces",
    "crop_squares",
    "detector_names",
    "list_detectors",
    "register_detector",
]
