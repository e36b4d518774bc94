"""Face detectors by name, and the settings that choose one: the registry, and the package's public face.

Every module of this package is a detector (as `yunet.py`, the default): a `FaceDetector` subclass that
registers itself with `@register_detector`, imported the first time the registry is asked (`emolens._plugins`),
so adding a detector is adding a file here. The machinery lives beside the package and is re-exported here:
`predict/detection.py`, what a detector is (`FaceDetector`, the `Detections` it gives); `predict/framing.py`, how
a detector's box becomes the classifier's crop (`Framing`, `crop_faces`). FER2013's faces were framed by a face
detector, so each detector's box maps to that framing by a fixed scale and shift (`Framing`), measured by
`bench/framing.py` on FER2013's own test faces.

A `DetectorConfig` (name, model file, smallest face) is the one object that says which detector to use: the CLI,
the Python API and serve's worker processes all pass it along and build the detector from it.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Any

from emolens._plugins import import_plugins
from emolens.errors import EmolensError
from emolens.predict.detection import Detections, FaceDetector
from emolens.predict.framing import Framing, crop_faces, crop_squares

DEFAULT_DETECTOR = "yunet"
DEFAULT_MIN_FACE = 40


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

    The class implements `_detect(gray, min_face)`: on a gray (H, W) uint8 picture, the faces of at least
    `min_face` pixels as (boxes (K, 4) x, y, w, h; scores (K,) or None; landmarks (K, 5, 2) or None).
    `FaceDetector.detect` does the rest (shrinking large pictures, dropping small and absurd boxes, ordering).

    Examples:
        >>> import numpy as np
        >>> from emolens.predict.detectors import DetectorConfig, FaceDetector, Framing, register_detector
        >>> @register_detector("one_box", framing=Framing(scale=1.0, dy=0.0), description="one fixed face")
        ... class OneBox(FaceDetector):
        ...     def _detect(self, gray, min_face):
        ...         return np.array([[10, 20, 60, 60]]), np.array([0.9]), None   # no landmarks
        >>> found = DetectorConfig("one_box").build().detect(np.zeros((100, 120), np.uint8))
        >>> found.boxes.tolist(), found.scores.tolist()
        ([[10, 20, 60, 60]], [0.9])
        >>> unregister_detector("one_box")   # an example's detector goes with it
    """

    def add(detector: type[FaceDetector]) -> type[FaceDetector]:
        if name in _DETECTORS:
            raise ValueError(f"A detector named '{name}' is already registered.")
        detector.name, detector.framing = name, framing
        _DETECTORS[name] = DetectorSpec(name, detector, description)
        return detector

    return add


def unregister_detector(name: str) -> None:
    """Removes a detector registered with `@register_detector` outside this package (for a test or an
    example); the built-in ones stay.

    Examples:
        >>> unregister_detector("yunet")
        Traceback (most recent call last):
        ...
        ValueError: 'yunet' is a built-in detector: it cannot be unregistered.
    """
    detector_names()  # the built-ins first, so that they are known as such
    if name not in _DETECTORS:
        raise ValueError(f"No detector named '{name}' is registered.")
    if _DETECTORS[name].detector.__module__.rpartition(".")[0] == __name__:  # a module of this package
        raise ValueError(f"'{name}' is a built-in detector: it cannot be unregistered.")
    del _DETECTORS[name]


def detector_names() -> list[str]:
    """The registered detector names, default first.

    Examples:
        >>> detector_names()
        ['yunet', 'haar']
    """
    import_plugins(__name__)  # every module of this package is a detector; importing it registers it
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
        name: a registered detector (see `detector_names()`). Defaults to "yunet".
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
    "unregister_detector",
]
