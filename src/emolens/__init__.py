"""emolens: facial emotion recognition, from a FER2013-style dataset to predictions."""

__version__ = "0.1.0"
