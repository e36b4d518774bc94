"""Face detectors by name, and the settings that choose one; the package's public face.

Its rooms: `base.py`, what a detector is (`FaceDetector`, the `Detections` it gives); `registry.py`, the
detectors by name (`register_detector`, `detector_names`) and the settings that choose one (`DetectorConfig`);
`framing.py`, how a detector's box becomes the classifier's crop (`Framing`, `crop_faces`). Every other module
is a detector, one file each (`yunet.py`, `haar.py`), registered when the registry lists the detectors.

FER2013's faces were framed by a face detector, so each detector's box maps to that framing by a fixed scale and
shift (`Framing`), measured by `bench/framing.py` on FER2013's own test faces.
"""

from emolens.predict.detectors.base import Detections, FaceDetector
from emolens.predict.detectors.framing import Framing, crop_faces, crop_squares
from emolens.predict.detectors.registry import (
    DEFAULT_DETECTOR,
    DEFAULT_DETECTOR_CONFIG,
    DEFAULT_MIN_FACE,
    DetectorConfig,
    DetectorSpec,
    detector_names,
    list_detectors,
    register_detector,
    unregister_detector,
)

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
