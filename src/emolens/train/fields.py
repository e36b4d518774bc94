"""Reading a JSON object into a typed record, field by field: each field checked for its type and range once, as
it is taken, and every error naming the field by its path in the file ("data.train_images").

The readers of a run's files (`emolens.train.record.RunRecord`, `emolens.train.state.RunState`) use it; they turn
its ValueError into the one-line error that names the file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_SHOWN = 40  # characters of a refused value quoted in the message


def shown(value: object) -> str:
    """`value` as JSON, cut short: what an error quotes of a refused value."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def json_kind(value: object) -> str:
    """The JSON name of `value`'s type ("a JSON list")."""
    names = {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number"}
    return f"a JSON {names.get(type(value), 'null' if value is None else type(value).__name__)}"


def is_number(value: object) -> bool:
    """Whether a JSON value is a number (a bool is not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_count(value: object) -> bool:
    """Whether a JSON value is a whole number >= 0."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class Fields:
    """The fields of one JSON object, taken one at a time; `done` refuses any left over (an unknown field).

    Every method raises ValueError naming the field when it is missing or not what it should be.
    """

    def __init__(self, values: object, where: str = "") -> None:
        if not isinstance(values, dict):
            named = f'"{where}" is ' if where else ""
            raise ValueError(f"{named}{json_kind(values)}, not an object")
        self.values: dict[str, Any] = values
        self.where = where
        self._taken: set[str] = set()

    def name(self, key: str) -> str:
        """The field's path in the file, quoted: "data.source"."""
        return f'"{self.where}.{key}"' if self.where else f'"{key}"'

    def take(self, key: str, check: Callable[[Any], bool], expected: str) -> Any:
        """The field's value, if `check` holds for it; `expected` says what it should be, for the error."""
        self._taken.add(key)
        if key not in self.values:
            raise ValueError(f"{self.name(key)} is missing")
        value = self.values[key]
        if not check(value):
            raise ValueError(f"{self.name(key)} is not {expected} (it is {shown(value)})")
        return value

    def optional(self, key: str, read: Callable[[str], T]) -> T | None:
        """`read(key)` if the object has the field, else None (a field older files lack)."""
        self._taken.add(key)
        return read(key) if key in self.values else None

    def text(self, key: str) -> str:
        return str(self.take(key, lambda v: isinstance(v, str) and v != "", "a non-empty string"))

    def count(self, key: str) -> int:
        return int(self.take(key, is_count, "a whole number >= 0"))

    def number(self, key: str, low: float = -math.inf, high: float = math.inf) -> float:
        """A number in [low, high] (any number, infinities included, when neither is given)."""
        if low == -math.inf and high == math.inf:
            return self.take(key, is_number, "a number")  # kept as written: an int stays an int
        expected = (
            f"a number >= {low:g}"
            if high == math.inf
            else f"a number <= {high:g}"
            if low == -math.inf
            else f"a number in [{low:g}, {high:g}]"
        )
        return self.take(key, lambda v: is_number(v) and low <= v <= high, expected)

    def names(self, key: str) -> tuple[str, ...]:
        """A non-empty list of distinct non-empty strings."""
        return tuple(
            self.take(
                key,
                lambda v: (
                    isinstance(v, list)
                    and bool(v)
                    and all(isinstance(n, str) and n for n in v)
                    and len(set(v)) == len(v)
                ),
                "a list of distinct names",
            )
        )

    def texts(self, key: str) -> dict[str, str]:
        """An object of strings."""
        return dict(
            self.take(
                key,
                lambda v: isinstance(v, dict) and all(isinstance(s, str) for s in v.values()),
                "an object of strings",
            )
        )

    def nested(self, key: str) -> Fields:
        """The fields of an object inside this one."""
        return Fields(self.take(key, lambda v: isinstance(v, dict), "an object"), f"{self.where}.{key}".lstrip("."))

    def done(self) -> None:
        """Raises ValueError if the object has fields no reader took."""
        unknown = sorted(set(self.values) - self._taken)
        if unknown:
            where = f' in "{self.where}"' if self.where else ""
            raise ValueError(f"unknown field{'s' if len(unknown) > 1 else ''}{where}: {', '.join(unknown)}")
