"""torch.distributed set-up shared by every job that runs under torchrun (training, sharded embedding).

Under `torchrun --nproc_per_node N [--nnodes M ...] -m prodlens ...` the environment names this process's rank and
the world size; the process group uses NCCL on GPUs and gloo on CPUs. Run without torchrun, a job is rank 0 of 1.
"""
from __future__ import annotations

import atexit
import os


def setup_distributed() -> tuple[int, int]:
    """(rank, world size), initialising the process group on first use under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        # a process that exits with the group alive aborts (gloo: "terminate called without an active exception")
        # when its worker threads are torn down with the interpreter; a process that finishes before the others
        # (rank 0 still evaluating) must release it first
        atexit.register(teardown_distributed)
    return dist.get_rank(), dist.get_world_size()


def teardown_distributed() -> None:
    """Release this process's process group (a no-op when none is initialised)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def local_device(default: str = "cpu") -> str:
    """This process's device: its own GPU under torchrun (LOCAL_RANK), else `default`."""
    import torch

    if default.startswith("cuda") and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return default
