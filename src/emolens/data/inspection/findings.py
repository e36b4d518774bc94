"""What `emolens data inspect` finds: the findings, their verdict in words, and `inspect_dataset` that makes them."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emolens.constants import IMAGE_SIZE, NEAR_CONSTANT_STD, NEAR_THRESHOLD
from emolens.data.dataset import Dataset, SkippedFile
from emolens.data.inspection.near import _check_threshold, _components, hamming_pairs, perceptual_hashes
from emolens.data.labels import labels_summary

# Splits in the order a cleaned copy protects them: a train image that copies a test image goes, never the test one.
SPLIT_PRIORITY = ("test", "val", "train")
_FORMAT = f"{IMAGE_SIZE}x{IMAGE_SIZE} L"


@dataclass(frozen=True)
class ImageRef:
    """One image of a dataset: its split, its position there, its file name and its class."""

    split: str
    index: int
    name: str
    label: str

    def to_dict(self) -> dict[str, str]:
        return {"split": self.split, "file": self.name, "label": self.label}


@dataclass(frozen=True)
class DuplicateGroup:
    """Images that are the same picture: pixel-identical, or (near=True) within the pHash threshold."""

    members: tuple[ImageRef, ...]  # test images first, then val, then train
    near: bool = False
    mirrored: bool = False  # some member matches another only as its mirror image

    def __post_init__(self) -> None:
        ordered = sorted(self.members, key=lambda m: (SPLIT_PRIORITY.index(m.split), m.index))
        object.__setattr__(self, "members", tuple(ordered))

    @property
    def splits(self) -> list[str]:
        return sorted({m.split for m in self.members}, key=SPLIT_PRIORITY.index)

    @property
    def across_splits(self) -> bool:
        return len(self.splits) > 1

    @property
    def conflicting_labels(self) -> bool:
        return len({m.label for m in self.members}) > 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "mirrored" if self.mirrored else "near" if self.near else "exact",
            "splits": self.splits,
            "across_splits": self.across_splits,
            "conflicting_labels": self.conflicting_labels,
            "files": [m.to_dict() for m in self.members],
        }


@dataclass
class Inspection:
    """Everything `inspect_dataset` found. `to_dict` is the JSON report; `verdict` says what to do."""

    source: str
    class_names: tuple[str, ...]
    counts: dict[str, dict[str, int]]
    skipped: list[SkippedFile] = field(default_factory=list)  # unreadable files, bad CSV rows, stray files
    converted: list[tuple[ImageRef, str]] = field(default_factory=list)
    blank: list[ImageRef] = field(default_factory=list)
    near_constant: list[ImageRef] = field(default_factory=list)
    exact: list[DuplicateGroup] = field(default_factory=list)
    near: list[DuplicateGroup] | None = None  # None: not searched
    near_threshold: int = NEAR_THRESHOLD
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)  # with a labels file: see labels_summary

    def imbalance(self) -> dict[str, float | None]:
        """Largest class over smallest class, per split; None for a split that lacks a class altogether."""
        return {
            split: max(c.values()) / min(c.values()) if min(c.values()) else None
            for split, c in self.counts.items()
            if c
        }

    def missing_classes(self) -> dict[str, list[str]]:
        """Classes with no image, per split that lacks any."""
        missing = {split: [name for name, n in c.items() if n == 0] for split, c in self.counts.items()}
        return {split: names for split, names in missing.items() if names}

    def duplicate_sets(self) -> list[DuplicateGroup]:
        """Every duplicated image in exactly one group: near groups (which take in whole exact groups) and the
        exact groups no near match touches; the most serious first (across splits, then conflicting labels)."""
        groups = list(self.exact)
        if self.near is not None:
            covered = {(m.split, m.index) for g in self.near for m in g.members}
            groups = self.near + [g for g in self.exact if (g.members[0].split, g.members[0].index) not in covered]
        return sorted(groups, key=lambda g: (not g.across_splits, not g.conflicting_labels))

    def summary(self) -> dict[str, int]:
        """The headline numbers, as in the terminal and the README."""
        images = sum(sum(c.values()) for c in self.counts.values())
        numbers = {
            "images": images,
            "skipped": len(self.skipped),
            "not_48x48_gray": len(self.converted),
            "blank": len(self.blank),
            "near_constant": len(self.near_constant),
            "exact_groups": len(self.exact),
            "exact_images": sum(len(g.members) for g in self.exact),
            "exact_across_splits": sum(g.across_splits for g in self.exact),
            "exact_conflicting": sum(g.conflicting_labels for g in self.exact),
        }
        if self.near is not None:
            numbers |= {
                "near_groups": len(self.near),
                "near_images": sum(len(g.members) for g in self.near),
                "near_across_splits": sum(g.across_splits for g in self.near),
                "near_conflicting": sum(g.conflicting_labels for g in self.near),
                "near_mirrored": sum(g.mirrored for g in self.near),
            }
        return numbers

    def verdict(self) -> list[str]:
        """Short sentences, most serious first, each saying what to do; one sentence when all is well."""
        risks = Counter(_duplicate_risk(group) for group in self.duplicate_sets())
        lines = [advice.format(risks[risk]) for risk, advice in _DUPLICATE_ADVICE.items() if risks[risk]]
        lines += self._image_advice() + self._class_advice() + self._labels_advice()
        if self.near is None:
            lines.append("Near duplicates and mirror images were not searched; add --near.")
        return lines or ["No problems found."]

    def _image_advice(self) -> list[str]:
        """What to do about images that hold no face, files that could not be used and images not 48x48 gray."""
        lines = []
        if self.blank or self.near_constant:
            lines.append(
                f"{len(self.blank) + len(self.near_constant)} blank or near-constant image(s) hold no face; --fix drops them."
            )
        if self.skipped:
            lines.append(
                f"{len(self.skipped)} file(s) or row(s) could not be used and are left out of training (reasons in the report)."
            )
        if self.converted:
            lines.append(
                f"{len(self.converted)} image(s) were not 48x48 grayscale; emolens resizes them, so check they are face crops."
            )
        return lines

    def _class_advice(self) -> list[str]:
        """What to do about classes missing from a split, and about training classes far out of balance."""
        lines = [
            f"{split} has no images of {', '.join(names)}: add some, or those classes cannot be learned or measured."
            for split, names in self.missing_classes().items()
        ]
        train, ratio = self.counts.get("train"), self.imbalance().get("train")
        if train and ratio and ratio > 10:
            rare = min(train, key=train.__getitem__)
            lines.append(
                f"Classes are imbalanced ({ratio:.1f}x; fewest: {rare}, {train[rare]} images): "
                "report macro-F1 and per-class recall, and consider --class-weight sqrt."
            )
        return lines

    def _labels_advice(self) -> list[str]:
        """What to do when a labels file's votes often disagree with the training folders' labels."""
        agreement = (self.labels.get("train") or {}).get("folder_agrees_with_majority")
        if agreement is not None and agreement < 0.9:
            return [
                f"The folders' labels agree with the votes' majority on only {agreement:.0%} of "
                "training faces: train on the votes (emolens train DATA --labels FILE) and evaluate against them."
            ]
        return []

    def to_dict(self) -> dict[str, Any]:
        def refs(items: Iterable[ImageRef]) -> list[dict[str, str]]:
            return [ref.to_dict() for ref in items]

        return {
            "source": self.source,
            "class_names": list(self.class_names),
            "counts": self.counts,
            "imbalance": {
                split: None if ratio is None else round(ratio, 2) for split, ratio in self.imbalance().items()
            },
            "missing_classes": self.missing_classes(),
            "summary": self.summary(),
            "verdict": self.verdict(),
            "labels": self.labels,
            "near_threshold": self.near_threshold if self.near is not None else None,
            "near_constant_std": NEAR_CONSTANT_STD,
            "skipped": [{"file": s.name, "reason": s.reason} for s in self.skipped],
            "not_48x48_gray": [{**ref.to_dict(), "format": fmt} for ref, fmt in self.converted],
            "blank": refs(self.blank),
            "near_constant": refs(self.near_constant),
            "exact_duplicates": [g.to_dict() for g in self.exact],
            "near_duplicates": None if self.near is None else [g.to_dict() for g in self.near],
        }


# What to do about each risk a duplicate group poses (see `_duplicate_risk`), the most serious first.
_DUPLICATE_ADVICE = {
    "test_leak": "{} duplicate group(s) put copies of test images in train or val: test accuracy is inflated. "
    "Train on a cleaned copy (--fix OUT, or `emolens train --dedupe`), which leaves those copies out.",
    "train_val": "{} duplicate group(s) span train and val: validation accuracy is inflated; --fix leaves out the train copies.",
    "train_conflict": "{} duplicate group(s) in train carry different labels, which cannot all be right; --fix drops them.",
    "train_copies": "{} duplicate group(s) in train weigh those images more than others; --fix keeps one of each.",
    "within_evaluation": "{} duplicate group(s) lie within test or val; --fix leaves evaluation images as they are, so check them.",
}


def _duplicate_risk(group: DuplicateGroup) -> str:
    """Which of `_DUPLICATE_ADVICE`'s risks a duplicate group poses, by the splits it spans and its labels."""
    splits = set(group.splits)
    if "test" in splits and splits & {"train", "val"}:
        return "test_leak"
    if {"train", "val"} <= splits:
        return "train_val"
    if splits == {"train"}:
        return "train_conflict" if group.conflicting_labels else "train_copies"
    return "within_evaluation"


def inspect_dataset(dataset: Dataset, *, near: bool = False, threshold: int = NEAR_THRESHOLD) -> Inspection:
    """Checks a decoded dataset for what would spoil a training run or its test figures.

    Args:
        dataset: the Dataset from `emolens.data.load_dataset`.
        near: bool. Also search near duplicates and mirror images by perceptual hash. Defaults to False.
        threshold: int. Largest Hamming distance between pHashes for near duplicates. Defaults to 4.

    Returns:
        An Inspection; `.verdict()` says what to do, `.to_dict()` is the full report with every file.

    Examples:
        >>> report = inspect_dataset(load_dataset("fer2013.zip"), near=True)
        >>> report.summary()["exact_groups"]
    """
    if near:
        _check_threshold(threshold)
    splits = [name for name in ("train", "val", "test") if name in dataset.splits]
    refs = [
        ImageRef(name, i, split.names[i], dataset.class_names[int(label)])
        for name in splits
        for split in (dataset.splits[name],)
        for i, label in enumerate(split.labels)
    ]
    images = (
        np.concatenate([dataset.splits[name].images for name in splits])
        if splits
        else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    )
    formats = [fmt for name in splits for fmt in (dataset.splits[name].formats or ("",) * len(dataset.splits[name]))]
    report = Inspection(
        dataset.source,
        dataset.class_names,
        dataset.counts(),
        skipped=list(dataset.skipped),
        labels=labels_summary(dataset),
    )
    report.converted = [(ref, fmt) for ref, fmt in zip(refs, formats, strict=True) if fmt and fmt != _FORMAT]

    flat = images.reshape(len(images), -1)
    spread = flat.std(axis=1)
    constant = flat.min(axis=1) == flat.max(axis=1)
    report.blank = [refs[i] for i in np.flatnonzero(constant)]
    report.near_constant = [refs[i] for i in np.flatnonzero(~constant & (spread < NEAR_CONSTANT_STD))]

    # Flat images are reported as blank or near-constant, not as copies of each other: all-black squares in
    # train and test are not a leaked photo, and a flat image's pHash encodes only its faint gradient or noise.
    flat_images = set(np.flatnonzero(spread < NEAR_CONSTANT_STD).tolist())
    by_pixels: dict[bytes, list[int]] = defaultdict(list)
    for index, row in enumerate(flat):
        if index not in flat_images:
            by_pixels[hashlib.blake2b(row.tobytes(), digest_size=16).digest()].append(index)
    exact_groups = sorted((g for g in by_pixels.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))
    report.exact = [DuplicateGroup(tuple(refs[i] for i in g)) for g in exact_groups]

    if near:
        report.near = _near_groups(images, refs, exact_groups, threshold, exclude=flat_images)
        report.near_threshold = threshold
    return report


def _near_groups(
    images: np.ndarray, refs: list[ImageRef], exact_groups: list[list[int]], threshold: int, *, exclude: set[int]
) -> list[DuplicateGroup]:
    """Groups joined by near or mirror-image pHash matches; groups of pixel-identical copies alone are left out."""
    # One hash per set of identical images: their copies join through `copies` below.
    left_out = exclude | {i for g in exact_groups for i in g[1:]}
    representatives = np.array([i for i in range(len(images)) if i not in left_out], dtype=np.int64)
    if len(representatives) < 2:
        return []
    hashes, mirror_hashes = perceptual_hashes(images[representatives])
    direct = representatives[hamming_pairs(hashes, hashes, threshold, same=True)]
    mirror = representatives[hamming_pairs(hashes, mirror_hashes, threshold, same=False)]
    mirror = mirror[mirror[:, 0] != mirror[:, 1]]  # a symmetric face matches its own mirror image
    copies = np.array([[g[0], other] for g in exact_groups for other in g[1:]], dtype=np.int64).reshape(-1, 2)
    component = _components(np.concatenate([direct, mirror, copies]), len(images))
    matched = set(component[np.concatenate([direct, mirror])[:, 0]].tolist())
    direct_pairs = {tuple(sorted(pair)) for pair in direct.tolist()}
    mirrored = {component[a] for a, b in mirror.tolist() if tuple(sorted((a, b))) not in direct_pairs}
    members: dict[int, list[int]] = defaultdict(list)
    for index in np.flatnonzero(np.isin(component, list(matched))).tolist():
        members[int(component[index])].append(index)
    groups = [DuplicateGroup(tuple(refs[i] for i in m), near=True, mirrored=c in mirrored) for c, m in members.items()]
    return sorted(groups, key=lambda g: (-len(g.members), g.members[0].split, g.members[0].index))
