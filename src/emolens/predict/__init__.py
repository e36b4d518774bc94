"""Recognising the emotion of every face in photos, videos and camera streams."""

from emolens.predict.detectors import DetectorConfig
from emolens.predict.recognizer import Recognizer
from emolens.predict.results import Face, Result

__all__ = ["DetectorConfig", "Face", "Recognizer", "Result"]
