"""Files the page serves (pictures, exports, CSVs): each written once, complete, under a fresh name.

gradio saves a numpy picture to its cache under a name taken from the picture's bytes and
rewrites that file in place every time the same picture is output again (a streamed gallery
re-sends every earlier iteration), so a browser still reading the previous copy gets a short
file (net::ERR_CONTENT_LENGTH_MISMATCH, a broken thumbnail). Handing gradio a path instead
makes it copy the file once (to a staging name, then renamed) and reuse that copy. So every
output is written here first, to a name no other output has, and never touched again.

Each event that writes gets its own folder; only the newest `keep` folders stay, and a run keeps
only its newest `fresh_keep` attention overlays, so a server that runs for weeks holds a bounded
number of files here. gradio copies each file it serves into its own cache (GRADIO_TEMP_DIR), which
it cleans by age (`gr.Blocks(delete_cache=...)`, app/layout.py) but leaves the emptied folders
behind; `sweep_empty_folders` removes those.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image


class OutputDir:
    def __init__(self, root: str | Path | None = None, keep: int = 128):
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="alit_explorer_"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.keep = max(1, int(keep))
        self._count = itertools.count()
        self._lock = threading.Lock()

    def folder(self) -> Path:
        """A new, empty folder for one event's files; the oldest beyond `keep` are removed."""
        with self._lock:
            path = Path(tempfile.mkdtemp(prefix=f"{next(self._count):08d}_", dir=self.root))
            folders = sorted(p for p in self.root.iterdir() if p.is_dir())
            for old in folders[: max(0, len(folders) - self.keep)]:
                shutil.rmtree(old, ignore_errors=True)
        return path

    def folders(self) -> list[Path]:
        return sorted(p for p in self.root.iterdir() if p.is_dir())


class Pictures:
    """The pictures of one run, by name: each written once; asking again returns the same path.

    A name is for one picture only (e.g. "recon_3"); pictures that change with the controls
    (attention overlays) take a fresh name each time (`fresh`), and only the newest `fresh_keep` of
    those stay: gradio has copied each one into its cache before the page asks for the next, so a
    visitor dragging the token slider for an hour does not grow the run's folder.
    """

    def __init__(self, outputs: OutputDir, fresh_keep: int = 8):
        self.outputs = outputs
        self.folder = outputs.folder()
        self.fresh_keep = max(1, int(fresh_keep))
        self._paths: dict[str, str] = {}
        self._fresh: list[str] = []
        self._serial = itertools.count()
        self._lock = threading.Lock()

    def get(self, name: str, make) -> str:
        """The path of picture `name`, written from make() (an RGB uint8 array) the first time."""
        with self._lock:
            path = self._paths.get(name)
            if path is not None and os.path.exists(path):
                return path
            path = self._write(name, make())
            self._paths[name] = path
            return path

    def fresh(self, name: str, image: np.ndarray) -> str:
        with self._lock:
            path = self._write(f"{name}_{next(self._serial)}", image)
            self._fresh.append(path)
            for old in self._fresh[: -self.fresh_keep]:
                Path(old).unlink(missing_ok=True)
            del self._fresh[: -self.fresh_keep]
            return path

    def _write(self, name: str, image: np.ndarray) -> str:
        for attempt in range(2):
            if not self.folder.exists():  # removed as one of the oldest: this run carries on in a new one
                self.folder = self.outputs.folder()
            path = self.folder / f"{name}.png"
            tmp = path.with_suffix(".tmp")
            try:
                Image.fromarray(np.ascontiguousarray(image)).save(tmp, format="PNG", compress_level=1)
                os.replace(tmp, path)
                return str(path)
            except FileNotFoundError:  # the folder went between the check and the write
                if attempt:
                    raise
        raise AssertionError("unreachable")


def sweep_empty_folders(root: str | Path, older_than_s: float) -> int:
    """Remove the empty folders directly under `root` untouched for `older_than_s` seconds; how many.

    gradio's cache keeps each file in a folder named by the file's hash; its age-based cleaning
    (delete_cache) removes the files and leaves the folders, one per picture ever served. A folder
    is taken only when empty and old (gradio writes a new copy into it within milliseconds of
    making or reusing it), and rmdir itself refuses a folder that is not empty.
    """
    root, removed, now = Path(root), 0, time.time()
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False) and now - entry.stat(follow_symlinks=False).st_mtime > older_than_s:
                os.rmdir(entry.path)
                removed += 1
        except OSError:  # not empty, or gone already
            continue
    return removed


def sweep_deep_links(root: str | Path, older_than_s: float) -> int:
    """Remove the shared links (gradio's deep links) made more than `older_than_s` seconds ago; how many.

    gradio keeps each link's page, every component's values, in `root`/deep_links/<id>/state.json
    (about 300 KB here) until the server restarts, outside the files delete_cache ages out; a link
    older than that would show an image the server no longer holds anyway.
    """
    removed, now = 0, time.time()
    try:
        entries = list(os.scandir(Path(root) / "deep_links"))
    except FileNotFoundError:
        return 0
    for entry in entries:
        state = Path(entry.path) / "state.json"
        try:
            if now - state.stat().st_mtime > older_than_s:
                state.unlink()
                os.rmdir(entry.path)
                removed += 1
        except OSError:  # gone already, or not one of gradio's
            continue
    return removed


def start_sweeper(root: str | Path, every_s: float, older_than_s: float) -> threading.Thread:
    """A daemon thread that calls sweep_empty_folders and sweep_deep_links (root, older_than_s) every
    `every_s` seconds."""

    def loop():
        while True:
            time.sleep(every_s)
            sweep_empty_folders(root, older_than_s)
            sweep_deep_links(root, older_than_s)

    thread = threading.Thread(target=loop, name="alit-cache-sweeper", daemon=True)
    thread.start()
    return thread
