"""Time to load FER2013: the first load decodes every JPEG, the second comes from the decoded-array cache.

Usage: python bench/load_time.py [--data ../shared/data/fer2013.zip]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def dataset_path(description: str) -> Path | None:
    """The bench's one argument, --data (the shared FER2013 zip by default); None, said on stderr, if it is missing."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "fer2013.zip")
    data = parser.parse_args().data
    if not data.exists():
        print(f"error: no dataset at {data}; pass --data", file=sys.stderr)
        return None
    return data


def main() -> int:
    data = dataset_path(__doc__.splitlines()[0])
    if data is None:
        return 2
    with tempfile.TemporaryDirectory() as cache:
        os.environ["EMOLENS_CACHE_DIR"] = cache  # an empty cache, so the first load really decodes
        from emolens.data import load_dataset

        timings = []
        for _ in range(3):
            start = time.perf_counter()
            dataset = load_dataset(data)
            timings.append(time.perf_counter() - start)
    images = sum(len(split) for split in dataset.splits.values())
    print("| source | images | first load (decode) | cached load (best of 2) | decode rate |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(
        f"| {data.name} | {images:,} | {timings[0]:.2f} s | {min(timings[1:]):.2f} s | {images / timings[0]:,.0f} img/s |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
