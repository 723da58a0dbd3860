"""Training steps on tiny configs: finite losses that move the right way, exact resume, unconditional mode."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from t2igan.models.stackgan import StackGanConfig
from t2igan.models.stackganpp import StackGanPPConfig
from t2igan.training.ema import ema_decay_at
from t2igan.training.stackgan_steps import OptimSettings, StackGanPPSteps, StackGanSteps, images_at

TINY = dict(text_dim=12, z_dim=6, condition_dim=4, gf_dim=8, df_dim=8)


def _batch(b: int = 8, size: int = 32, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "image": torch.rand(b, 3, size, size, generator=g) * 2 - 1,
        "text_emb": torch.randn(b, 12, generator=g),
        "wrong_emb": torch.randn(b, 12, generator=g),
    }


def _run(steps, batch, n):
    return [steps.train_step(batch) for _ in range(n)]


@pytest.mark.parametrize("stage", [1, 2])
def test_stackgan_losses_finite_and_d_learns(stage: int) -> None:
    torch.manual_seed(0)
    cfg = StackGanConfig(stage=stage, stage1_size=16, stage2_size=32, r_num=1, **TINY)
    steps = StackGanSteps(cfg, OptimSettings(lr_d=1e-3), seed=0)
    logs = _run(steps, _batch(), 6)
    assert all(math.isfinite(v) for log in logs for v in log.values())
    assert logs[-1]["loss_d"] < logs[0]["loss_d"]
    assert {"loss_d", "loss_g", "kl", "d_real", "d_wrong", "d_fake"} <= set(logs[0])
    if stage == 2:
        assert "d_uncond" in logs[0]


def test_stage2_leaves_stage1_untouched() -> None:
    cfg = StackGanConfig(stage=2, stage1_size=16, stage2_size=32, r_num=1, **TINY)
    steps = StackGanSteps(cfg, seed=0)
    before = copy.deepcopy(steps.G.stage1.state_dict())
    _run(steps, _batch(), 2)
    after = steps.G.stage1.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics


def test_stackgan_exact_resume() -> None:
    cfg = StackGanConfig(stage=1, stage1_size=16, **TINY)
    a = StackGanSteps(cfg, seed=3)
    _run(a, _batch(size=16), 2)
    state = copy.deepcopy(a.state_dict())
    logs_a = _run(a, _batch(size=16, seed=1), 2)
    b = StackGanSteps(cfg, seed=99)  # different seed: everything must come from the state
    b.load_state_dict(state)
    logs_b = _run(b, _batch(size=16, seed=1), 2)
    assert logs_a == logs_b
    for k, v in a.G.state_dict().items():
        assert torch.equal(v, b.G.state_dict()[k]), k


@pytest.mark.parametrize("conditional", [True, False])
def test_stackganpp_step_and_ema(conditional: bool) -> None:
    torch.manual_seed(0)
    cfg = StackGanPPConfig(base_size=16, branch_num=2, r_num=1, conditional=conditional, color_lambda=1.0, **TINY)
    steps = StackGanPPSteps(cfg, OptimSettings(lr_d=1e-3), seed=0)
    batch = _batch()
    if not conditional:
        batch = {"image": batch["image"]}  # no text at all
    ema0 = [p.clone() for p in steps.G_ema.parameters()]
    logs = _run(steps, batch, 5)
    assert all(math.isfinite(v) for log in logs for v in log.values())
    assert "color" in logs[0] and ("kl" in logs[0]) == conditional
    assert logs[-1]["loss_d"] < logs[0]["loss_d"]
    moved = [not torch.equal(a, b) for a, b in zip(ema0, steps.G_ema.parameters(), strict=True)]
    assert any(moved)
    z = torch.randn(2, 6)
    imgs = steps.sample(z, torch.randn(2, 12) if conditional else None)
    assert [x.shape[-1] for x in imgs] == [16, 32]


def test_ema_decay_warms_up_to_the_configured_decay() -> None:
    assert ema_decay_at(0, 0.999) == pytest.approx(0.1)  # (1 + 0)/(10 + 0)
    assert ema_decay_at(5, 0.999, start=10) == 0.0  # before ema_start: a copy of G
    assert ema_decay_at(90, 0.999) == pytest.approx(0.91)
    assert ema_decay_at(100_000, 0.999) == 0.999
    assert ema_decay_at(100_000, 0.0) == 0.0


def test_stackganpp_ema_follows_g_in_a_short_run() -> None:
    """A fixed 0.999 kept ~the random init after a short run (grey EMA samples); the warm-up follows G."""
    torch.manual_seed(0)
    cfg = StackGanPPConfig(base_size=16, branch_num=2, r_num=1, **TINY)
    steps = StackGanPPSteps(cfg, OptimSettings(lr_d=1e-3), ema_decay=0.999, seed=0)
    start = [p.detach().clone() for p in steps.G.parameters()]
    for i in range(4):
        steps.train_step(_batch(seed=i), step=i)
    moved = sum((p - s).norm() for p, s in zip(steps.G.parameters(), start, strict=True))
    lag = sum((p - e).norm() for p, e in zip(steps.G.parameters(), steps.G_ema.parameters(), strict=True))
    assert lag < 0.5 * moved


def test_stackganpp_exact_resume() -> None:
    cfg = StackGanPPConfig(base_size=16, branch_num=2, r_num=1, **TINY)
    a = StackGanPPSteps(cfg, seed=1)
    _run(a, _batch(), 1)
    state = copy.deepcopy(a.state_dict())
    logs_a = _run(a, _batch(seed=2), 2)
    b = StackGanPPSteps(cfg, seed=5)
    b.load_state_dict(state)
    assert _run(b, _batch(seed=2), 2) == logs_a


def test_bf16_channels_last_step_runs() -> None:
    cfg = StackGanPPConfig(base_size=16, branch_num=2, r_num=1, **TINY)
    steps = StackGanPPSteps(cfg, OptimSettings(precision="bf16", channels_last=True), seed=0)
    log = steps.train_step(_batch())
    assert all(math.isfinite(v) for v in log.values())


def test_images_at_resizes_and_prefers_explicit_keys() -> None:
    b = _batch(size=32)
    assert images_at(b, 16).shape[-1] == 16
    b["image_16"] = torch.zeros(8, 3, 16, 16)
    assert torch.equal(images_at(b, 16), b["image_16"])
