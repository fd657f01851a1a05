"""Process-group setup for single-process, ``torchrun`` and legacy ``torch.distributed.launch`` runs.

Rank, local rank and world size are read when :func:`init_distributed` is called (never at import):
``torchrun`` (and ``torch.distributed.launch --use-env``) set ``RANK``/``LOCAL_RANK``/``WORLD_SIZE``;
the legacy launcher without ``--use-env`` passes ``--local_rank=N`` or ``--local-rank=N`` (by torch
version) on the command line, which the training commands read as ``--local-rank`` (it still sets ``RANK``
and ``WORLD_SIZE``). Without any launcher the run is a single process. The backend is NCCL on CUDA devices
and gloo otherwise.
"""

from __future__ import annotations

import gc
import logging
import os
import warnings
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.distributed as dist

from rhmnet.errors import RHMNetError

log = logging.getLogger(__name__)


class LaunchError(RHMNetError, RuntimeError):
    """Inconsistent launcher environment or device choice."""


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the run: global rank, rank on its node, number of processes, device."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str) -> Optional[int]:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise LaunchError(f"environment variable {name}={value!r} is not an integer") from None


def read_launch_env(local_rank_arg: Optional[int] = None) -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from the launcher's environment and the legacy ``--local-rank``."""
    world_size = _env_int("WORLD_SIZE") or 1
    env_local = _env_int("LOCAL_RANK")
    arg_local = local_rank_arg if local_rank_arg is not None and local_rank_arg >= 0 else None
    if env_local is not None and arg_local is not None and env_local != arg_local:
        warnings.warn(f"--local-rank {arg_local} disagrees with LOCAL_RANK={env_local}; using LOCAL_RANK",
                      stacklevel=2)
    local_rank = env_local if env_local is not None else (arg_local if arg_local is not None else 0)
    rank = _env_int("RANK")
    if rank is None:
        if world_size > 1 and arg_local is None and env_local is None:
            raise LaunchError(f"WORLD_SIZE={world_size} but neither RANK, LOCAL_RANK nor --local-rank is set")
        rank = local_rank  # single-node legacy launch
    if not 0 <= rank < world_size:
        raise LaunchError(f"rank {rank} is outside 0..{world_size - 1} (WORLD_SIZE={world_size})")
    return rank, local_rank, world_size


def resolve_device(spec: Optional[str], local_rank: int) -> torch.device:
    """The device of this process: ``spec`` (``cpu``, ``cuda``, ``cuda:N``), by default ``cuda:LOCAL_RANK``
    when CUDA is available, else the CPU. A bare ``cuda`` means this process's local GPU."""
    if spec is None or spec == "":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise LaunchError(f"invalid --device {spec!r}: {exc}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise LaunchError(f"--device {spec} requested but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", local_rank)
        if device.index >= torch.cuda.device_count():
            raise LaunchError(f"device {device} does not exist ({torch.cuda.device_count()} visible GPUs)")
    return device


def init_distributed(device_spec: Optional[str] = None, local_rank_arg: Optional[int] = None) -> DistContext:
    """Read the launch environment, pick the device and, with several processes, join the process group."""
    rank, local_rank, world_size = read_launch_env(local_rank_arg)
    device = resolve_device(device_spec, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size)
        log.info("joined the process group: rank %d of %d (local rank %d, %s, %s)", rank, world_size,
                 local_rank, backend, device)
    return DistContext(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def cleanup(ctx: DistContext) -> None:
    """Leave the process group (no-op for a single process).

    Unreachable objects that still hold the group (a DDP wrapper in a reference cycle) are collected here:
    a gloo group destroyed during interpreter shutdown can abort the process (SIGABRT, "terminate called
    without an active exception")."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()
        gc.collect()


def barrier(ctx: DistContext) -> None:
    """Wait for every process (no-op for a single process)."""
    if ctx.distributed:
        dist.barrier()


def all_reduce_mean(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Mean of ``tensor`` over the processes (a copy; NaN on any rank gives NaN everywhere)."""
    out = tensor.detach().clone()
    if ctx.distributed:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        out /= ctx.world_size
    return out


def all_gather_object(obj: Any, ctx: DistContext) -> list[Any]:
    """Every process's ``obj``, indexed by rank."""
    if not ctx.distributed:
        return [obj]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered
