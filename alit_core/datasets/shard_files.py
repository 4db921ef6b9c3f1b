"""The Parquet files of an encode-dataset run: one per finished shard, merged into the results file.

A shard file appears complete or not at all (written to a temporary name, then renamed), so a
shard file that exists is finished. pyarrow is imported on first use: the rest of alit_core runs
without it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..analysis.complexity import MEASURES
from ..errors import DatasetEncodeError
from ..files.atomic import written_whole

_MERGE_ROWS = 65536  # rows per Parquet row group in the merged file


def pyarrow_modules():
    """(pyarrow, pyarrow.parquet), imported on first use: the rest of alit_core runs without them."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as err:
        raise DatasetEncodeError(
            "results files are Parquet, written and read with pyarrow, which is not installed: pip install pyarrow"
        ) from err
    return pa, pq


def schema(measure: bool):
    pa, _ = pyarrow_modules()
    fields = [
        pa.field("path", pa.string(), nullable=False),
        pa.field("class", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("num_tokens", pa.int32()),
        pa.field("iteration", pa.int32()),
        pa.field("met", pa.bool_()),
        pa.field("l1", pa.list_(pa.float32())),
        pa.field("psnr", pa.list_(pa.float32())),
    ]
    if measure:
        fields += [pa.field(m, pa.float64()) for m in MEASURES]
    return pa.schema(fields)


def shard_path(parts: Path, shard: int) -> Path:
    return parts / f"shard-{shard:06d}.parquet"


def write_shard(parts: Path, shard: int, rows: list[dict], errors: list[dict], measure: bool) -> Path:
    """One finished shard, atomically: the file appears complete or not at all. Its bad files
    ride in the file's metadata, so that one file says everything about the shard."""
    pa, pq = pyarrow_modules()
    sch = schema(measure).with_metadata({"alit_errors": json.dumps(errors)})
    table = pa.Table.from_pylist(rows, schema=sch)
    final = shard_path(parts, shard)
    with written_whole(final) as tmp:
        pq.write_table(table, tmp)
    return final


def merge_shards(parts: Path, n_shards: int, out: Path, errors_path: Path, measure: bool,
                 metadata: dict) -> tuple[int, list[dict]]:
    """Shards in order into `out` (atomically), bad files into `errors_path` (CSV); (rows, errors)."""
    pa, pq = pyarrow_modules()
    sch = schema(measure).with_metadata({"alit": json.dumps(metadata, sort_keys=True)})
    rows, errors, pending = 0, [], []
    with written_whole(out) as tmp, pq.ParquetWriter(tmp, sch) as writer:
        def flush():
            if pending:
                writer.write_table(pa.concat_tables(pending).replace_schema_metadata(sch.metadata))
                pending.clear()

        for s in range(n_shards):
            path = shard_path(parts, s)
            if not path.exists():
                raise DatasetEncodeError(f"shard {s} is missing ({path}); run the same command again to finish it")
            table = pq.read_table(path)
            errors += json.loads(table.schema.metadata[b"alit_errors"])
            pending.append(table.replace_schema_metadata(None))
            rows += table.num_rows
            if sum(t.num_rows for t in pending) >= _MERGE_ROWS:
                flush()
        flush()
    with written_whole(errors_path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "reason"])
        w.writeheader()
        w.writerows(errors)
    return rows, errors


def read_metadata(path) -> dict:
    """The run settings recorded in a results file (checkpoint, criterion, counts, ...)."""
    _, pq = pyarrow_modules()
    return json.loads(pq.read_schema(path).metadata[b"alit"])
