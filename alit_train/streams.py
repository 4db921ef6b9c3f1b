"""Training batches, deterministic in (seed, rank, step): images made on the fly from the photo index
(`SceneStream`; those of a pre-computed code pack: `code_pack.PackStream`), optionally made in worker
processes (`batches`)."""

from __future__ import annotations

import numpy as np
import torch

from .photo_bank import PhotoBank
from .scenes import make_scene, photo_crop, whole_photo
from .synthetic import simple_image
from .train_config import IMAGE_KINDS


class SceneStream:
    """Batches of training images (B, 3, S, S) in [0, 1], deterministic in (seed, rank, step)."""

    KINDS = IMAGE_KINDS

    def __init__(self, index: str, size: int, mix: dict, seed: int, rank: int, split: str = "train"):
        self.bank = PhotoBank.from_index(index)
        self.size, self.seed, self.rank, self.split = size, seed, rank, split
        self.kinds = list(mix)
        p = np.array([mix[k] for k in self.kinds], dtype=float)
        self.p = p / p.sum()

    def image(self, rng: np.random.Generator) -> np.ndarray:
        kind = self.kinds[rng.choice(len(self.kinds), p=self.p)]
        if kind == "scene":
            return make_scene(self.bank, rng, size=self.size, k_objects=(1, 4), split=self.split).image
        if kind == "photo":
            return photo_crop(self.bank, rng, size=self.size, split=self.split)
        if kind == "whole_photo":
            return whole_photo(self.bank, rng, size=self.size, split=self.split)
        return simple_image(rng, self.size, kind=rng.choice(["flat", "gradient", "shapes"]))

    def batch(self, step: int, batch_size: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, self.rank, step])
        arr = np.stack([self.image(rng) for _ in range(batch_size)])
        if rng.random() < 0.5:  # horizontal flip, as in the official augmentation
            arr = arr[:, :, ::-1]
        return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float() / 255.0


class _Steps(torch.utils.data.Dataset):
    """Step number -> that step's batch, so that worker processes make exactly the in-process batches."""

    def __init__(self, stream: SceneStream, start: int, steps: int, batch_size: int):
        self.stream, self.start, self.steps, self.batch_size = stream, start, steps, batch_size

    def __len__(self) -> int:
        return self.steps - self.start

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.stream.batch(self.start + i, self.batch_size)


def batches(stream: SceneStream, start: int, steps: int, batch_size: int, workers: int, pin: bool = False):
    """The batches of steps start..steps-1 in order; made `workers` processes ahead when workers > 0.

    The batch of a step depends only on (seed, rank, step), so workers change the speed, not the data.
    """
    if workers <= 0:
        return (stream.batch(step, batch_size) for step in range(start, steps))
    return iter(torch.utils.data.DataLoader(_Steps(stream, start, steps, batch_size), batch_size=None,
                                            num_workers=workers, prefetch_factor=4, pin_memory=pin,
                                            persistent_workers=False))


def random_crops(images: torch.Tensor, crop: int, generator: torch.Generator) -> torch.Tensor:
    if crop >= images.shape[-1]:
        return images
    out = []
    for img in images:
        y, x = torch.randint(0, images.shape[-1] - crop + 1, (2,), generator=generator).tolist()
        out.append(img[:, y : y + crop, x : x + crop])
    return torch.stack(out)
