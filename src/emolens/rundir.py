"""The files of a run folder, named in one place: what `emolens train` writes there after every epoch, and what
`emolens evaluate` writes beside them (or into any folder given with --out)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from emolens.errors import EmolensError


@dataclass(frozen=True)
class RunDir:
    """A run folder, or an evaluation folder: where each file emolens writes there lives.

    Attributes:
        path: the folder.
    """

    path: Path

    def __init__(self, path: str | os.PathLike) -> None:
        object.__setattr__(self, "path", Path(path))

    # Written by training.
    @property
    def model(self) -> Path:
        """The best epoch's classifier (by validation accuracy), float32."""
        return self.path / "model.keras"

    @property
    def checkpoint(self) -> Path:
        """The last finished epoch: the whole trainer with its optimizer and training state
        (`emolens.train.state.RunState`), for --resume."""
        return self.path / "last.keras"

    @property
    def config(self) -> Path:
        """Every setting, the class names, the data and the environment: read and written as
        `emolens.train.record.RunRecord`."""
        return self.path / "config.json"

    @property
    def history(self) -> Path:
        return self.path / "history.csv"

    @property
    def curves(self) -> Path:
        return self.path / "curves.png"

    @property
    def skipped(self) -> Path:
        return self.path / "skipped_files.txt"

    @property
    def teacher_answers(self) -> Path:
        """A distilled run's teacher answers for its training images (.npy), computed once: a resumed run
        learns from the same targets and needs the teacher no more."""
        return self.path / "teacher_answers.npy"

    @property
    def used_images(self) -> Path:
        """Every image the run trained on or chose its checkpoint by (split, name, pixel digest): evaluate leaves
        them out of any other split."""
        return self.path / "used_images.csv"

    @property
    def removed(self) -> Path:
        """The images --dedupe left out, with reasons."""
        return self.path / "removed.csv"

    # Written by evaluation.
    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def predictions(self) -> Path:
        return self.path / "predictions.csv"

    @property
    def classification_report(self) -> Path:
        return self.path / "classification_report.txt"

    @property
    def confusion_matrix(self) -> Path:
        return self.path / "confusion_matrix.png"

    @property
    def misclassified(self) -> Path:
        return self.path / "misclassified.png"

    @property
    def explained_mistakes(self) -> Path:
        return self.path / "misclassified_explained.png"

    @property
    def reliability(self) -> Path:
        return self.path / "reliability.png"

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    def damaged(self, why: object) -> EmolensError:
        """The error for a config.json that cannot be used, saying why and what to do."""
        return EmolensError(f"{self.config} is damaged ({why}): restore it, or train the run again.")

    def is_run(self) -> bool:
        """Whether training wrote this folder (it has a config.json)."""
        return self.config.is_file()

    @classmethod
    def holding(cls, model_file: str | os.PathLike) -> RunDir | None:
        """The run folder a model file lies in, or None for a model outside one."""
        folder = cls(Path(model_file).parent)
        return folder if folder.is_run() else None
