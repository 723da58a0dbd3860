"""Multi-process (DDP) training: process group from torchrun's environment, data sharding, gradient averaging.

``torchrun --nproc_per_node=N -m t2igan train …`` starts N copies of the trainer; each reads ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` (and ``MASTER_ADDR``/``MASTER_PORT``) from its environment. `init_distributed` turns
that into a `DistContext`: gloo on CPU, NCCL on GPU (one GPU per local rank, TF32 on), or a single-process context
when ``WORLD_SIZE`` is unset — the trainer's code path is the same either way.

How the pieces divide the work (what PyTorch's DistributedSampler + DistributedDataParallel do, spelled out):

- **Data**: every rank computes the same per-epoch permutation from ``(seed, epoch)`` and cuts the same *global*
  batches (``train.batch_size`` is global); `DistContext.shard` hands rank r its contiguous slice of each global
  batch. So N processes take the same number of steps, over the same images, as one process.
- **Gradients**: `DistContext.average_grads` all-reduces a list of gradients, weighting each rank by its share of the
  global batch, so the update equals the single-process update of a batch-mean loss (up to BatchNorm's per-rank
  batch statistics). It is a callback, not a `DistributedDataParallel` wrapper, because Reed's lean step takes G and
  D gradients with ``torch.autograd.grad`` from one D forward, where DDP's backward hooks would not fire.
- **Randomness**: each rank seeds its step RNG with ``derive_seed(seed, purpose, step, rank)`` (per-rank noise, the
  same on every run), and all ranks start from identical weights (`DistContext.broadcast_module`), so an N-process
  run is reproducible.
- **Files**: only rank 0 logs, writes samples, checkpoints and the export (`DistContext.is_main`); every rank reads
  the checkpoint when resuming. Non-finite gradients on any rank become non-finite on all ranks after averaging, so
  the NaN guard makes the same skip/stop decision everywhere (and no rank is left waiting in a collective).

Multi-node: run the same torchrun command on every node with ``--nnodes=M --node_rank=i
--rdzv_backend=c10d --rdzv_endpoint=HOST:PORT`` (see docs/distributed.md).
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from t2igan.utils.errors import T2IError

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass
class DistContext:
    """Where this process sits in the job. ``world_size == 1`` means plain single-process training."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that logs, writes samples, checkpoints and exports."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    # -- data ------------------------------------------------------------------------------------------------------
    def shard(self, batch_indices: np.ndarray) -> np.ndarray:
        """This rank's contiguous slice of one *global* batch (sizes differ by at most one across ranks)."""
        if not self.enabled:
            return batch_indices
        if len(batch_indices) < self.world_size:
            raise T2IError(
                f"a batch of {len(batch_indices)} cannot be split over {self.world_size} processes",
                hint="raise train.batch_size (it is the global batch) or use fewer processes",
            )
        return np.array_split(np.asarray(batch_indices), self.world_size)[self.rank]

    def shard_weight(self, global_batch: int) -> float:
        """This rank's share of a global batch (weights its gradients in `average_grads`)."""
        if not self.enabled:
            return 1.0
        sizes = [len(a) for a in np.array_split(np.arange(global_batch), self.world_size)]
        return sizes[self.rank] / global_batch

    # -- gradients, weights ---------------------------------------------------------------------------------------
    def average_grads(self, grads: list[torch.Tensor], weight: float | None = None) -> None:
        """All-reduce ``grads`` in place into the global-batch mean.

        ``weight`` is this rank's share of the global batch (`shard_weight`); None = equal shares. One flat buffer
        per dtype, so a step costs one collective, not one per parameter.
        """
        if not self.enabled or not grads:
            return
        scale = (1.0 / self.world_size) if weight is None else weight
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for g in grads:
            by_dtype.setdefault(g.dtype, []).append(g)
        for group in by_dtype.values():
            flat = torch.cat([g.reshape(-1) for g in group]).mul_(scale)
            _collective(dist.all_reduce, flat, op=dist.ReduceOp.SUM)
            offset = 0
            for g in group:
                n = g.numel()
                g.copy_(flat[offset : offset + n].view_as(g))
                offset += n

    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank (after init or a resume)."""
        if not self.enabled:
            return
        with torch.no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                _collective(dist.broadcast, t.data, src=0)

    # -- control ---------------------------------------------------------------------------------------------------
    def all_true(self, flag: bool) -> bool:
        """True on every rank iff ``flag`` is true on every rank (agree on skip/stop decisions)."""
        if not self.enabled:
            return flag
        t = torch.tensor([0 if flag else 1], dtype=torch.int64, device=self.device)
        _collective(dist.all_reduce, t, op=dist.ReduceOp.SUM)
        return int(t.item()) == 0

    def barrier(self) -> None:
        if self.enabled:
            if self.backend == "nccl":
                _collective(dist.barrier, device_ids=[self.device.index or 0])
            else:
                _collective(dist.barrier)

    def close(self) -> None:
        """Leave the process group (idempotent). On a clean exit every rank first meets at a barrier, so no rank
        tears its connections down while another is still using them; while an exception is propagating (a peer may
        be dead or elsewhere) it leaves at once."""
        if self.enabled and dist.is_initialized():
            if sys.exc_info()[0] is None:
                with contextlib.suppress(T2IError):
                    self.barrier()
            dist.destroy_process_group()


def _collective(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a collective; if another process of the job died (connection reset, timeout), say so in one line."""
    try:
        return fn(*args, **kwargs)
    except RuntimeError as e:  # DistBackendError / DistNetworkError subclass RuntimeError
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise T2IError(
            f"lost contact with another training process ({first[:160]})",
            hint="see the other ranks' messages above; the last checkpoint is intact — rerun the same torchrun "
            "command with --resume",
        ) from None


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in _ENV) and int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: str = "auto", *, timeout_s: float = 600.0) -> DistContext:
    """Create the process group from torchrun's environment (or a single-process context without it).

    ``device``: ``auto`` (GPU ``cuda:LOCAL_RANK`` if available, else CPU), ``cpu``, or ``cuda``. The backend is NCCL
    on GPU and gloo on CPU (``T2IGAN_DIST_BACKEND`` overrides). On GPU, TF32 matmuls/convolutions are enabled.
    """
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise T2IError(f"train.device={device!r} is unknown", hint="use auto, cpu, cuda or cuda:N")
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise T2IError(f"train.device={device} but PyTorch sees no GPU", hint="use train.device=cpu (or auto)")

    if not launched_by_torchrun():
        dev = torch.device(device if device.startswith("cuda") else ("cuda" if use_cuda else "cpu"))
        if dev.type == "cuda":
            enable_tf32()
        return DistContext(device=dev)

    try:
        rank = int(os.environ["RANK"])
        world = int(os.environ["WORLD_SIZE"])
        local = int(os.environ["LOCAL_RANK"])
    except ValueError:
        raise T2IError("RANK/WORLD_SIZE/LOCAL_RANK are not integers", hint="launch with torchrun") from None
    if use_cuda:
        if local >= torch.cuda.device_count():
            raise T2IError(
                f"local rank {local} but only {torch.cuda.device_count()} GPU(s) on this node",
                hint="use --nproc_per_node ≤ the number of GPUs",
            )
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
        enable_tf32()
    else:
        dev = torch.device("cpu")
    backend = os.environ.get("T2IGAN_DIST_BACKEND") or ("nccl" if dev.type == "cuda" else "gloo")
    if not dist.is_initialized():
        dist.init_process_group(
            backend=backend, rank=rank, world_size=world, timeout=datetime.timedelta(seconds=timeout_s)
        )
    ctx = DistContext(rank=rank, world_size=world, local_rank=local, device=dev, backend=backend)
    quiet_unless_main(ctx)
    return ctx


def enable_tf32() -> None:
    """TF32 on Ampere+ GPUs: ~fp32 range, 10-bit mantissa in matmuls/convs; harmless elsewhere."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def quiet_unless_main(ctx: DistContext) -> None:
    """Ranks other than 0 log warnings and errors only (their progress bars are off: see the trainer)."""
    if not ctx.is_main:
        logging.getLogger("t2igan").setLevel(logging.WARNING)


__all__ = ["DistContext", "enable_tf32", "init_distributed", "launched_by_torchrun"]
