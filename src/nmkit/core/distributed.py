"""Data-parallel training under torchrun (``torch.distributed``), shared by train-snn and solve-linear train.

torchrun starts one process per rank with RANK, WORLD_SIZE and LOCAL_RANK set; each joins the process group
(gloo on CPU, NCCL on CUDA), draws the same global batch from the same seeded generator and trains on its slice,
and DistributedDataParallel averages the gradients, so N processes with batch B train as one with batch N B.
Only rank 0 writes and prints (:mod:`nmkit.cli.common`).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def join(device: str) -> str:
    """Join the torchrun process group when launched by torchrun; the device this rank uses."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    if device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return f"cuda:{local}"
    dist.init_process_group("gloo")
    return device


def rank_and_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def agree(flag: bool, device: str = "cpu") -> bool:
    """True when any rank says so (so none waits forever for the others)."""
    if rank_and_world()[1] == 1:
        return flag
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def mean(value: torch.Tensor) -> float:
    """The mean of a scalar over the ranks."""
    world = rank_and_world()[1]
    value = value.detach()
    if world == 1:
        return float(value)
    value = value.clone()
    dist.all_reduce(value)
    return float(value) / world


def leave() -> None:
    """Leave the process group at the end of a run (torch warns about a group never destroyed)."""
    if dist.is_initialized():
        dist.destroy_process_group()
