"""Recognising the emotion of every face in photos, videos and camera streams."""

from emolens.predict.collect import CollectedFaces, collect_faces
from emolens.predict.detectors import DetectorConfig
from emolens.predict.recognizer import Recognizer
from emolens.predict.results import Explanation, Face, Result
from emolens.predict.sources import Sources

__all__ = [
    "CollectedFaces",
    "DetectorConfig",
    "Explanation",
    "Face",
    "Recognizer",
    "Result",
    "Sources",
    "collect_faces",
]
