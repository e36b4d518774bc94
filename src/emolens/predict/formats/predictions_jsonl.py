"""predictions.jsonl: what `--json` prints, one JSON object per line."""

from __future__ import annotations

import json

from emolens.predict.formats import OutputFile, register_output_format
from emolens.predict.results import Result


@register_output_format("jsonl")
class JsonLinesFile(OutputFile):
    """predictions.jsonl: one JSON object per picture or analysed frame, as `--json` prints them (pictures
    without faces included)."""

    filename = "predictions.jsonl"

    def add(self, result: Result) -> None:
        self.lines.append(json.dumps(result.to_dict()))
