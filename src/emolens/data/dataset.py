"""What a dataset source becomes: a `SourceListing` before decoding, a `Dataset` of `Split`s after it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emolens.constants import IMAGE_SIZE
from emolens.errors import EmolensError


@dataclass(frozen=True)
class Split:
    """One split of a dataset: decoded images, their class indices, and where each came from.

    Examples:
        >>> split = Split(np.zeros((3, 48, 48), np.uint8), np.array([0, 1, 1]), ("a.png", "b.png", "c.png"))
        >>> len(split), split.subset(np.array([2])).names
        (3, ('c.png',))
    """

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64, indices into Dataset.class_names
    names: tuple[str, ...]
    # Each file's own "WIDTHxHEIGHT MODE" before decoding (empty when unknown).
    formats: tuple[str, ...] = ()
    # With a labels file of votes (emolens.data.labels): (N, classes) float32 vote shares, whose majority `labels`
    # holds; None when each image has one class.
    votes: np.ndarray | None = None
    # With a labels file: the class the source itself gave each image (its folder), as an index into the
    # dataset's class names, -1 where the labels file has no such class; None without a labels file.
    source_labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: np.ndarray) -> Split:
        formats = tuple(self.formats[i] for i in indices) if self.formats else ()
        return Split(
            self.images[indices],
            self.labels[indices],
            tuple(self.names[i] for i in indices),
            formats,
            None if self.votes is None else self.votes[indices],
            None if self.source_labels is None else self.source_labels[indices],
        )

    def targets(self, num_classes: int) -> np.ndarray:
        """What a model learns to output: the vote shares, or one-hot labels. (N, num_classes) float32."""
        if self.votes is not None:
            return self.votes.astype(np.float32)
        return np.eye(num_classes, dtype=np.float32)[self.labels]


@dataclass(frozen=True)
class SkippedFile:
    """A file a source held that could not be used, and why (listed in runs' skipped.txt and by data inspect).

    Examples:
        >>> SkippedFile("train/happy/notes.txt", "not an image").reason
        'not an image'
    """

    name: str
    reason: str


@dataclass(frozen=True)
class Dataset:
    """Every split of a source, decoded. `fingerprint` is a cheap key from the listing, for the cache.

    Examples:
        >>> from emolens.data import load_dataset
        >>> dataset = load_dataset("fer2013.zip")                                  # doctest: +SKIP
        >>> dataset.class_names[:3], dataset.split("test").images.shape          # doctest: +SKIP
        (('angry', 'disgust', 'fear'), (3589, 48, 48))
    """

    source: str
    class_names: tuple[str, ...]
    splits: dict[str, Split]
    skipped: tuple[SkippedFile, ...] = ()
    fingerprint: str = ""
    # The labels file that labelled it (emolens.data.labels), or "" when its folders did; and, by split, how
    # many images it left out, by reason (not covered by the file, top vote not an emotion).
    labels_file: str = ""
    labelling: dict[str, dict[str, int]] = field(default_factory=dict)

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise EmolensError(
                f"{self.source} has no '{name}' split (it has: {', '.join(self.splits) or 'none'}). "
                f"Add a {name}/ folder with one subfolder per class, or choose another split."
            )
        return self.splits[name]

    def content_digest(self) -> str:
        """A hash of the decoded pixels, labels and class names: the same for a copied, moved or re-zipped source.

        Resume compares it, since file times (part of `fingerprint`) change whenever a dataset is copied.
        """
        digest = hashlib.sha256("\n".join(self.class_names).encode())
        for name in sorted(self.splits):
            split = self.splits[name]
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(split.images).tobytes())
            digest.update(split.labels.astype("<i8").tobytes())
            for extra in (split.votes, split.source_labels):
                if extra is not None:
                    digest.update(np.ascontiguousarray(extra).tobytes())
        return digest.hexdigest()[:16]

    def with_classes(self, class_names: tuple[str, ...]) -> Dataset:
        """The same images under a wider list of classes (a model's, when fine-tuning it on data that lacks some
        of them): labels, votes and source labels re-indexed; the classes the data lacks simply have no images.

        Examples:
            >>> split = Split(np.zeros((2, 48, 48), np.uint8), np.array([0, 1]), ("a", "b"))
            >>> Dataset("d", ("happy", "sad"), {"train": split}).with_classes(("angry", "happy", "sad")).split("train").labels.tolist()
            [1, 2]
        """
        missing = sorted(set(self.class_names) - set(class_names))
        if missing:
            raise EmolensError(f"{self.source} has classes outside {', '.join(class_names)}: {', '.join(missing)}.")
        index = np.array([class_names.index(name) for name in self.class_names], np.int64)

        def widened(split: Split) -> Split:
            votes = None
            if split.votes is not None:
                votes = np.zeros((len(split), len(class_names)), np.float32)
                votes[:, index] = split.votes
            source = (
                None
                if split.source_labels is None
                else np.where(split.source_labels >= 0, index[np.maximum(split.source_labels, 0)], -1)
            )
            return Split(split.images, index[split.labels], split.names, split.formats, votes, source)

        splits = {name: widened(split) for name, split in self.splits.items()}
        return Dataset(
            self.source, tuple(class_names), splits, self.skipped, self.fingerprint, self.labels_file, self.labelling
        )

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per class in each split, for logs and run files."""
        return {
            split_name: {
                c: int(n)
                for c, n in zip(self.class_names, np.bincount(s.labels, minlength=len(self.class_names)), strict=True)
            }
            for split_name, s in self.splits.items()
        }


@dataclass
class SourceListing:
    """What a source holds before decoding: file names with a way to read each, and folder names."""

    kind: str
    files: list[tuple[str, Callable[[], bytes]]] = field(default_factory=list)
    folders: set[str] = field(default_factory=set)
    fingerprint_parts: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    # How a source read whole decodes itself (the CSV); None for a tree of split and class folders, whose files
    # `decode_listing` decodes one by one.
    decode: Callable[[SourceListing, Path, str], Dataset] | None = None

    def fingerprint(self) -> str:
        """A cheap key for the cache: the kind, the model input size and every part the lister recorded."""
        digest = hashlib.sha256(f"{self.kind}\n{IMAGE_SIZE}\n".encode())
        for part in self.fingerprint_parts:
            digest.update(part.encode("utf-8", "surrogateescape") + b"\n")
        return digest.hexdigest()[:16]


def pixel_digests(images: np.ndarray) -> list[str]:
    """A short hash of each image's pixels: with its name, what tells that a run used this very image.

    Examples:
        >>> a, b = pixel_digests(np.stack([np.zeros((48, 48), np.uint8), np.ones((48, 48), np.uint8)]))
        >>> len(a), a != b
        (16, True)
    """
    return [hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=8).hexdigest() for image in images]


def split_arrays(items: list[tuple[str, np.ndarray, str]], labels: list[int]) -> Split:
    """(name, image, format) items and their labels as one Split."""
    images = np.stack([image for _, image, _ in items]) if items else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    return Split(
        images, np.asarray(labels, dtype=np.int64), tuple(item[0] for item in items), tuple(item[2] for item in items)
    )
