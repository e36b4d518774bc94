"""The files of `emolens data inspect --out DIR`: report.json and its two figures (kept out of emolens.data,
which draws nothing)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from emolens._io import write_text
from emolens.data.dataset import Dataset
from emolens.data.inspection import Inspection
from emolens.data.sources import refuse_output_inside
from emolens.plots import plot_class_counts, plot_image_rows


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
    counts = plot_class_counts(
        report.counts, out / "class_counts.png", title=f"Images per class ({Path(report.source).name})"
    )
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
