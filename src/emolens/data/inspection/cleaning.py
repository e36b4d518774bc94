"""The cleaning plan: which images a cleaned copy (`data inspect --fix`, `train --dedupe`) leaves out, and why."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from emolens.data.dataset import Dataset
from emolens.data.inspection.findings import SPLIT_PRIORITY, ImageRef, Inspection


def cleaning_plan(report: Inspection) -> dict[tuple[str, int], tuple[ImageRef, str]]:
    """What a cleaned copy leaves out, as (split, index) -> (image, reason).

    Blank and near-constant images go from every split. Of each duplicate set (near ones too when searched):
    train and val copies of a test image go, then train copies of a val image; the train copies left keep one
    image, or none when their labels disagree. Test images are never dropped for being duplicates.
    """
    plan: dict[tuple[str, int], tuple[ImageRef, str]] = {}
    for ref in report.blank:
        plan[(ref.split, ref.index)] = (ref, "blank")
    for ref in report.near_constant:
        plan[(ref.split, ref.index)] = (ref, "near-constant")
    for group in report.duplicate_sets():
        kind = "near duplicate" if group.near else "duplicate"
        splits = set(group.splits)
        train = [m for m in group.members if m.split == "train"]
        for member in group.members:
            if member.split == "val" and "test" in splits:
                plan.setdefault((member.split, member.index), (member, f"{kind} of a test image"))
            elif member.split == "train" and splits & {"test", "val"}:
                source = "test" if "test" in splits else "val"
                plan.setdefault((member.split, member.index), (member, f"{kind} of a {source} image"))
        if splits & {"test", "val"} or len(train) < 2:
            continue
        if len({m.label for m in train}) > 1:
            for member in train:
                plan.setdefault((member.split, member.index), (member, f"{kind}s with conflicting labels"))
        else:
            for member in train[1:]:
                plan.setdefault((member.split, member.index), (member, f"{kind} within train"))
    return plan


def clean_dataset(dataset: Dataset, report: Inspection) -> tuple[Dataset, list[tuple[ImageRef, str]]]:
    """The dataset without what `cleaning_plan` drops, and the list of dropped images with reasons."""
    plan = cleaning_plan(report)
    splits = {}
    for name, split in dataset.splits.items():
        keep = np.array([i for i in range(len(split)) if (name, i) not in plan], dtype=np.int64)
        splits[name] = split.subset(keep)
    removed = sorted(plan.values(), key=lambda item: (SPLIT_PRIORITY[::-1].index(item[0].split), item[0].index))
    return replace(dataset, splits=splits), removed
