"""The image files of a dataset folder: listing them, and decoding them in DataLoader worker processes.

Files are decoded, cropped, resized and measured (complexity) in worker processes, ahead of the
encoder; a file that cannot be used becomes a `DecodedImage` with the reason, never an exception.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..analysis.complexity import complexity
from ..errors import ALITError, DatasetEncodeError
from ..files.image_io import image_to_tensor, open_image, square_crop_resize

IMAGE_EXTENSIONS = frozenset({
    ".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".bmp", ".dib", ".gif", ".tif", ".tiff",
    ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".avif",
})


def list_images(root: Path) -> list[str]:
    """Every image file under root (by extension; hidden files and folders skipped), as sorted
    relative posix paths. A file that is named like an image but is not one is kept: it is
    reported as bad when decoded, not silently dropped here."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetEncodeError(f"{root} is not a folder")
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = Path(folder).relative_to(root)
        for name in files:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                out.append((rel / name).as_posix())
    return sorted(out)


def class_of(rel_path: str) -> str | None:
    parts = rel_path.split("/")
    return parts[0] if len(parts) > 1 else None


# --------------------------------------------------------------------------- decoding in workers


@dataclass
class DecodedImage:
    index: int  # into the file list
    image: torch.Tensor | None  # (3, R, R) in [0, 1]; None when the file could not be used
    width: int = 0
    height: int = 0
    measures: dict[str, float] = field(default_factory=dict)
    error: str | None = None


class ImageFiles(torch.utils.data.Dataset):
    """The file list as a map-style dataset: item i is file i decoded (or its error)."""

    def __init__(self, root: Path, files: list[str], size: int, measure: bool):
        self.root, self.files, self.size, self.measure = Path(root), files, size, measure

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> DecodedImage:
        path = self.root / self.files[i]
        try:
            img = open_image(path)
            width, height = img.size
            x = image_to_tensor(square_crop_resize(img, self.size))
            measures = complexity(x) if self.measure else {}
        except ALITError as err:
            return DecodedImage(i, None, error=str(err))
        except Exception as err:  # a decoder bug on one odd file must not end a day-long run
            return DecodedImage(i, None, error=f"cannot use image '{path}': {type(err).__name__}: {err}")
        return DecodedImage(i, x, width, height, measures)


def decode_in_workers(root: Path, files: list[str], size: int, measure: bool, batches: list[list[int]],
                      workers: int) -> Iterator[list[DecodedImage]]:
    """The files of each batch (indices into `files`) decoded at size x size, in `workers` processes
    (0: in this one), in order."""
    if not batches:
        return iter(())
    workers = min(workers, len(batches))
    loader = torch.utils.data.DataLoader(
        ImageFiles(root, files, size, measure), batch_sampler=batches, num_workers=workers, collate_fn=_as_list,
        worker_init_fn=_worker_init if workers else None,
        multiprocessing_context=worker_context() if workers else None,
        prefetch_factor=4 if workers else None, persistent_workers=False,
    )
    return iter(loader)


def _as_list(items: list[DecodedImage]) -> list[DecodedImage]:
    return items


def _worker_init(_worker_id: int) -> None:
    import cv2

    cv2.setNumThreads(1)  # the complexity measures; one process per core already


def worker_context():
    """How worker processes start: from a clean process (forkserver; spawn where there is none).
    A plain fork copies the encoder's thread pools (OpenMP, OpenCV) with their locks as they were,
    possibly held, and a worker can then wait on one forever (seen here: a hang under pytest)."""
    import multiprocessing as mp

    return mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")


def shard_batches(shards: list[int], n_files: int, shard_size: int, batch: int) -> list[list[int]]:
    """File indices of the given shards in batches that never cross a shard boundary."""
    out = []
    for s in shards:
        lo, hi = s * shard_size, min((s + 1) * shard_size, n_files)
        out.extend(list(range(i, min(i + batch, hi))) for i in range(lo, hi, batch))
    return out
