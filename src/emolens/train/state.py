"""A run's progress, as types: the epochs done, the best epoch and its validation accuracy, the history, and the
plateau schedule's counters. It changes after every epoch and travels inside the checkpoint (last.keras's card,
as "training_state"), so a resumed run goes on from exactly where the checkpoint was written.

`RunState.end_epoch` is the one place an epoch's end changes it (the plateau schedule sets its own counters,
`RunState.plateau`); `to_dict` is what the checkpoint stores and `from_card` the one reader, checked field by field.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from emolens.errors import EmolensError
from emolens.models.card import ModelCard
from emolens.train.fields import Fields, is_number

CARD_KEY = "training_state"  # its key in the checkpoint's card


@dataclass
class PlateauState:
    """ReduceLROnPlateau's counters at the end of the last epoch (see `emolens.train.optim.PlateauSchedule`).

    Attributes:
        wait: epochs since validation loss last improved.
        best: the lowest validation loss so far; None before the first epoch.
        cooldown_counter: epochs left before another reduction may happen.
    """

    wait: int
    best: float | None
    cooldown_counter: int


@dataclass
class RunState:
    """How far a run has come, updated as its epochs end.

    Attributes:
        epochs_done: finished epochs.
        best_val_accuracy: the best validation accuracy so far (model.keras's); -1 before the first epoch.
        best_epoch: the epoch that reached it (1-based); 0 before the first epoch.
        history: one row per finished epoch, in order: epoch, accuracy, loss, val_accuracy, val_loss,
            learning_rate, seconds (history.csv's columns).
        plateau: the plateau schedule's counters, for a run on that schedule; None otherwise.

    Examples:
        >>> state = RunState()
        >>> state.end_epoch({"epoch": 1, "val_accuracy": 0.5}), state.end_epoch({"epoch": 2, "val_accuracy": 0.4})
        (True, False)
        >>> state.epochs_done, state.best_epoch, RunState.from_dict(state.to_dict()) == state
        (2, 1, True)
    """

    epochs_done: int = 0
    best_val_accuracy: float = -1.0
    best_epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    plateau: PlateauState | None = None

    def end_epoch(self, row: dict[str, float]) -> bool:
        """Records a finished epoch (its history row, with its 1-based "epoch"); whether its validation accuracy
        is the best so far, so that it becomes model.keras."""
        self.history.append(row)
        self.epochs_done = int(row["epoch"])
        best = row.get("val_accuracy", -1.0) > self.best_val_accuracy
        if best:
            self.best_val_accuracy, self.best_epoch = row["val_accuracy"], self.epochs_done
        return best

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's "training_state" object."""
        plateau = {"plateau": asdict(self.plateau)} if self.plateau is not None else {}
        return {
            "epochs_done": self.epochs_done,
            "best_val_accuracy": self.best_val_accuracy,
            "best_epoch": self.best_epoch,
            "history": [dict(row) for row in self.history],
            **plateau,
        }

    @classmethod
    def from_dict(cls, values: object) -> RunState:
        """The state `to_dict` wrote.

        Raises:
            ValueError: a field missing, unknown, of the wrong type or out of range, or a history that is not one
                row per epoch done, named.
        """
        state = Fields(values)
        result = cls(
            epochs_done=state.count("epochs_done"),
            best_val_accuracy=state.number("best_val_accuracy", low=-1, high=1),
            best_epoch=state.count("best_epoch"),
            history=state.take("history", _is_history, "a list of rows of numbers, numbered from epoch 1"),
            plateau=state.optional("plateau", lambda key: _plateau(state.nested(key))),
        )
        state.done()
        if result.best_epoch > result.epochs_done:
            raise ValueError(f'"best_epoch" {result.best_epoch} is after "epochs_done" {result.epochs_done}')
        if len(result.history) != result.epochs_done:
            raise ValueError(f'"history" has {len(result.history)} rows for {result.epochs_done} epochs done')
        return result

    @classmethod
    def from_card(cls, card: ModelCard | None, path: str | os.PathLike) -> RunState:
        """The state in `card`, the card of the checkpoint at `path` (for messages; None: a file without one).

        Raises:
            EmolensError: the card holds no training state (not a checkpoint emolens wrote), or a damaged one.
        """
        if card is None or CARD_KEY not in card.details:
            raise EmolensError(
                f"{os.fspath(path)} holds no training state: it is not a checkpoint emolens wrote. Start the run again without --resume."
            )
        try:
            return cls.from_dict(card.details[CARD_KEY])
        except ValueError as error:
            raise EmolensError(
                f"{os.fspath(path)}: its training state is damaged ({error}). Start the run again without --resume."
            ) from error

    @classmethod
    def read(cls, checkpoint: str | os.PathLike) -> RunState:
        """The state in the checkpoint (a run folder's last.keras) at `checkpoint`.

        Raises:
            EmolensError: it is not a readable checkpoint emolens wrote, or its state is damaged.
        """
        from emolens.models.saving import read_card  # imports Keras

        return cls.from_card(read_card(checkpoint), checkpoint)


def _is_history(rows: object) -> bool:
    """Whether a JSON value is a history: rows of numbers, the nth with "epoch" n."""
    return isinstance(rows, list) and all(
        isinstance(row, dict) and row.get("epoch") == number and all(is_number(v) for v in row.values())
        for number, row in enumerate(rows, start=1)
    )


def _plateau(plateau: Fields) -> PlateauState:
    result = PlateauState(
        wait=plateau.count("wait"),
        best=plateau.take("best", lambda v: v is None or is_number(v), "a number or null"),
        cooldown_counter=plateau.count("cooldown_counter"),
    )
    plateau.done()
    return result
