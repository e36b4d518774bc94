"""Labels from a file instead of the folders: one class per image, or a distribution of votes over classes.

A labels file is a CSV keyed by each image's path in its source (`path` first, as `train/happy/a.jpg` or with the
source's top folder, `fer2013/train/happy/a.jpg`), then either one `label` column naming a class, or one column per
class holding votes or probabilities (FER+'s `neutral,happiness,...,contempt,unknown,NF`). Column names are mapped
onto emolens's class names (`happiness` -> `happy`, ...). Columns that are not emotions (`unknown`, `NF`) are not
classes: a face whose top vote is one of them is left out, and their votes leave the others' distribution.

`apply_labels` turns a Dataset labelled by its folders into one labelled by the file: `labels` become the votes'
majority, `votes` the distribution, and `source_labels` keep what the folders said. Every image the file does not
cover, or leaves out, is listed in the Dataset's `skipped` with why, never dropped silently.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from emolens._io import read_file
from emolens.data.dataset import Dataset, SkippedFile, Split
from emolens.errors import EmolensError

# Other names datasets give emolens's classes (FER+, AffectNet, RAF-DB, CK+ spell them their own way).
CLASS_SYNONYMS: dict[str, str] = {
    "anger": "angry",
    "angered": "angry",
    "disgusted": "disgust",
    "disgusting": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "calm": "neutral",
    "neutrality": "neutral",
    "contemptuous": "contempt",
}
# Vote columns that are not emotions: a face whose top vote is one of these is left out.
NOT_EMOTIONS = frozenset({"unknown", "nf", "not_a_face", "notaface", "not a face", "uncertain"})
# Columns a labels file may carry that are neither classes nor the key (FER+'s count of merged rows).
IGNORED_COLUMNS = frozenset({"ferplus_rows", "usage", "split"})
KEY_COLUMNS = ("path", "file", "filename", "image", "name")
LABEL_COLUMNS = ("label", "class", "emotion", "expression")
MAX_LABELS_BYTES = 512 * 1024 * 1024
LABELS_HINT = "A labels file is a CSV: path, then a label column, or one column of votes per class."


def canonical_class(name: str) -> str:
    """A class name as emolens spells it: lower case, common synonyms mapped.

    Examples:
        >>> canonical_class("Happiness"), canonical_class("anger"), canonical_class("contempt")
        ('happy', 'angry', 'contempt')
    """
    name = name.strip().lower()
    return CLASS_SYNONYMS.get(name, name)


@dataclass(frozen=True)
class LabelsFile:
    """What a labels file says, by path: `votes[i]` over `class_names` for `paths[i]`, and which rows to leave out.

    A file of one class per image is read as one vote for that class, so both kinds flow through one path.

    Examples:
        >>> text = "path,neutral,happiness,unknown\\ntrain/a.jpg,2,8,0\\ntrain/b.jpg,1,0,9\\n"
        >>> labels = parse_labels(text, "votes.csv")
        >>> labels.class_names, labels.votes.astype(float).round(2).tolist(), labels.left_out
        (('happy', 'neutral'), [[0.8, 0.2]], ('train/b.jpg',))
    """

    source: str
    class_names: tuple[str, ...]
    paths: tuple[str, ...]
    votes: np.ndarray  # (N, classes) float32, each row sums to 1 (the not-emotion votes removed)
    left_out: tuple[str, ...]  # paths whose top vote was not an emotion (or that had no emotion votes)
    soft: bool  # True for a file of votes, False for one class per image

    def index(self) -> dict[str, int]:
        """Every path and every shorter form of it (leading folders dropped) to its row, for matching sources
        whose top folder was stripped; a shorter form two paths share is dropped as ambiguous."""
        by_suffix: dict[str, int] = {}
        ambiguous: set[str] = set()
        for row, path in enumerate(self.paths + self.left_out):
            parts = path.strip("/").split("/")
            for start in range(len(parts)):
                suffix = "/".join(parts[start:])
                if suffix in by_suffix and by_suffix[suffix] != row:
                    ambiguous.add(suffix)
                by_suffix.setdefault(suffix, row)
        for suffix in ambiguous:
            del by_suffix[suffix]
        return by_suffix


def _columns(header: list[str], source: str) -> tuple[str, list[str], list[str]]:
    """The key column, the class columns and the not-emotion columns of a header."""
    lowered = [h.strip().lower() for h in header]
    key = next((h for h, low in zip(header, lowered, strict=True) if low in KEY_COLUMNS), header[0] if header else "")
    rest = [h for h in header if h != key and h.strip().lower() not in IGNORED_COLUMNS]
    if not rest:
        raise EmolensError(f"{source} has no label or class columns. {LABELS_HINT}")
    return (
        key,
        [h for h in rest if h.strip().lower() not in NOT_EMOTIONS],
        [h for h in rest if h.strip().lower() in NOT_EMOTIONS],
    )


def parse_labels(text: str, source: str) -> LabelsFile:
    """The labels file `source` whose contents are `text` (see the module docstring for the two forms)."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    key, class_columns, other_columns = _columns(header, source)
    single = len(class_columns) == 1 and class_columns[0].strip().lower() in LABEL_COLUMNS and not other_columns
    rows = [row for row in reader if row and any(cell.strip() for cell in row)]
    position = {h: i for i, h in enumerate(header)}
    paths = [row[position[key]].strip().replace("\\", "/") for row in rows if len(row) == len(header)]
    if len(paths) != len(rows):
        raise EmolensError(f"{source} has rows with a different number of fields than its header. {LABELS_HINT}")
    duplicates = [p for p, n in Counter(paths).items() if n > 1]
    if duplicates:
        raise EmolensError(f"{source} labels {duplicates[0]} more than once. Give each image one row.")
    if single:
        names = [canonical_class(row[position[class_columns[0]]]) for row in rows]
        class_names = tuple(sorted(set(names) - {""}))
        counts = np.zeros((len(rows), len(class_names) + 1), np.float64)
        for i, name in enumerate(names):
            counts[i, class_names.index(name) if name else len(class_names)] = 1  # an empty label: left out
    else:
        class_names = tuple(sorted(canonical_class(c) for c in class_columns))
        if len(set(class_names)) != len(class_names):
            raise EmolensError(f"{source} has two columns for one class ({', '.join(class_columns)}). Merge them.")
        order = [next(c for c in class_columns if canonical_class(c) == name) for name in class_names] + other_columns
        try:
            counts = np.array([[float(row[position[c]] or 0) for c in order] for row in rows], np.float64).reshape(
                len(rows), len(order)
            )
        except ValueError as error:
            raise EmolensError(f"{source} holds a vote that is not a number ({error}). {LABELS_HINT}") from error
        if not np.isfinite(counts).all() or (counts < 0).any():
            raise EmolensError(f"{source} holds a negative or infinite vote. Votes are counts or probabilities >= 0.")
    return _labels_file(source, class_names, paths, counts, soft=not single)


def _labels_file(
    source: str, class_names: tuple[str, ...], paths: list[str], counts: np.ndarray, soft: bool
) -> LabelsFile:
    emotions = counts[:, : len(class_names)]
    top_other = counts[:, len(class_names) :].max(axis=1, initial=0.0)
    # A tie between an emotion and unknown/not-a-face leaves the face out too: nobody's majority was an emotion.
    kept = (emotions.sum(axis=1) > 0) & (emotions.max(axis=1, initial=0.0) > top_other)
    votes = emotions[kept] / emotions[kept].sum(axis=1, keepdims=True)
    return LabelsFile(
        source,
        class_names,
        tuple(p for p, k in zip(paths, kept, strict=True) if k),
        votes.astype(np.float32),
        tuple(p for p, k in zip(paths, kept, strict=True) if not k),
        soft,
    )


def read_labels(path: str | os.PathLike) -> LabelsFile:
    """Reads a labels file (at most 512 MB), or raises EmolensError saying what is wrong with it.

    Examples:
        >>> votes = read_labels("fer2013-ferplus.csv")                   # doctest: +SKIP
        >>> votes.class_names, len(votes.paths), len(votes.left_out)     # doctest: +SKIP
        (('angry', 'contempt', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise'), 31686, 453)
    """
    path = Path(path)
    try:
        data = read_file(path, limit=MAX_LABELS_BYTES)
    except OSError as error:
        raise EmolensError(f"cannot read the labels file {path}: {error}. {LABELS_HINT}") from error
    return parse_labels(data.decode("utf-8-sig", errors="replace"), str(path))


def clear_majority(votes: np.ndarray) -> np.ndarray:
    """Which rows of a vote distribution have one top class (FER+'s protocol leaves ties out of accuracy).

    Examples:
        >>> clear_majority(np.array([[0.5, 0.5, 0.0], [0.6, 0.3, 0.1]])).tolist()
        [False, True]
    """
    top_two = np.sort(votes, axis=1)[:, -2:]
    return top_two[:, 1] > top_two[:, 0] + 1e-6 if votes.shape[1] > 1 else np.ones(len(votes), bool)


NOT_COVERED = "not in the labels file"
NOT_AN_EMOTION = "top vote not an emotion (unknown or not a face)"


def _relabel_split(
    split: Split, old_names: tuple[str, ...], labels: LabelsFile, rows: dict[str, int], skipped: list[SkippedFile]
) -> Split:
    new_index = {name: i for i, name in enumerate(labels.class_names)}
    # What the folders said, as an index into the file's classes (-1 where the file has no such class).
    source_index = np.array([new_index.get(canonical_class(name), -1) for name in old_names], np.int64)
    left_out_rows = set(range(len(labels.paths), len(labels.paths) + len(labels.left_out)))
    kept, votes = [], []
    for i, name in enumerate(split.names):
        row = rows.get(name.strip("/"))
        if row is None:
            skipped.append(SkippedFile(name, f"{NOT_COVERED} {labels.source}; left out"))
        elif row in left_out_rows:
            skipped.append(SkippedFile(name, f"{NOT_AN_EMOTION} in {labels.source}; left out"))
        else:
            kept.append(i)
            votes.append(labels.votes[row])
    kept_index = np.asarray(kept, np.int64)
    part = split.subset(kept_index)
    vote_array = np.asarray(votes, np.float32).reshape(len(kept), len(labels.class_names))
    majority = vote_array.argmax(axis=1).astype(np.int64)
    return replace(
        part, labels=majority, votes=vote_array if labels.soft else None, source_labels=source_index[part.labels]
    )


def apply_labels(dataset: Dataset, labels: LabelsFile) -> Dataset:
    """`dataset` labelled by `labels`: its class names become the file's, each image's label the votes' majority
    (ties go to the first class in order), and images the file does not cover or leaves out move to `skipped`.

    Examples:
        >>> split = Split(np.zeros((2, 48, 48), np.uint8), np.array([0, 1]), ("train/happy/a.jpg", "train/sad/b.jpg"))
        >>> dataset = Dataset("faces", ("happy", "sad"), {"train": split})
        >>> labelled = apply_labels(dataset, parse_labels("path,happiness,sadness,neutral\\ntrain/happy/a.jpg,1,1,8\\n", "v.csv"))
        >>> labelled.class_names, labelled.split("train").labels.tolist(), labelled.split("train").source_labels.tolist()
        (('happy', 'neutral', 'sad'), [1], [0])
        >>> [s.reason.split(";")[0] for s in labelled.skipped]
        ['not in the labels file v.csv']
    """
    rows = labels.index()
    skipped, splits, labelling = list(dataset.skipped), {}, {}
    for name, split in dataset.splits.items():
        before = len(skipped)
        splits[name] = _relabel_split(split, dataset.class_names, labels, rows, skipped)
        reasons = Counter(NOT_COVERED if s.reason.startswith(NOT_COVERED) else NOT_AN_EMOTION for s in skipped[before:])
        labelling[name] = dict(sorted(reasons.items()))
    empty = [name for name, split in splits.items() if not len(split)]
    if empty:
        raise EmolensError(
            f"the labels file {labels.source} covers none of the {empty[0]} images of {dataset.source}. "
            "Its paths must be the images' paths in the source (as train/happy/a.jpg)."
        )
    return Dataset(
        dataset.source, labels.class_names, splits, tuple(skipped), dataset.fingerprint, labels.source, labelling
    )


def labels_summary(dataset: Dataset) -> dict[str, dict[str, object]]:
    """Per split, for a dataset labelled by a file: images labelled, left out by reason, ties, and how often the
    folders' own label is the votes' clear majority (FER2013's agree with FER+'s on about 63%). Empty without one.

    Examples:
        >>> votes = np.array([[0.9, 0.1], [0.5, 0.5]])
        >>> split = Split(np.zeros((2, 48, 48), np.uint8), np.array([0, 1]), ("a", "b"), (), votes, np.array([1, 1]))
        >>> labels_summary(Dataset("d", ("happy", "sad"), {"train": split}, labels_file="v.csv"))["train"]["folder_agrees_with_majority"]
        0.0
    """
    if not dataset.labels_file:
        return {}
    summary: dict[str, dict[str, object]] = {}
    for name, split in dataset.splits.items():
        clear = clear_majority(split.votes) if split.votes is not None else np.ones(len(split), bool)
        source = split.source_labels
        known = clear & (source >= 0) if source is not None else np.zeros(len(split), bool)
        agree = float((source[known] == split.labels[known]).mean()) if source is not None and known.any() else None
        summary[name] = {
            "labelled": len(split),
            "left_out": dataset.labelling.get(name, {}),
            "tied": int((~clear).sum()),
            "folder_agrees_with_majority": agree,
            "compared": int(known.sum()),
        }
    return summary
