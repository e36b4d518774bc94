"""Ray Data's ends of the Ray engine: the listing of inputs read as blocks by Ray's workers, and the Parquet
parts they write (their columns, which sources a folder of parts already holds, the sink that writes them).
Neither end passes through the driver, whose memory does not grow with the number of inputs.

Imported by `ray_engine` once Ray is known to be installed.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from ray.data import Datasink, Datasource, ReadTask
from ray.data.block import BlockAccessor, BlockMetadata

from emolens._io import atomic_path
from emolens.errors import EmolensError

PART_GLOB = "part-*.parquet"
# Rows a part holds at least (the job's last parts fewer): few parts on a long job, and a crash loses at most
# about this many rows' work per worker, which a re-run redoes.
PART_ROWS = 2000


def part_schema(class_names: list[str]) -> pa.Schema:
    """The Parquet columns (see `emolens.predict.formats.result_rows`), nullable where a value may not apply."""
    columns = [
        ("source", pa.string()),
        ("name", pa.string()),
        ("frame", pa.int64()),
        ("time", pa.float64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("face", pa.int32()),
        ("track_id", pa.int64()),
        ("x", pa.int32()),
        ("y", pa.int32()),
        ("w", pa.int32()),
        ("h", pa.int32()),
        ("score", pa.float64()),
        ("emotion", pa.string()),
        ("confidence", pa.float64()),
        *((name, pa.float64()) for name in class_names),
        ("error", pa.string()),
    ]
    return pa.schema(columns)


def _source_hashes(sources: list[str]) -> np.ndarray:
    return np.array(
        [int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little") for s in sources],
        dtype=np.uint64,
    )


class DoneSources:
    """The sources whose rows the Parquet parts in a folder already hold, kept as sorted 64-bit hashes: 8 bytes a
    source, so ten million finished inputs take 80 MB, not gigabytes of strings. With ten million done, a new
    input is taken for a done one (and skipped) with odds of about 1 in 2x10^12, 1 in 200,000 over ten million.

    Raises:
        EmolensError: a part that is not one emolens wrote (not Parquet, or without a text "source" column).
    """

    def __init__(self, out: Path) -> None:
        found = [np.zeros(0, np.uint64)]
        for part in sorted(out.glob(PART_GLOB)):
            try:
                sources = pq.read_table(part, columns=["source"]).column("source")
                if not pa.types.is_string(sources.type):
                    raise TypeError(f"its source column holds {sources.type}, not text")
            except (pa.ArrowException, OSError, KeyError, TypeError) as error:
                raise EmolensError(
                    f"{part} is not a part emolens wrote ({error}): move it out of {out}, or choose another --out."
                ) from error
            found.append(_source_hashes(sources.unique().to_pylist()))
        self.hashes = np.unique(np.concatenate(found))

    def __len__(self) -> int:
        return len(self.hashes)

    def __contains__(self, source: str) -> bool:
        if not len(self.hashes):
            return False
        wanted = _source_hashes([source])[0]
        at = int(np.searchsorted(self.hashes, wanted))
        return at < len(self.hashes) and self.hashes[at] == wanted


def _listing_blocks(path: str, row_group: int, inputs_per_block: int) -> Iterator[pa.Table]:
    records = pq.ParquetFile(path).read_row_group(row_group)
    for start in range(0, records.num_rows, inputs_per_block):
        yield records.slice(start, inputs_per_block)


class ListingSource(Datasource):
    """A listing of inputs (a Parquet file of records, written a row group at a time) as Ray Data reads it: a
    read task per row group, each giving blocks of `inputs_per_block` records. Ray hands blocks out whole to
    actors, so their size is what spreads the work evenly. The file must be where every node can read it."""

    def __init__(self, path: Path, inputs_per_block: int) -> None:
        self.path = str(path)
        self.inputs_per_block = inputs_per_block
        metadata = pq.ParquetFile(path).metadata
        self.row_groups = [metadata.row_group(index).num_rows for index in range(metadata.num_row_groups)]

    def estimate_inmemory_data_size(self) -> None:
        return None

    def get_read_tasks(
        self, parallelism: int, per_task_row_limit: int | None = None, data_context=None
    ) -> list[ReadTask]:
        return [
            ReadTask(
                partial(_listing_blocks, self.path, index, self.inputs_per_block),
                BlockMetadata(rows, None, None),
                per_task_row_limit=per_task_row_limit,
            )
            for index, rows in enumerate(self.row_groups)
        ]


class PartSink(Datasink):
    """Writes the rows Ray Data hands a write task as one Parquet part, atomically, under a name no other task
    or run takes. The rows of one input always arrive together (an actor returns whole inputs), so a part
    holds whole inputs and a re-run can skip every source a part names."""

    def __init__(self, out: Path, class_names: list[str]) -> None:
        self.out = out
        self.schema = part_schema(class_names)
        self.rows = self.parts = self.errors = 0

    @property
    def min_rows_per_write(self) -> int:
        return PART_ROWS

    def write(self, blocks, ctx) -> dict[str, int]:
        tables = [table for table in (BlockAccessor.for_block(block).to_arrow() for block in blocks) if table.num_rows]
        if not tables:
            return {"rows": 0, "parts": 0, "errors": 0}
        table = pa.concat_tables(tables).select(self.schema.names).cast(self.schema)
        with atomic_path(self.out / f"part-{uuid.uuid4().hex}.parquet") as tmp:
            pq.write_table(table, tmp)
        return {"rows": table.num_rows, "parts": 1, "errors": table.num_rows - table.column("error").null_count}

    def on_write_complete(self, write_result) -> None:
        for written in write_result.write_returns:
            self.rows += written["rows"]
            self.parts += written["parts"]
            self.errors += written["errors"]


__all__ = ["PART_GLOB", "PART_ROWS", "DoneSources", "ListingSource", "PartSink", "part_schema"]
