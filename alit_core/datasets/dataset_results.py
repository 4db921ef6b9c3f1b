"""A results file of `encode-dataset` (Parquet, one row per image), read back for analysis.

    results = read_results("results.parquet")
    results.token_histogram("cat")          # {32: 120, 64: 410, ...} for one class
    results.correlation("png_bpp")          # Spearman's rho of tokens against PNG size, with its 95% CI
    results.image_file(0)                   # the image of row 0, inside the dataset's folder

The columns are those `dataset_encoding.COLUMNS` documents; only `path` and `num_tokens` are required,
so a file filtered or rewritten with pandas, polars or DuckDB still opens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..analysis.complexity import MEASURES
from ..analysis.statistics import bootstrap_ci, spearman
from ..errors import ResultsFileError
from .image_files import IMAGE_EXTENSIONS
from .shard_files import pyarrow_modules

NO_CLASS = "(no class)"  # the class of files directly in the dataset's folder
_SCALARS = ("width", "height", "num_tokens", "iteration", "met")


@dataclass
class DatasetResults:
    """Every row of a results file as numpy columns (N rows), and the run's recorded settings."""

    source: Path
    settings: dict  # the run's settings as encode-dataset recorded them ({} for a file without them)
    path: np.ndarray  # (N,) str, relative to the dataset's folder
    classes: np.ndarray  # (N,) str; NO_CLASS for files directly in the folder
    num_tokens: np.ndarray  # (N,) int
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # the other scalar columns present
    final_l1: np.ndarray | None = None  # (N,) the last iteration run's L1, when the file has `l1`
    final_psnr: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.path)

    @property
    def root(self) -> Path | None:
        """The dataset's folder, where it can be found: encode-dataset records only the folder's name (a
        results file travels without the paths of the machine that made it), so this is the folder of that
        name beside the results file, when there is one; else None (give the folder to image_file)."""
        name = self.settings.get("root_name")
        if not name or Path(name).name != name:
            return None
        guess = self.source.parent / name
        return guess if guess.is_dir() else None

    @property
    def measures(self) -> list[str]:
        """The complexity measures this file has, in alit_core.analysis.complexity's order."""
        return [m for m in MEASURES if m in self.columns]

    def class_names(self) -> list[str]:
        """The classes, most images first (ties by name)."""
        names, counts = np.unique(self.classes, return_counts=True)
        return [str(n) for _, n in sorted(zip(-counts, names))]

    def rows(self, cls: str | None = None) -> np.ndarray:
        """Indices of one class's rows (all rows for None), in file order."""
        return np.arange(len(self)) if cls is None else np.flatnonzero(self.classes == cls)

    def token_histogram(self, cls: str | None = None, rows: np.ndarray | None = None) -> dict[int, int]:
        """How many images got each token count (only the counts that occur), for one class, these rows,
        or all."""
        values, counts = np.unique(self.num_tokens[self.rows(cls) if rows is None else rows], return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}

    def correlation(self, measure: str, cls: str | None = None, bootstrap: int = 1000, seed: int = 0) -> dict:
        """Spearman's rho of token counts against one complexity measure, with its bootstrap 95% CI
        (rows whose measure is missing are left out): {"rho", "ci95", "n"}."""
        if measure not in self.columns:
            raise ResultsFileError(f"this results file has no {measure!r} column (it has: "
                                   f"{', '.join(self.measures) or 'no complexity measures'})")
        idx = self.rows(cls)
        x, y = self.num_tokens[idx].astype(np.float64), self.columns[measure][idx].astype(np.float64)
        keep = np.isfinite(y)
        x, y = x[keep], y[keep]
        return {"rho": spearman(x, y), "ci95": bootstrap_ci(x, y, n=bootstrap, seed=seed), "n": int(len(x))}

    def image_file(self, i: int, root: str | Path | None = None) -> Path:
        """Row i's image file under `root` (default: the dataset's folder beside the results file, `root`). Only an existing image
        file inside that folder is returned: a row naming '../..' or another file is refused (ValueError),
        since a results file may come from anyone."""
        base = Path(root) if root else self.root
        if base is None:
            raise ResultsFileError("the folder of this results file's images is not beside it: give the folder")
        if not 0 <= int(i) < len(self):
            raise IndexError(f"row {i} of {len(self)}")
        base = base.resolve()
        p = (base / str(self.path[int(i)])).resolve()
        if not p.is_relative_to(base) or p.suffix.lower() not in IMAGE_EXTENSIONS:
            raise ResultsFileError(f"row {i} names {self.path[int(i)]!r}, not an image inside {base}")
        if not p.is_file():
            raise ResultsFileError(f"{p} is not on this machine (the results were made where the images are)")
        return p


def read_results(path: str | Path) -> DatasetResults:
    """Read a results file written by `encode-dataset` (or any Parquet file with `path` and `num_tokens`)."""
    pa, pq = pyarrow_modules()
    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as err:
        raise ResultsFileError(f"{path.name} is not a readable Parquet file ({err})") from err
    missing = [c for c in ("path", "num_tokens") if c not in table.column_names]
    if missing:
        raise ResultsFileError(f"{path.name} has no {' or '.join(missing)} column: it is not a results file "
                               "of encode-dataset")
    _check_types(table, path.name, pa)
    meta = (table.schema.metadata or {}).get(b"alit")
    try:
        settings = json.loads(meta) if meta else {}
    except ValueError:
        settings = {}
    if not isinstance(settings, dict):  # (a file rewritten by hand: its settings are only informative)
        settings = {}
    classes = table.column("class").to_pylist() if "class" in table.column_names else [None] * table.num_rows
    cols = {c: table.column(c).to_numpy(zero_copy_only=False) for c in (*_SCALARS, *MEASURES)
            if c in table.column_names and c != "num_tokens"}
    for c, v in cols.items():  # nulls become NaN (numbers) so that a missing measure is left out, not a crash
        cols[c] = np.asarray([np.nan if x is None else x for x in v], dtype=np.float64) if v.dtype == object else v
    return DatasetResults(
        source=path, settings=settings,
        path=np.asarray(table.column("path").to_pylist(), dtype=object),
        classes=np.asarray([NO_CLASS if c is None else str(c) for c in classes], dtype=object),
        num_tokens=np.asarray(table.column("num_tokens").fill_null(0).to_numpy(), dtype=np.int64),
        columns=cols, final_l1=_last(table, "l1"), final_psnr=_last(table, "psnr"))


def _check_types(table, name: str, pa) -> None:
    """Each known column of the kind encode-dataset writes, else a ResultsFileError naming it (a file
    rewritten by other tools may drop columns, but a column of another kind cannot be read as ours)."""
    t = pa.types
    number = lambda f: t.is_integer(f) or t.is_floating(f) or t.is_boolean(f)  # noqa: E731
    kinds = {"path": ("text", lambda f: t.is_string(f) or t.is_large_string(f)),
             "class": ("text", lambda f: t.is_string(f) or t.is_large_string(f) or t.is_null(f)),
             "num_tokens": ("whole numbers", t.is_integer),
             **{c: ("numbers", number) for c in (*_SCALARS, *MEASURES) if c != "num_tokens"},
             **{c: ("lists of numbers", lambda f: (t.is_list(f) or t.is_large_list(f)) and number(f.value_type))
                for c in ("l1", "psnr")}}
    for column, (kind, ok) in kinds.items():
        if column in table.column_names and not ok(table.schema.field(column).type):
            raise ResultsFileError(f"{name}: column {column!r} holds {table.schema.field(column).type}, not "
                                   f"{kind}: it is not a results file of encode-dataset")


def _last(table, name: str) -> np.ndarray | None:
    """The last element of each row's list column (NaN for an empty or missing list)."""
    if name not in table.column_names:
        return None
    return np.asarray([v[-1] if v else np.nan for v in table.column(name).to_pylist()], dtype=np.float64)
