"""Recognising the emotion of every face in photos, videos and camera streams."""

from emolens.predict.recognizer import Face, ImageResult, Recognizer

__all__ = ["Face", "ImageResult", "Recognizer"]
