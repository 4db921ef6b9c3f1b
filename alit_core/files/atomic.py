"""Files that appear whole or not at all."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def written_whole(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` to write to; when the block ends without an error it replaces `path` in
    one step (os.replace), so a reader, or a run killed part way, never sees half a file. On an error the
    temporary file is removed and `path` is left as it was.

        with written_whole(out) as tmp:
            torch.save(state, tmp)

    The temporary name is `.NAME.PID.tmp`: hidden, unique per process, and easy to sweep up after a kill.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
