"""Files a visitor hands the server: one upload read by alit_core's loader (its message names the visitor's
file, not the server's copy), uploads with zips opened within size caps (Batch), and the images a shared
link may name (only the server's own copies and the bundled examples)."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import gradio as gr

import alit_core
from alit_core import ALITError

from . import explorer
from .status import Refused

GONE = ("The image of this link is no longer on the server (it keeps files for a while only): upload it again, "
        "or pick an example.")  # also for a path that is not one of its images (linkable)


def linkable(path, own: Path) -> bool:
    """An image a link may name: a file still in gradio's cache (uploads and examples as served), one still in
    the server's `own` output folder (an image the Dataset tab opened in Explore) or a bundled example; never
    another file of the server's, whatever the link's values say."""
    if not path:
        return False
    p = Path(str(path)).resolve()
    roots = (Path(gr.utils.get_upload_folder()).resolve(), Path(own).resolve(), (explorer.ASSETS / "samples").resolve())
    return p.is_file() and any(p.is_relative_to(root) for root in roots)


def read_upload(path: str, size: int) -> explorer.Upload:
    """An uploaded file through alit_core's loader; whatever is wrong with it becomes a message."""
    try:
        return explorer.prepare(path, size)
    except ALITError as err:
        raise Refused(upload_message(err, path)) from err


def upload_message(err: Exception, path: str, name: str | None = None) -> str:
    # alit_core names the file it read, which is gradio's temporary copy on the server; the user
    # knows it by its own name (gradio keeps that as the copy's file name).
    return str(err).replace(repr(str(path)), repr(name or Path(path).name))


def expand_uploads(paths: list[str], limit: int = 200, max_entry_bytes: int = 50 * 2**20,
                   max_total_bytes: int = 500 * 2**20, dest: str | Path | None = None,
                   ) -> tuple[list[tuple[str, str]], list[str]]:
    """Uploaded files, with zips opened: (name, path) pairs, at most `limit`, and what was skipped.

    A zip is unpacked entry by entry against the sizes its directory declares (zipfile never reads
    past them), so a zip bomb stops at the caps instead of filling the disk. Entries go into `dest`
    (default: a new temporary folder); the caller removes it when the images are read.
    """
    out, skipped, total, unused = [], [], 0, 0
    for p in paths:
        if not zipfile.is_zipfile(p):
            if len(out) < limit:
                out.append((Path(p).name, p))
            else:
                unused += 1
            continue
        if dest is None:
            dest = tempfile.mkdtemp(prefix="alit_zip_")
        dest = Path(dest)
        try:
            with zipfile.ZipFile(p) as z:
                for info in z.infolist():
                    if info.is_dir() or Path(info.filename).suffix.lower() not in alit_core.IMAGE_EXTENSIONS:
                        continue
                    if len(out) >= limit:
                        unused += 1
                        continue
                    name = Path(info.filename).name
                    if info.file_size > max_entry_bytes:
                        skipped.append(f"{name}: too large unpacked ({info.file_size / 2**20:.0f} MB, "
                                       f"the limit is {max_entry_bytes / 2**20:.0f} MB)")
                        continue
                    if total + info.file_size > max_total_bytes:
                        skipped.append(f"{name}: the zips unpack to more than {max_total_bytes / 2**20:.0f} MB "
                                       "in all")
                        continue
                    target = dest / f"{len(out):04d}_{name}"
                    target.write_bytes(z.read(info))
                    total += info.file_size
                    out.append((name, str(target)))
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError) as err:
            # damaged, encrypted (RuntimeError) or an unsupported compression (NotImplementedError)
            skipped.append(f"{Path(p).name}: cannot unpack this zip ({err})")
    if unused:
        skipped.append(f"{unused} image(s) beyond the first {limit} were not used")
    return out, skipped
