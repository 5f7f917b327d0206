"""Data-parallel training under `torchrun` (DDP), and a SyncBatchNorm that also runs on CPU.

How a run becomes distributed: `torchrun --nproc_per_node K -m repro.stages.train ...` sets
WORLD_SIZE / RANK / LOCAL_RANK; `init_from_env` then opens the process group (NCCL on CUDA,
gloo on CPU) and `GANTrainer` notices `torch.distributed.is_initialized()`:

- the global batch stays `batch_size`; rank r takes rows [r*b, (r+1)*b) of every global batch
  (b = batch_size / world_size) from the same seeded permutation, and the z noise (and the fake
  labels) of the whole global batch is drawn on every rank from the same private generator and
  sliced, so the K ranks together see exactly the inputs of the 1-process run;
- G and D are wrapped in DistributedDataParallel (gradients averaged = the gradient of the
  global-batch mean loss);
- BatchNorm: without SyncBatchNorm each rank normalises with the statistics of its own b rows,
  which is a different model of the data than the 1-process batch of `batch_size` rows (the
  paper's real and fake batches have separate statistics; per-rank statistics shrink them
  further). With `sync_batchnorm: true` the statistics are those of the global batch, and the
  K-process run matches the 1-process one up to float rounding (tests/test_distributed.py
  measures it);
- rank 0 alone writes checkpoints, logs and sample grids; every rank holds the whole
  training split on its device.

`SyncBatchNorm1d/2d` here: torch's `nn.SyncBatchNorm` accepts only GPU inputs, so the CPU test
(gloo) could not exercise it. Ours keeps the module's class hierarchy (a BatchNorm2d stays an
instance of BatchNorm2d, same parameters, buffers and state_dict keys, so checkpoints load into
plain models) and synchronises only while `sync_batchnorm_active()` is entered, which the
trainer does around its training step alone: sampling a grid on rank 0 never waits on the
others. Statistics are exact two-pass (global mean, then global mean of squared deviations)
in float32 through the differentiable `torch.distributed.nn.functional.all_reduce`, so the
backward pass also carries the cross-rank terms. It is plainer (two collectives per BN layer
and forward) than torch's fused CUDA kernel.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist
from torch import nn

from repro.errors import ReproError


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


def env_info() -> DistInfo:
    """What torchrun put in the environment (1 process when it did not)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as e:
        raise ReproError(f"WORLD_SIZE/RANK/LOCAL_RANK must be integers ({e}); launch with torchrun") from e
    return DistInfo(rank, world, local)


def current() -> DistInfo:
    """The running process group's view (1 process when none is initialised)."""
    if dist.is_available() and dist.is_initialized():
        rank = dist.get_rank()
        return DistInfo(rank, dist.get_world_size(), int(os.environ.get("LOCAL_RANK", rank)))
    return DistInfo()


def init_from_env(device_type: str) -> DistInfo:
    """Open the default process group when launched by torchrun with WORLD_SIZE > 1."""
    info = env_info()
    if not info.enabled or dist.is_initialized():
        return current()
    if device_type == "cuda":
        if torch.cuda.device_count() <= info.local_rank:
            raise ReproError(f"LOCAL_RANK {info.local_rank} but {torch.cuda.device_count()} visible GPU(s); "
                             "launch at most one process per GPU")
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return current()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def from_env(device_type: str) -> Iterator[DistInfo]:
    """`init_from_env`, and tear the group down again if this call opened it."""
    opened = env_info().enabled and not dist.is_initialized()
    info = init_from_env(device_type)
    try:
        yield info
    finally:
        if opened:
            shutdown()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def mean_over_ranks(t: torch.Tensor) -> torch.Tensor:
    """Average a tensor over ranks (a no-op in one process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t / dist.get_world_size()


# --- SyncBatchNorm ------------------------------------------------------------------------
_ACTIVE = False


@contextlib.contextmanager
def sync_batchnorm_active(on: bool = True) -> Iterator[None]:
    """Inside: converted BN layers in training mode use global-batch statistics."""
    global _ACTIVE
    saved, _ACTIVE = _ACTIVE, on
    try:
        yield
    finally:
        _ACTIVE = saved


def _sync_forward(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    from torch.distributed.nn.functional import all_reduce

    dims = [0] + list(range(2, x.dim()))
    shape = [1, -1] + [1] * (x.dim() - 2)
    xf = x.float()
    # The element count rides along with the sums (no host sync, one collective fewer).
    n_local = torch.full((1,), float(xf.numel() // xf.shape[1]), device=x.device)
    stats = all_reduce(torch.cat([xf.sum(dims), n_local]))  # (C + 1,)
    n = stats[-1].detach()
    mean = stats[:-1] / n  # (C,)
    xc = xf - mean.view(shape)
    var = all_reduce((xc * xc).sum(dims)) / n  # (C,) biased, as BN normalises with
    y = xc * torch.rsqrt(var + bn.eps).view(shape)
    if bn.weight is not None:
        y = y * bn.weight.view(shape) + bn.bias.view(shape)
    if bn.track_running_stats and bn.running_mean is not None:
        with torch.no_grad():
            bn.num_batches_tracked.add_(1)
            m = (1.0 / float(bn.num_batches_tracked)) if bn.momentum is None else bn.momentum
            bn.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            unbiased = var.detach() * (n / (n - 1.0).clamp_min(1.0))
            bn.running_var.mul_(1 - m).add_(unbiased, alpha=m)
    return y.to(x.dtype)


class _SyncMixin:
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C[, H, W])
        if (_ACTIVE and self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            self._check_input_dim(x)
            return _sync_forward(self, x)
        return super().forward(x)


class SyncBatchNorm1d(_SyncMixin, nn.BatchNorm1d):
    pass


class SyncBatchNorm2d(_SyncMixin, nn.BatchNorm2d):
    pass


_SYNC = {nn.BatchNorm1d: SyncBatchNorm1d, nn.BatchNorm2d: SyncBatchNorm2d}


def convert_sync_batchnorm(module: nn.Module) -> int:
    """In place: every BatchNorm1d/2d of `module` becomes its syncing subclass. Returns the count."""
    k = 0
    for m in module.modules():
        cls = _SYNC.get(type(m))
        if cls is not None:
            m.__class__ = cls
            k += 1
    return k


def wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel as DDP

    # broadcast_buffers=False: BN running buffers are not used in training (the paper samples
    # with batch statistics); rank 0's copy is the one checkpointed.
    return DDP(module, device_ids=[device.index] if device.type == "cuda" else None,
               broadcast_buffers=False)

