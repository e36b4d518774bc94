"""Finding what is wrong with a dataset before it costs a training run, and the cleaned copy that follows.

`inspect_dataset` looks at decoded arrays (so the cache makes it fast): class balance, unreadable files, files
that were not 48x48 grayscale, blank and near-constant images, exact duplicates (same decoded pixels) within
and across splits, and, on request, near duplicates and mirror images by perceptual hash. `clean_dataset`
drops what the findings say to drop; `emolens data inspect --fix` and `emolens train --dedupe` both use it.

The jobs live apart: `findings` (what is wrong, and the verdict), `near` (the perceptual-hash search),
`cleaning` (what a cleaned copy leaves out) and `writing` (the cleaned copy itself). The report's figures are
drawn by `emolens.inspection_report`, outside `emolens.data`.
"""

from emolens.data.inspection.cleaning import clean_dataset, cleaning_plan
from emolens.data.inspection.findings import SPLIT_PRIORITY, DuplicateGroup, ImageRef, Inspection, inspect_dataset
from emolens.data.inspection.near import hamming_pairs, perceptual_hashes
from emolens.data.inspection.writing import write_cleaned_copy, write_removed_list

__all__ = [
    "SPLIT_PRIORITY",
    "DuplicateGroup",
    "ImageRef",
    "Inspection",
    "clean_dataset",
    "cleaning_plan",
    "hamming_pairs",
    "inspect_dataset",
    "perceptual_hashes",
    "write_cleaned_copy",
    "write_removed_list",
]
