"""faces.csv, the default output format: one row per face (per analysed frame in videos), its columns those of
`result_rows`, text cells made spreadsheet-safe."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from emolens._io import spreadsheet_safe
from emolens.predict.formats import OutputFile, register_output_format, result_rows
from emolens.predict.results import Result


@register_output_format("csv")
class CsvFile(OutputFile):
    """faces.csv: one row per face (per analysed frame in videos)."""

    filename = "faces.csv"

    def columns(self) -> list[str]:
        return [
            "source",
            "frame",
            "time",
            "face",
            "track_id",
            "x",
            "y",
            "w",
            "h",
            "score",
            "emotion",
            "confidence",
            *self.class_names,
        ]

    def header(self) -> list[str]:
        return [_csv_line(self.columns())]

    def add(self, result: Result) -> None:
        decimals, columns = {"score", "confidence", *self.class_names}, self.columns()
        for row in result_rows(result):
            if row.get("emotion") is not None:  # a face (not a picture without one)
                self.lines.append(_csv_line([_decimal(row[c]) if c in decimals else _blank(row[c]) for c in columns]))


def _csv_line(values: Sequence[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()


def _decimal(value: object) -> str:
    return "" if value is None else f"{value:.4f}"


def _blank(value: object) -> object:
    return "" if value is None else spreadsheet_safe(value)
