"""Which images of a split an evaluation scores, in the model's classes.

Never the images a model was trained on or chose its checkpoint by: a run folder lists them (`used_images.csv`,
by name and pixels), and they are left out of the split and counted, whatever the dataset's layout (a bare folder
of class folders is every split at once). On `--split val` the run's own validation images stay.

A dataset's classes need not be the model's: other spellings (`anger`, `sadness`) are mapped by name
(`emolens.data.labels.CLASS_SYNONYMS`) or by an explicit map; images of a class the model lacks are left out and
counted; a model class the data lacks stays in the scores, where predicting it counts as wrong. With a labels file
of votes, faces whose votes tie are left out too (FER+'s protocol scores against a clear majority).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emolens.data.dataset import Split, pixel_digests
from emolens.data.labels import canonical_class, clear_majority
from emolens.errors import EmolensError
from emolens.rundir import RunDir

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassMatch:
    """How a dataset's classes meet a model's.

    Examples:
        >>> match = match_classes(("anger", "contempt", "happiness"), ["angry", "happy", "neutral"])
        >>> match.to_model.tolist(), match.renamed, match.data_only, match.model_only
        ([0, -1, 1], {'anger': 'angry', 'happiness': 'happy'}, ['contempt'], ['neutral'])
    """

    to_model: np.ndarray  # dataset class index -> model class index, -1 where the model lacks the class
    model_classes: tuple[str, ...] = ()
    renamed: dict[str, str] = field(default_factory=dict)  # dataset name -> model name, where they differ
    data_only: list[str] = field(default_factory=list)
    model_only: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"renamed": self.renamed, "data_only": self.data_only, "model_only": self.model_only}


def match_classes(
    data_classes: Sequence[str], model_classes: Sequence[str], class_map: Mapping[str, str] | None = None
) -> ClassMatch:
    """Each dataset class's model class: the explicit map first, then the same name, then a common synonym."""
    class_map = dict(class_map or {})
    unknown_targets = sorted(set(class_map.values()) - set(model_classes))
    if unknown_targets:
        raise EmolensError(
            f"the class map names {', '.join(unknown_targets)}, which the model lacks. The model knows: {', '.join(model_classes)}."
        )
    unknown_sources = sorted(set(class_map) - set(data_classes))
    if unknown_sources:
        raise EmolensError(
            f"the class map names {', '.join(unknown_sources)}, which the data lacks. The data has: {', '.join(data_classes)}."
        )
    by_canonical = {canonical_class(name): name for name in model_classes}
    targets = [
        class_map.get(name) or (name if name in model_classes else by_canonical.get(canonical_class(name)))
        for name in data_classes
    ]
    return ClassMatch(
        to_model=np.array([list(model_classes).index(t) if t else -1 for t in targets], np.int64),
        model_classes=tuple(model_classes),
        renamed={name: t for name, t in zip(data_classes, targets, strict=True) if t and t != name},
        data_only=[name for name, t in zip(data_classes, targets, strict=True) if t is None],
        model_only=[name for name in model_classes if name not in targets],
    )


@dataclass(frozen=True)
class ScoredImages:
    """The images an evaluation scores, in the model's class indices, and how many it left out and why.

    votes and source_labels are None without a labels file; a source label the model lacks is -1.
    """

    images: Split
    y_true: np.ndarray
    votes: np.ndarray | None
    source_labels: np.ndarray | None
    left_out: dict[str, int]


def scored_images(split: Split, data_classes: Sequence[str], match: ClassMatch) -> ScoredImages:
    """The split's images that can be scored against the model's classes (see the module docstring)."""
    left_out: dict[str, int] = {}
    keep = np.ones(len(split), bool)
    if split.votes is not None:
        keep = clear_majority(split.votes)
        if not keep.all():
            left_out["votes tied between classes"] = int((~keep).sum())
    for index in np.flatnonzero(match.to_model < 0):
        count = int((keep & (split.labels == index)).sum())
        if count:
            left_out[f"{data_classes[int(index)]}: a class the model lacks"] = count
    keep &= match.to_model[split.labels] >= 0
    if not keep.any():
        raise EmolensError(
            f"none of the {len(split)} images can be scored: their classes ({', '.join(sorted(set(data_classes)))}) are not the model's. "
            "Map them with --class-map DATA=MODEL,..."
        )
    chosen = split.subset(np.flatnonzero(keep))
    votes = None
    if chosen.votes is not None:
        # The vote shares of classes the model lacks drop out: a prediction can only win the shares of its own class.
        votes = np.zeros((len(chosen), len(match.model_classes)), np.float32)
        for data_index, model_index in enumerate(match.to_model):
            if model_index >= 0:
                votes[:, model_index] += chosen.votes[:, data_index]
    source = None
    if chosen.source_labels is not None:
        source = np.where(chosen.source_labels >= 0, match.to_model[np.maximum(chosen.source_labels, 0)], -1)
    return ScoredImages(chosen, match.to_model[chosen.labels], votes, source, left_out)


def _suffixes(name: str) -> list[str]:
    """A path and every shorter form of it, leading folders dropped: train/happy/a.png, happy/a.png, a.png."""
    parts = name.strip("/").split("/")
    return ["/".join(parts[start:]) for start in range(len(parts))]


class _UsedImages:
    """The images one run used for one purpose, by path and pixels. An image is one of them when either path
    ends the other (the same file seen through another root: train/happy/a.png, or happy/a.png in the train/
    folder given as a bare dataset) and the pixels are the same; a copy under another path is a duplicate that
    `data inspect` reports, not an image the run used."""

    def __init__(self) -> None:
        self.exact: set[tuple[str, str]] = set()
        self.shortened: set[tuple[str, str]] = set()

    def add(self, name: str, digest: str) -> None:
        self.exact.add((name.strip("/"), digest))
        self.shortened.update((suffix, digest) for suffix in _suffixes(name))

    def __contains__(self, key: tuple[str, str]) -> bool:
        name, digest = key
        return (name.strip("/"), digest) in self.shortened or any(
            (suffix, digest) in self.exact for suffix in _suffixes(name)
        )


def _used_by(run_dir: Path) -> dict[str, _UsedImages] | None:
    """The images a run trained on ("train") and validated on ("val"); None for a run that predates the list."""
    path = RunDir(run_dir).used_images
    if not path.is_file():
        return None
    used: dict[str, _UsedImages] = {"train": _UsedImages(), "val": _UsedImages()}
    with path.open(newline="") as file:
        for row in csv.DictReader(file):
            used.setdefault(row["split"], _UsedImages()).add(row["name"], row["digest"])
    return used


def run_validation_images(train: Split, run_dirs: Sequence[Path]) -> Split | None:
    """The images of `train` that the run(s) held out for validation (a source without val/ gives up a slice of
    train), or None where no run lists any of them: what `--split val` means for such a source."""
    lists = [used["val"] for used in (_used_by(run_dir) for run_dir in run_dirs) if used is not None]
    if not lists:
        return None
    held_out = np.array(
        [all(key in used for used in lists) for key in zip(train.names, pixel_digests(train.images), strict=True)], bool
    )
    return train.subset(np.flatnonzero(held_out)) if held_out.any() else None


def unseen_images(split: Split, split_name: str, run_dirs: Sequence[Path], data: str) -> tuple[Split, dict[str, int]]:
    """`split` less the images the runs trained on or validated on (on split "val", less only the trained-on
    ones), and how many it left out; an error when nothing is left. Split "train" is scored as asked."""
    if split_name == "train" or not run_dirs:
        return split, {}
    keys = list(zip(split.names, pixel_digests(split.images), strict=True))
    keep = np.ones(len(split), bool)
    left_out: dict[str, int] = {}
    for run_dir in run_dirs:
        used = _used_by(run_dir)
        if used is None:
            logger.warning(
                "%s does not list the images it trained on (it predates used_images.csv): check that %s is not among them.",
                run_dir,
                split_name,
            )
            continue
        for used_split, reason in (("train", "trained on"), ("val", "validated on (to choose the checkpoint)")):
            if used_split == "val" and split_name == "val":
                continue  # the run's own validation images are what --split val means
            hit = np.array([key in used[used_split] for key in keys], bool) & keep
            if hit.any():
                left_out[f"{reason} by {run_dir}"] = int(hit.sum())
                keep &= ~hit
    if not keep.any():
        raise EmolensError(
            f"every {split_name} image of {data} was used by the model's run ({', '.join(left_out)}), so it cannot "
            "test it. Evaluate on images it never saw (a test/ folder beside train/), or pass --split train to score "
            "the training images knowingly."
        )
    return (split if keep.all() else split.subset(np.flatnonzero(keep))), left_out
