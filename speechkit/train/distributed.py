"""torchrun / DDP helpers: nothing home-made, just the environment torchrun sets up.

``torchrun --nproc_per_node=N -m speechkit.cli.main train TASK ...`` sets ``RANK``, ``WORLD_SIZE`` and
``MASTER_ADDR/PORT``; :func:`init` then joins the process group (NCCL on GPUs, gloo on CPU).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["init", "is_main", "rank", "world_size", "barrier", "all_reduce_mean", "device"]


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def init() -> torch.device:
    """Joins the torchrun process group when ``WORLD_SIZE`` > 1; returns this process' device."""
    dev = device()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return dev


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over processes (``x`` itself when not distributed)."""
    if world_size() == 1:
        return x
    y = x.detach().clone()
    dist.all_reduce(y)
    return y / world_size()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
