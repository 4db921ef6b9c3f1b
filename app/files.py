"""Files the page serves (pictures, exports, CSVs): each written once, complete, under a fresh name.

gradio saves a numpy picture to its cache under a name taken from the picture's bytes and
rewrites that file in place every time the same picture is output again (a streamed gallery
re-sends every earlier iteration), so a browser still reading the previous copy gets a short
file (net::ERR_CONTENT_LENGTH_MISMATCH, a broken thumbnail). Handing gradio a path instead
makes it copy the file once (to a staging name, then renamed) and reuse that copy. So every
output is written here first, to a name no other output has, and never touched again.

Each event that writes gets its own folder; only the newest `keep` folders stay, so a server
that runs for weeks holds a bounded number of them.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
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
    (attention overlays) take a fresh name each time (`fresh`).
    """

    def __init__(self, outputs: OutputDir):
        self.outputs = outputs
        self.folder = outputs.folder()
        self._paths: dict[str, str] = {}
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
            return self._write(f"{name}_{next(self._serial)}", image)

    def _write(self, name: str, image: np.ndarray) -> str:
        if not self.folder.exists():  # removed as one of the oldest: this run carries on in a new one
            self.folder = self.outputs.folder()
        path = self.folder / f"{name}.png"
        tmp = path.with_suffix(".tmp")
        Image.fromarray(np.ascontiguousarray(image)).save(tmp, format="PNG", compress_level=1)
        os.replace(tmp, path)
        return str(path)
