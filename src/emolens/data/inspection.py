"""Finding what is wrong with a dataset before it costs a training run, and the cleaned copy that follows.

`inspect_dataset` looks at decoded arrays (so the cache makes it fast): class balance, unreadable files, files
that were not 48x48 grayscale, blank and near-constant images, exact duplicates (same decoded pixels) within
and across splits, and, on request, near duplicates and mirror images by perceptual hash. `clean_dataset`
drops what the findings say to drop; `emolens data inspect --fix` and `emolens train --dedupe` both use it.

Near duplicates: each image's 64-bit perceptual hash (pHash) takes the 8x8 lowest frequencies of its 2-D
DCT, one bit per coefficient above their median. Two images are near duplicates when their hashes differ in at
most `threshold` bits (NEAR_THRESHOLD, 4, by default), or when one's mirror-image hash is that close to the
other's. Candidates come from multi-index hashing: hashes within d bits agree exactly on at least one of d+1
bit blocks, so only images that share a block are compared, never all pairs.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from emolens._io import atomic_dir, write_text
from emolens._progress import track
from emolens.constants import IMAGE_SIZE, MAX_NEAR_THRESHOLD, NEAR_CONSTANT_STD, NEAR_THRESHOLD
from emolens.data.sources import CSV_USAGE_SPLITS, Dataset, SkippedFile, refuse_output_inside
from emolens.errors import EmolensError
from emolens.plots import plot_class_counts, plot_image_rows

logger = logging.getLogger(__name__)

# Splits in the order a cleaned copy protects them: a train image that copies a test image goes, never the test one.
SPLIT_PRIORITY = ("test", "val", "train")
_HASH_SIZE = 8
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

    def imbalance(self) -> dict[str, float | None]:
        """Largest class over smallest class, per split; None for a split that lacks a class altogether."""
        return {split: max(c.values()) / min(c.values()) if min(c.values()) else None for split, c in self.counts.items() if c}

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
        lines = []
        test_leaks = train_val = train_conflicts = train_copies = within_evaluation = 0
        for group in self.duplicate_sets():
            splits = set(group.splits)
            if "test" in splits and splits & {"train", "val"}:
                test_leaks += 1
            elif {"train", "val"} <= splits:
                train_val += 1
            elif splits == {"train"}:
                train_conflicts += group.conflicting_labels
                train_copies += not group.conflicting_labels
            else:
                within_evaluation += 1
        if test_leaks:
            lines.append(
                f"{test_leaks} duplicate group(s) put copies of test images in train or val: test accuracy is inflated. "
                "Train on a cleaned copy (--fix OUT, or `emolens train --dedupe`), which leaves those copies out."
            )
        if train_val:
            lines.append(f"{train_val} duplicate group(s) span train and val: validation accuracy is inflated; --fix leaves out the train copies.")
        if train_conflicts:
            lines.append(f"{train_conflicts} duplicate group(s) in train carry different labels, which cannot all be right; --fix drops them.")
        if train_copies:
            lines.append(f"{train_copies} duplicate group(s) in train weigh those images more than others; --fix keeps one of each.")
        if within_evaluation:
            lines.append(f"{within_evaluation} duplicate group(s) lie within test or val; --fix leaves evaluation images as they are, so check them.")
        if self.blank or self.near_constant:
            lines.append(f"{len(self.blank) + len(self.near_constant)} blank or near-constant image(s) hold no face; --fix drops them.")
        if self.skipped:
            lines.append(f"{len(self.skipped)} file(s) or row(s) could not be used and are left out of training (reasons in the report).")
        if self.converted:
            lines.append(f"{len(self.converted)} image(s) were not 48x48 grayscale; emolens resizes them, so check they are face crops.")
        for split, names in self.missing_classes().items():
            lines.append(f"{split} has no images of {', '.join(names)}: add some, or those classes cannot be learned or measured.")
        train, ratio = self.counts.get("train"), self.imbalance().get("train")
        if train and ratio and ratio > 10:
            rare = min(train, key=train.get)
            lines.append(
                f"Classes are imbalanced ({ratio:.1f}x; fewest: {rare}, {train[rare]} images): "
                "report macro-F1 and per-class recall, and consider --class-weight sqrt."
            )
        if self.near is None:
            lines.append("Near duplicates and mirror images were not searched; add --near.")
        return lines or ["No problems found."]

    def to_dict(self) -> dict[str, Any]:
        def refs(items: Iterable[ImageRef]) -> list[dict[str, str]]:
            return [ref.to_dict() for ref in items]

        return {
            "source": self.source,
            "class_names": list(self.class_names),
            "counts": self.counts,
            "imbalance": {split: None if ratio is None else round(ratio, 2) for split, ratio in self.imbalance().items()},
            "missing_classes": self.missing_classes(),
            "summary": self.summary(),
            "verdict": self.verdict(),
            "near_threshold": self.near_threshold if self.near is not None else None,
            "near_constant_std": NEAR_CONSTANT_STD,
            "skipped": [{"file": s.name, "reason": s.reason} for s in self.skipped],
            "not_48x48_gray": [{**ref.to_dict(), "format": fmt} for ref, fmt in self.converted],
            "blank": refs(self.blank),
            "near_constant": refs(self.near_constant),
            "exact_duplicates": [g.to_dict() for g in self.exact],
            "near_duplicates": None if self.near is None else [g.to_dict() for g in self.near],
        }


def perceptual_hashes(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """64-bit DCT perceptual hashes of (N, H, W) gray images, and of their mirror images, as uint64 arrays.

    The 8x8 lowest DCT frequencies come from two small matrix products per image; mirroring an image only flips
    the sign of its odd horizontal frequencies, so the mirror hashes cost nothing more.
    """
    size = images.shape[-1]
    k, n = np.arange(_HASH_SIZE)[:, None], np.arange(size)[None, :]
    basis = np.cos(np.pi * (2 * n + 1) * k / (2 * size)).astype(np.float32)  # (8, W): DCT-II rows
    low = basis @ images.astype(np.float32) @ basis.T  # (N, 8, 8)
    mirror = low * np.where(np.arange(_HASH_SIZE) % 2, -1, 1).astype(np.float32)

    def bits(coefficients: np.ndarray) -> np.ndarray:
        flat = coefficients.reshape(len(coefficients), -1)
        above = flat > np.median(flat, axis=1, keepdims=True)
        return np.packbits(above, axis=1, bitorder="little").view("<u8")[:, 0]

    return bits(low), bits(mirror)


def _check_threshold(threshold: int) -> None:
    if not 0 <= threshold <= MAX_NEAR_THRESHOLD:
        raise EmolensError(f"the near-duplicate threshold must be between 0 and {MAX_NEAR_THRESHOLD} bits (received {threshold}).")


def hamming_pairs(hashes: np.ndarray, queries: np.ndarray, threshold: int, *, same: bool, chunk: int = 4096) -> np.ndarray:
    """All (query, hash) index pairs whose 64-bit hashes differ in at most `threshold` bits, as an (M, 2) array.

    With same=True the queries are the hashes themselves and each pair is given once (i < j). Queries go in
    chunks, so memory stays bounded however many candidates share a block.
    """
    _check_threshold(threshold)
    # threshold + 1 blocks of (nearly) equal width covering all 64 bits.
    edges = [round(64 * b / (threshold + 1)) for b in range(threshold + 2)]
    blocks = []
    for low, high in zip(edges, edges[1:]):
        keys = (hashes >> np.uint64(low)) & np.uint64((1 << (high - low)) - 1)
        order = np.argsort(keys, kind="stable")
        blocks.append((low, high, order, keys[order]))
    found = [np.zeros((0, 2), np.int64)]
    for first in range(0, len(queries), chunk):
        part = queries[first : first + chunk]
        for low, high, order, sorted_keys in blocks:
            query_keys = (part >> np.uint64(low)) & np.uint64((1 << (high - low)) - 1)
            start = np.searchsorted(sorted_keys, query_keys, "left")
            counts = np.searchsorted(sorted_keys, query_keys, "right") - start
            query_index = np.repeat(np.arange(len(part)), counts)
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            hash_index = order[np.repeat(start, counts) + offsets]
            keep = np.bitwise_count(part[query_index] ^ hashes[hash_index]) <= threshold
            query_index = query_index + first
            if same:
                keep &= query_index < hash_index
            found.append(np.stack([query_index[keep], hash_index[keep]], axis=1))
    return np.unique(np.concatenate(found), axis=0)


def _components(pairs: np.ndarray, count: int) -> np.ndarray:
    """Component label of each of `count` nodes in the undirected graph whose edges are `pairs`."""
    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(count, count))
    return connected_components(graph, directed=False)[1]


def inspect_dataset(dataset: Dataset, *, near: bool = False, threshold: int = NEAR_THRESHOLD) -> Inspection:
    """Checks a decoded dataset for what would spoil a training run or its test figures.

    Args:
        dataset: the Dataset from `emolens.data.load_dataset`.
        near: bool. Also search near duplicates and mirror images by perceptual hash. Defaults to False.
        threshold: int. Largest Hamming distance between pHashes for near duplicates. Defaults to 4.

    Returns:
        An Inspection; `.verdict()` says what to do, `.to_dict()` is the full report with every file.

    Example:
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
    images = np.concatenate([dataset.splits[name].images for name in splits]) if splits else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    formats = [fmt for name in splits for fmt in (dataset.splits[name].formats or ("",) * len(dataset.splits[name]))]
    report = Inspection(dataset.source, dataset.class_names, dataset.counts(), skipped=list(dataset.skipped))
    report.converted = [(ref, fmt) for ref, fmt in zip(refs, formats) if fmt and fmt != _FORMAT]

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


def _png_paths(split_name: str, class_names: tuple[str, ...], names: tuple[str, ...], labels: np.ndarray) -> list[str]:
    """Relative PNG paths in split/class/ for each image, from its own file name."""
    taken: set[str] = set()
    paths = []
    for name, label in zip(names, labels):
        base = f"{split_name}/{class_names[int(label)]}/{PurePosixPath(name).stem}"
        path, number = f"{base}.png", 2
        while path in taken:  # a.jpg and a.png in one folder
            path, number = f"{base}-{number}.png", number + 1
        taken.add(path)
        paths.append(path)
    return paths


def _write_png_tree(dataset: Dataset, folder: Path) -> None:
    """The dataset as folder/split/class/name.png, the layout every emolens command reads."""
    for split_name, counts in dataset.counts().items():
        empty = [c for c, n in counts.items() if n == 0]
        if empty:
            raise EmolensError(
                f"after cleaning, {split_name}/ has no images of {', '.join(empty)}, so the copy would not load as a "
                "dataset. Add images of those classes, or leave them out of the source."
            )
    jobs = [
        (folder / path, image)
        for split_name, split in dataset.splits.items()
        for path, image in zip(_png_paths(split_name, dataset.class_names, split.names, split.labels), split.images)
    ]
    for parent in {path.parent for path, _ in jobs}:
        parent.mkdir(parents=True, exist_ok=True)

    def save(job: tuple[Path, np.ndarray]) -> None:
        Image.fromarray(job[1], "L").save(job[0], format="PNG")

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for _ in track(pool.map(save, jobs), total=len(jobs), description="Writing the cleaned copy"):
            pass


def _write_fer2013_csv(dataset: Dataset, path: Path) -> None:
    """The dataset in the FER2013 CSV's own form (emotion,pixels,Usage), for a source that was such a CSV."""
    usage = {split: name for name, split in CSV_USAGE_SPLITS.items()}
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["emotion", "pixels", "Usage"])
        for split_name, split in dataset.splits.items():
            for label, image in zip(split.labels, split.images):
                writer.writerow([int(label), " ".join(map(str, image.ravel().tolist())), usage[split_name]])


def write_removed_list(path: str | os.PathLike, removed: list[tuple[ImageRef, str]]) -> None:
    """removed.csv: split, file, label and reason for each image a cleaning left out."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["split", "file", "label", "reason"])
    writer.writerows([ref.split, ref.name, ref.label, reason] for ref, reason in removed)
    write_text(path, buffer.getvalue())


def write_cleaned_copy(dataset: Dataset, report: Inspection, out: str | os.PathLike) -> tuple[Path, list[tuple[ImageRef, str]]]:
    """Writes the cleaned dataset into a new folder, with removed.csv listing what was left out and why.

    A folder or ZIP source becomes 48x48 PNGs in split/class/ folders; a FER2013 CSV becomes a CSV of the same
    form and name. The folder appears whole or not at all, and the source is only read.

    Returns:
        The folder written and the images left out, with reasons.
    """
    out = Path(out)
    source = Path(dataset.source)
    refuse_output_inside(out, source, "--fix")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise EmolensError(f"{out} already exists and is not empty. Choose a new folder for the cleaned copy.")
    cleaned, removed = clean_dataset(dataset, report)
    with atomic_dir(out) as building:
        if source.suffix.lower() == ".csv":
            _write_fer2013_csv(cleaned, building / source.name)
        else:
            _write_png_tree(cleaned, building)
        write_removed_list(building / "removed.csv", removed)
    logger.info("Wrote %s: %d images kept, %d left out (see removed.csv)", out, sum(len(s) for s in cleaned.splits.values()), len(removed))
    return out, removed


def write_report(dataset: Dataset, report: Inspection, out: str | os.PathLike, *, rows: int = 24) -> dict[str, Path]:
    """report.json (every finding with its files), class_counts.png, and duplicates.png showing up to `rows`
    duplicate groups, those across splits and with conflicting labels first.

    Returns:
        Each written file by name.
    """
    out = Path(out)
    refuse_output_inside(out, dataset.source)
    json_path = out / "report.json"
    write_text(json_path, json.dumps(report.to_dict(), indent=1) + "\n")
    counts = plot_class_counts(report.counts, out / "class_counts.png", title=f"Images per class ({Path(report.source).name})")
    every = report.duplicate_sets()
    shown = every[:rows]
    picture_rows = []
    for group in shown:
        members = group.members[:8]
        images = np.stack([dataset.splits[m.split].images[m.index] for m in members])
        notes = [("mirror image" if group.mirrored else "near") if group.near else "exact"]
        notes += ["across splits"] * group.across_splits + ["conflicting labels"] * group.conflicting_labels
        more = f"\n+{len(group.members) - len(members)} more" if len(group.members) > len(members) else ""
        picture_rows.append((",\n".join(notes) + more, images, [f"{m.split}\n{m.label}" for m in members]))
    title = f"{len(shown)} of {len(every)} duplicate groups (all in report.json)"
    duplicates = plot_image_rows(picture_rows, out / "duplicates.png", title=title)
    return {"report": json_path, "class_counts": counts, "duplicates": duplicates}
