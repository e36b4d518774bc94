"""Data: sources -> decoded uint8 arrays -> model input."""

from emolens.data.cache import load_dataset
from emolens.data.dataset import Dataset, SkippedFile, Split
from emolens.data.labels import LabelsFile, apply_labels, read_labels
from emolens.data.preprocess import to_model_input

__all__ = [
    "Dataset",
    "LabelsFile",
    "SkippedFile",
    "Split",
    "apply_labels",
    "load_dataset",
    "read_labels",
    "to_model_input",
]
