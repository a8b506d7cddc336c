"""Process-group set-up for torchrun (DistributedDataParallel), a no-op for one process."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from egmt.device import resolve_device
from egmt.errors import EGMTError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> DistInfo | None:
        """This process's place in a torchrun launch (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), or
        None when torchrun did not start it."""
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            if int(os.environ.get("WORLD_SIZE", "1")) > 1:
                raise EGMTError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} without RANK: start the processes with torchrun")
            return None
        return cls(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(device_name: str) -> tuple[DistInfo, torch.device]:
    """Join the process group that torchrun describes in the environment (RANK, WORLD_SIZE...).

    Backend: NCCL on CUDA, gloo on the CPU. Without torchrun's variables this is one process.
    """
    info = DistInfo.from_env()
    if info is None or not info.enabled:
        return DistInfo(), resolve_device(device_name)
    device = resolve_device(device_name, info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info, device


def close_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
