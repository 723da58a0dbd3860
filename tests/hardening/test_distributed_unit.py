"""`t2igan.training.distributed` on its own: single-process behaviour, sharding, and weighted gradient averaging
(two simulated ranks must follow the single-process trajectory on the whole batch)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import torch

from t2igan.training.distributed import DistContext, init_distributed
from t2igan.utils.errors import T2IError


def test_single_process_context_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    ctx = init_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.enabled) == (0, 1, True, False)
    idx = np.arange(7)
    assert ctx.shard(idx) is idx and ctx.shard_weight(7) == 1.0
    g = [torch.ones(3)]
    ctx.average_grads(g)
    assert torch.equal(g[0], torch.ones(3))
    assert ctx.all_true(False) is False


def test_shards_cover_the_global_batch_once() -> None:
    batch = np.array([9, 4, 7, 1, 3])
    shards = [DistContext(rank=r, world_size=2).shard(batch) for r in range(2)]
    assert np.array_equal(np.concatenate(shards), batch)
    assert [DistContext(rank=r, world_size=2).shard_weight(5) for r in range(2)] == [0.6, 0.4]
    with pytest.raises(T2IError, match="cannot be split over 3 processes"):
        DistContext(rank=0, world_size=3).shard(np.arange(2))


def test_bad_device_is_a_clear_error() -> None:
    with pytest.raises(T2IError, match="unknown"):
        init_distributed("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(T2IError, match="no GPU"):
            init_distributed("cuda")


class _FakeGroup:
    """An in-process stand-in for a 2-rank process group: each rank runs in a thread; `all_reduce(SUM)` waits for
    both ranks and gives each the sum (what gloo does, minus the processes). The real gloo path is exercised by
    test_ddp.py under torchrun."""

    def __init__(self, world: int) -> None:
        self.world = world
        self.barrier = threading.Barrier(world)
        self.slots: dict[int, torch.Tensor] = {}
        self.lock = threading.Lock()

    def all_reduce(self, tensor: torch.Tensor, op: Any = None) -> None:
        rank = int(threading.current_thread().name)
        with self.lock:
            self.slots[rank] = tensor.clone()
        self.barrier.wait()
        total = sum(self.slots[r] for r in range(self.world))
        self.barrier.wait()
        tensor.copy_(total)


def test_weighted_gradient_average_equals_the_full_batch_update(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two ranks with uneven shards (3 + 2 of a batch of 5), gradients averaged with `shard_weight`: the SGD
    trajectory equals one process on the whole batch."""
    import t2igan.training.distributed as D

    group = _FakeGroup(2)
    monkeypatch.setattr(D.dist, "all_reduce", group.all_reduce)
    x = torch.linspace(-1, 1, 5 * 4).view(5, 4)
    y = torch.arange(5.0).view(5, 1)

    def make() -> torch.nn.Module:
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

    results: dict[int, torch.nn.Module] = {}
    models = {r: make() for r in range(2)}  # built here: the global RNG is not thread-safe

    def rank_main(rank: int) -> None:
        ctx = DistContext(rank=rank, world_size=2, backend="fake")
        model = models[rank]
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(3):
            idx = ctx.shard(np.arange(5))
            loss = ((model(x[idx]) - y[idx]) ** 2).mean()
            grads = [g.clone() for g in torch.autograd.grad(loss, list(model.parameters()))]
            ctx.average_grads(grads, weight=ctx.shard_weight(5))
            for p, g in zip(model.parameters(), grads, strict=True):
                p.grad = g
            opt.step()
        results[rank] = model

    threads = [threading.Thread(target=rank_main, args=(r,), name=str(r)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    ref = make()
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        ((ref(x) - y) ** 2).mean().backward()
        opt.step()
    assert set(results) == {0, 1}
    for rank in (0, 1):
        for (k, v), w in zip(ref.state_dict().items(), results[rank].state_dict().values(), strict=True):
            torch.testing.assert_close(w, v, rtol=1e-5, atol=1e-6, msg=f"rank {rank} {k}")


def test_a_dead_peer_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """When another rank dies (kill -9, OOM), gloo raises 'Connection reset by peer' in the next collective: the
    user gets one line saying what happened and how to continue, not a backend traceback."""
    import t2igan.training.distributed as D

    def dead(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("[gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:9649: Connection reset by peer.")

    monkeypatch.setattr(D.dist, "all_reduce", dead)
    ctx = DistContext(rank=0, world_size=2, backend="gloo")
    with pytest.raises(T2IError, match="lost contact with another training process") as e:
        ctx.average_grads([torch.ones(2)])
    assert "--resume" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(T2IError, match="lost contact"):
        ctx.all_true(True)
