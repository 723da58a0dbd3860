"""The StackGAN / StackGAN++ systems' `train_step` on tiny configs: losses, exact resume, EMA, D regularisers,
instance noise, lr decay, colour consistency, and the refusal of config keys a family does not use."""

from __future__ import annotations

import copy
import math
import re

import numpy as np
import pytest
import torch

from t2igan.apps.cli import main
from t2igan.losses.gan import r1_penalty
from t2igan.training.config import load_config, preset_names
from t2igan.training.ema import ema_decay_at
from t2igan.training.export import export_pretrained
from t2igan.training.system import GanSystem, check_config, get_system_class, images_at
from t2igan.utils.errors import T2IError

CPU = torch.device("cpu")


def _system(sg_config, *sets: str) -> GanSystem:
    cfg = sg_config(*sets)
    return get_system_class(cfg.model.name)(cfg, 12, CPU)


def _batch(data, step: int = 0) -> dict[str, torch.Tensor]:
    return data.batch(np.arange(8) + 8 * (step % 4), 0)


def _run(system: GanSystem, data, steps: range) -> list[dict[str, float]]:
    return [system.train_step(_batch(data, i), i) for i in steps]


@pytest.fixture
def stage1_dir(sg_config, tmp_path):
    """An exported (untrained) tiny Stage-I generator for Stage-II systems."""
    s1 = _system(sg_config, "model.name=stackgan", "data.size=16")
    return export_pretrained(s1.generator_for_export(), tmp_path / "s1" / "pretrained", model_name="stackgan")


def _sg(stage: int, stage1_dir, *sets: str) -> list[str]:
    if stage == 1:
        return ["model.name=stackgan", "data.size=16", *sets]
    return ["model.name=stackgan", "model.stage=2", f"model.stage1={stage1_dir}", "data.size=32", *sets]


@pytest.mark.parametrize("stage", [1, 2])
def test_stackgan_step_losses_finite_and_d_learns(sg_config, blobs16, blobs32, stage1_dir, stage: int) -> None:
    system = _system(sg_config, *_sg(stage, stage1_dir, "optim.lr_d=1e-3"))
    data = blobs16 if stage == 1 else blobs32
    logs = [system.train_step(_batch(data), i) for i in range(6)]  # the same batch: D must fit it
    assert all(math.isfinite(v) for log in logs for v in log.values())
    assert logs[-1]["loss_d"] < logs[0]["loss_d"]
    assert {"loss_d", "loss_g", "kl", "d_real", "d_wrong", "d_fake"} <= set(logs[0])
    assert ("d_uncond" in logs[0]) == (stage == 2)


def test_stage2_leaves_stage1_untouched(sg_config, blobs32, stage1_dir) -> None:
    system = _system(sg_config, *_sg(2, stage1_dir))
    before = copy.deepcopy(system.G.stage1.state_dict())
    _run(system, blobs32, range(2))
    after = system.G.stage1.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics


@pytest.mark.parametrize("name", ["stackgan", "stackgan++"])
def test_exact_resume_from_the_system_state(sg_config, blobs16, blobs32, name: str) -> None:
    sets = ["model.name=stackgan", "data.size=16"] if name == "stackgan" else ["model.name=stackgan++", "data.size=32"]
    data = blobs16 if name == "stackgan" else blobs32
    a = _system(sg_config, *sets, "optim.ema=0.9")
    _run(a, data, range(2))
    state = copy.deepcopy(a.state_dict())
    logs_a = _run(a, data, range(2, 4))
    b = _system(sg_config, *sets, "optim.ema=0.9")
    _run(b, data, range(3, 5))  # other weights, optimiser moments and BN statistics: all must come from the state
    b.load_state_dict(state)
    assert _run(b, data, range(2, 4)) == logs_a
    for net in ("G", "G_ema", "D"):
        for k, v in a.nets()[net].state_dict().items():
            assert torch.equal(v, b.nets()[net].state_dict()[k]), (net, k)


@pytest.mark.parametrize("conditional", [True, False])
def test_stackganpp_step_ema_and_colour_switch(sg_config, blobs32, conditional: bool) -> None:
    sets = ["model.name=stackgan++", "data.size=32", f"model.conditional={str(conditional).lower()}", "optim.lr_d=1e-3"]
    on = _system(sg_config, *sets, "loss.color_lambda=1", "optim.ema=0.999")
    batch = _batch(blobs32) if conditional else {"image": _batch(blobs32)["image"]}  # no text at all
    ema0 = [p.clone() for p in on.G_ema.parameters()]
    logs = [on.train_step(batch, i) for i in range(5)]
    assert all(math.isfinite(v) for log in logs for v in log.values())
    assert "color" in logs[0] and ("kl" in logs[0]) == conditional
    assert logs[-1]["loss_d"] < logs[0]["loss_d"]
    assert any(not torch.equal(a, b) for a, b in zip(ema0, on.G_ema.parameters(), strict=True))
    imgs = on.sample(torch.randn(2, 16), torch.randn(2, 12) if conditional else None)
    assert [x.shape[-1] for x in imgs] == [16, 32]
    off = _system(sg_config, *sets)  # colour consistency off: same step otherwise, G loss without L_C
    log_off = off.train_step(batch, 0)
    assert "color" not in log_off and log_off["loss_d"] == pytest.approx(logs[0]["loss_d"])


def test_ema_decay_warms_up_to_the_configured_decay() -> None:
    assert ema_decay_at(0, 0.999) == pytest.approx(0.1)  # (1 + 0)/(10 + 0)
    assert ema_decay_at(5, 0.999, start=10) == 0.0  # before ema_start: a copy of G
    assert ema_decay_at(90, 0.999) == pytest.approx(0.91)
    assert ema_decay_at(100_000, 0.999) == 0.999
    assert ema_decay_at(100_000, 0.0) == 0.0


def test_stackgan_v1_keeps_and_exports_an_ema_generator(sg_config, blobs16) -> None:
    """optim.ema was silently ignored by StackGAN v1; now it keeps G_ema, samples and exports it."""
    system = _system(sg_config, "model.name=stackgan", "data.size=16", "optim.ema=0.999", "optim.lr=1e-3")
    start = [p.detach().clone() for p in system.G.parameters()]
    _run(system, blobs16, range(4))
    moved = sum((p - s).norm() for p, s in zip(system.G.parameters(), start, strict=True))
    lag = sum((p - e).norm() for p, e in zip(system.G.parameters(), system.G_ema.parameters(), strict=True))
    assert 0 < lag < 0.5 * moved  # averaged, with the warm-up following G
    assert system.generator_for_export() is system.G_ema and "G_ema" in system.nets()


def test_bf16_channels_last_step_runs(sg_config, blobs32) -> None:
    system = _system(sg_config, "model.name=stackgan++", "data.size=32", "train.precision=bf16",
                     "train.channels_last=true")  # fmt: skip
    log = system.train_step(_batch(blobs32), 0)
    assert all(math.isfinite(v) for v in log.values())


def test_images_at_resizes_and_prefers_explicit_keys(blobs32) -> None:
    b = _batch(blobs32)
    assert images_at(b, 16).shape[-1] == 16
    b["image_16"] = torch.zeros(8, 3, 16, 16)
    assert torch.equal(images_at(b, 16), b["image_16"])


# ------------------------------------------------------------------------------------------- D regularisers
def test_r1_penalty_by_hand() -> None:
    """D(x) = Σ w ⊙ x has ∇_x D = w for every sample: R1 = γ/2·‖w‖²."""
    w = torch.randn(3, 4, 4)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (x * w).flatten(1).sum(1)
    torch.testing.assert_close(r1_penalty(logits, x, gamma=10.0), 5.0 * w.pow(2).sum())


def test_lazy_r1_runs_every_k_steps_and_changes_d(sg_config, blobs16) -> None:
    base = ["model.name=stackgan", "data.size=16"]
    plain, lazy = _system(sg_config, *base), _system(sg_config, *base, "loss.r1=10", "loss.r1_every=2")
    logs = _run(lazy, blobs16, range(3))
    assert "d_r1" in logs[0] and "d_r1" not in logs[1] and "d_r1" in logs[2] and logs[0]["d_r1"] > 0
    _run(plain, blobs16, range(1))
    changed = [not torch.equal(a, b) for a, b in zip(plain.D.parameters(), lazy.D.parameters(), strict=True)]
    assert any(changed)  # the penalty's gradient reached D's weights (their first steps differ)


def test_r1_on_the_gradient_of_the_real_logits(sg_config, blobs16) -> None:
    """The logged lazy R1 equals k·γ/2·E‖∇_x D(x, μ)‖² computed from the same D before its update (γ 4, k 2)."""
    system = _system(sg_config, "model.name=stackgan", "data.size=16", "loss.r1=4", "loss.r1_every=2")
    d0, ca0 = copy.deepcopy(system.D), copy.deepcopy(system.trained_g.ca)  # before the step updates them
    batch = _batch(blobs16)
    log = system.train_step(batch, 0)
    with torch.no_grad():
        mu = ca0(batch["text_emb"].float())[1]  # D conditions on μ (ε does not change it)
    x = batch["image"].float().clone().requires_grad_(True)
    d0.train()
    (grad,) = torch.autograd.grad(d0(x, mu).sum(), x)
    assert log["d_r1"] == pytest.approx(float(2 * 4 / 2 * grad.pow(2).flatten(1).sum(1).mean()), rel=1e-4)


@pytest.mark.parametrize("name", ["stackgan", "stackgan++"])
def test_ma_gp_for_the_stackgan_families(sg_config, blobs16, blobs32, name: str) -> None:
    sets = ["model.name=stackgan", "data.size=16"] if name == "stackgan" else ["model.name=stackgan++", "data.size=32"]
    system = _system(sg_config, *sets, "loss.ma_gp=2")
    log = system.train_step(_batch(blobs16 if name == "stackgan" else blobs32), 0)
    keys = [k for k in log if k.startswith("d_ma_gp")]
    assert keys and all(log[k] > 0 and math.isfinite(log[k]) for k in keys)


def test_instance_noise_anneals_and_reaches_d(sg_config, blobs16) -> None:
    base = ["model.name=stackgan", "data.size=16"]
    noisy = _system(sg_config, *base, "loss.instance_noise=0.5", "loss.instance_noise_steps=10")
    assert [noisy.instance_noise_sigma(s) for s in (0, 5, 10, 20)] == [0.5, 0.25, 0.0, 0.0]
    assert _system(sg_config, *base, "loss.instance_noise=0.3").instance_noise_sigma(10**6) == 0.3
    plain = _system(sg_config, *base)
    batch = _batch(blobs16)
    assert noisy.train_step(batch, 0)["d_real"] != pytest.approx(plain.train_step(batch, 0)["d_real"])
    late = _system(sg_config, *base, "loss.instance_noise=0.5", "loss.instance_noise_steps=10")
    fresh = _system(sg_config, *base)
    assert late.train_step(batch, 10) == fresh.train_step(batch, 10)  # σ = 0: exactly the plain step


@pytest.mark.parametrize("name, every", [("stackgan", 50), ("stackgan++", 100)])
def test_official_lr_decay(sg_config, name: str, every: int) -> None:
    """The release halves both learning rates every 50 (Stage-I) / 100 (Stage-II) epochs."""
    size = "data.size=16" if name == "stackgan" else "data.size=32"
    system = _system(sg_config, f"model.name={name}", size, f"optim.decay_every_epochs={every}", "optim.lr_d=4e-4")
    lrs = []
    for epoch in (every - 0.5, every, 2 * every):
        system.set_epoch(epoch)
        lrs.append((system.opt_g.param_groups[0]["lr"], system.opt_d.param_groups[0]["lr"]))
    assert lrs == [(2e-4, 4e-4), (1e-4, 2e-4), (5e-5, 1e-4)]


@pytest.mark.parametrize("name", ["stackgan", "stackgan++"])
def test_g_warmup(sg_config, name: str) -> None:
    """optim.g_warmup_steps: G's lr rises linearly over N steps, D's is full from step 0; the decay still applies."""
    size = "data.size=16" if name == "stackgan" else "data.size=32"
    sets = (f"model.name={name}", size, "optim.g_warmup_steps=4", "optim.decay_every_epochs=10", "optim.lr_d=4e-4")
    system = _system(sg_config, *sets)
    lrs = []
    for step, epoch in ((0, 0.0), (1, 0.1), (3, 0.3), (9, 10.0)):
        system.set_epoch(epoch, step)
        lrs += [system.opt_g.param_groups[0]["lr"], system.opt_d.param_groups[0]["lr"]]
    assert lrs == pytest.approx([5e-5, 4e-4, 1e-4, 4e-4, 2e-4, 4e-4, 1e-4, 2e-4])
    with pytest.raises(T2IError, match="g_warmup_steps"):
        _system(sg_config, f"model.name={name}", size, "optim.g_warmup_steps=-1")


# ------------------------------------------------------------------------------------------- unused keys
@pytest.mark.parametrize(
    "name, key",
    [
        ("stackgan", "loss.variant=gan-cls"),
        ("stackgan", "train.compile=true"),
        ("stackgan++", "loss.contrastive=1"),
        ("stackgan", "loss.reuse_d_fake=false"),
        ("stackgan++", "model.stage1=runs/x"),
        ("stackgan++", "loss.cls_weight=0.3"),
        ("reed", "loss.kl_weight=1"),
        ("reed", "model.init=runs/x"),
        ("reed", "loss.instance_noise=0.1"),
        ("reed", "loss.spectral=1"),
        ("stackgan++", "loss.spectral=1"),
    ],
)
def test_unused_keys_are_refused_naming_the_key(name: str, key: str) -> None:
    cfg = load_config(None, [f"model.name={name}", key])
    honoured = get_system_class(name).honoured_keys
    dotted = key.split("=")[0]
    with pytest.raises(T2IError, match=rf"^{re.escape(dotted)} is not used by model {re.escape(name)} — remove it"):
        check_config(cfg, honoured)


def test_honoured_and_trainer_keys_pass() -> None:
    for name, key in [
        ("stackgan", "loss.kl_weight=1"),
        ("stackgan++", "loss.color_lambda=50"),
        ("reed", "loss.variant=gan-cls"),
        ("stackgan", "train.sample_every=7"),
        ("stackgan", "optim.decay_every_epochs=50"),
        ("stackgan", "loss.variant=gan-int-cls"),  # the default: nothing to ignore
    ]:
        check_config(load_config(None, [f"model.name={name}", key]), get_system_class(name).honoured_keys)


def test_every_shipped_preset_sets_only_keys_its_family_uses() -> None:
    for preset in preset_names():
        cfg = load_config(preset)
        check_config(cfg, get_system_class(cfg.model.name).honoured_keys)


def test_cli_refuses_an_unused_key_and_names_moved_ones(tiny_cache, capsys) -> None:
    data = ["--data", str(tiny_cache.root), "--set", "data.embeddings=attributes-onehot", "--set", "data.size=16"]
    data += ["--set", "model.preset=tiny"]
    for sets, message in [
        (["--set", "loss.variant=gan-cls"], "error: loss.variant is not used by model stackgan — remove it"),
        (["--set", "model.kl_weight=1"], "error: model.kl_weight is now loss.kl_weight"),
    ]:
        with pytest.raises(SystemExit) as e:
            main(["train", "--config", "stackgan_stage1_cpu", *data, *sets, "--dry-run"])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(message) and "\n" not in err


def test_cpu256_preset_trains_all_three_branches_within_an_hour() -> None:
    cfg = load_config("stackganpp_cpu256")
    system = get_system_class(cfg.model.name)(cfg, 1024, CPU)
    assert system.model_config.sizes == [64, 128, 256] and cfg.data.size == 256
    assert cfg.train.max_minutes == 60 and len(system.Ds) == 3
    assert cfg.train.eval_every > 0 and cfg.train.eval_select == "fid_evaluator"  # the best checkpoint is exported
