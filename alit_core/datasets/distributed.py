"""torchrun's process group for encode-dataset, or a single process (rank 0 of 1) without one."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch


@dataclass
class Distributed:
    """torchrun's process group, or a single process (rank 0 of 1) without one."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    active: bool = False

    @classmethod
    def from_env(cls, device: str | None) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch.distributed as dist

        local = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
        # ranks wait for each other at the merge, which may be long after the first finishes
        timeout = datetime.timedelta(hours=24)
        if cuda:
            torch.cuda.set_device(local)
            dist.init_process_group("nccl", timeout=timeout, device_id=torch.device("cuda", local))
        else:
            dist.init_process_group("gloo", timeout=timeout)
        return cls(dist.get_rank(), dist.get_world_size(), local, True)

    def device(self, device: str | None) -> str | None:
        if self.active and torch.cuda.is_available() and (device is None or device == "cuda"):
            return f"cuda:{self.local_rank}"
        return device

    def broadcast(self, obj):
        if not self.active:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.destroy_process_group()
