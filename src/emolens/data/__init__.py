"""Data: sources -> decoded uint8 arrays -> model input."""

from emolens.data.cache import load_dataset
from emolens.data.preprocess import to_model_input
from emolens.data.dataset import Dataset, SkippedFile, Split

__all__ = ["Dataset", "SkippedFile", "Split", "load_dataset", "to_model_input"]
