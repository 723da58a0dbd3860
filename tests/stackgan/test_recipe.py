"""The StackGAN recipe options: spectral-norm D (``model.d_norm``), hinge loss (``loss.kind``), mode seeking
(``loss.ms_weight``) and the EMA generator's standing BatchNorm statistics."""

from __future__ import annotations

import copy
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from t2igan.losses.gan import same_class_mask, sentence_matching_loss
from t2igan.losses.stackgan import (
    d_fake_term,
    d_real_term,
    g_term,
    generator_adv_loss,
    stackgan_d_loss,
    stackganpp_d_loss,
)
from t2igan.models.stackgan import StackGanDiscriminator, stackgan_config, stackgan_discriminator
from t2igan.models.stackganpp import StackGanPPDiscriminators, stackganpp_config
from t2igan.training.export import export_pretrained
from t2igan.training.system import GanSystem, get_system_class
from t2igan.utils.errors import T2IError

CPU = torch.device("cpu")
RECIPE = ("model.d_norm=spectral", "loss.kind=hinge", "loss.ms_weight=1", "optim.beta1=0", "optim.beta2=0.9")


def _system(sg_config, *sets: str) -> GanSystem:
    cfg = sg_config(*sets)
    return get_system_class(cfg.model.name)(cfg, 12, CPU)


def _batch(data, step: int = 0) -> dict[str, torch.Tensor]:
    return data.batch(np.arange(8) + 8 * (step % 4), 0)


# ------------------------------------------------------------------------------------------------ spectral-norm D
@pytest.mark.parametrize("size", [16, 64])
def test_spectral_discriminator_has_no_batchnorm_and_every_conv_normalised(size: int) -> None:
    d = StackGanDiscriminator(size, 8, 6, uncond_head=True, d_norm="spectral")
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(parametrize.is_parametrized(m, "weight") for m in convs)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    assert all(m.bias is not None for m in convs)
    x, mu = torch.randn(3, 3, size, size), torch.randn(3, 6)
    f = d.encode(x)
    assert d.cond_logits(f, mu).shape == (3,) and d.uncond_logits(f).shape == (3,)
    # the batch norm variant keeps the release's layout (BN after the first strided conv)
    bn = StackGanDiscriminator(size, 8, 6, uncond_head=True)
    assert any(isinstance(m, nn.BatchNorm2d) for m in bn.modules())
    assert not any(parametrize.is_parametrized(m) for m in bn.modules())


def test_spectral_norm_bounds_each_layer_to_unit_gain() -> None:
    torch.manual_seed(0)
    d = StackGanDiscriminator(16, 8, 6, uncond_head=False, d_norm="spectral").train()
    for _ in range(30):  # power iterations run in training-mode forward passes
        d(torch.randn(4, 3, 16, 16), torch.randn(4, 6))
    for m in d.modules():
        if isinstance(m, nn.Conv2d):
            sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
            assert sigma == pytest.approx(1.0, abs=0.05)


def test_d_norm_flows_from_the_configs_and_bad_values_are_refused() -> None:
    d = stackgan_discriminator(stackgan_config("tiny", d_norm="spectral"))
    assert d.d_norm == "spectral"
    ds = StackGanPPDiscriminators(stackganpp_config("tiny", d_norm="spectral"))
    assert all(x.d_norm == "spectral" for x in ds)
    with pytest.raises(T2IError, match=r"model\.d_norm='layer' is unknown"):
        stackgan_config("tiny", d_norm="layer")
    with pytest.raises(T2IError, match=r"model\.d_norm"):
        stackganpp_config("tiny", d_norm="instance")


# ------------------------------------------------------------------------------------------------ hinge terms
def test_hinge_terms_match_their_definitions() -> None:
    s = torch.tensor([2.0, 0.5, -0.5, -3.0])
    assert float(d_real_term(s, "hinge")) == pytest.approx(float(F.relu(1 - s).mean()))  # (0 + .5 + 1.5 + 4) / 4
    assert float(d_real_term(s, "hinge")) == pytest.approx(1.5)
    assert float(d_fake_term(s, "hinge")) == pytest.approx((3 + 1.5 + 0.5 + 0) / 4)
    assert float(g_term(s, "hinge")) == pytest.approx(0.25)
    assert float(d_real_term(s)) == pytest.approx(float(F.binary_cross_entropy_with_logits(s, torch.ones(4))))
    real, wrong, fake = torch.tensor([0.3, 2.0]), torch.tensor([-0.2, 0.4]), torch.tensor([1.0, -2.0])
    loss, parts = stackgan_d_loss(real, wrong, fake, kind="hinge")
    expected = F.relu(1 - real).mean() + 0.5 * (F.relu(1 + wrong).mean() + F.relu(1 + fake).mean())
    assert float(loss) == pytest.approx(float(expected))
    assert parts["d_real"] == pytest.approx(float(F.relu(1 - real).mean()))
    u_loss, _ = stackganpp_d_loss(None, None, None, real_uncond=real, fake_uncond=fake, kind="hinge")
    assert float(u_loss) == pytest.approx(float(F.relu(1 - real).mean() + F.relu(1 + fake).mean()))
    assert float(generator_adv_loss(fake, real, 0.5, kind="hinge")) == pytest.approx(
        float(-fake.mean() - 0.5 * real.mean())
    )
    for term in (d_real_term, d_fake_term, g_term):
        with pytest.raises(ValueError, match="unknown loss kind 'hinj'"):
            term(s, "hinj")


# ------------------------------------------------------------------------------------------------ system steps
@pytest.fixture
def stage1_dir(sg_config, tmp_path):
    s1 = _system(sg_config, "model.name=stackgan", "data.size=16")
    return export_pretrained(s1.generator_for_export(), tmp_path / "s1" / "pretrained", model_name="stackgan")


@pytest.mark.parametrize("family", ["stackgan-1", "stackgan-2", "stackgan++"])
def test_recipe_step_trains_with_mode_seeking(sg_config, blobs16, blobs32, stage1_dir, family: str) -> None:
    sets = {
        "stackgan-1": ["model.name=stackgan", "data.size=16"],
        "stackgan-2": ["model.name=stackgan", "model.stage=2", f"model.stage1={stage1_dir}", "data.size=32"],
        "stackgan++": ["model.name=stackgan++", "data.size=32"],
    }[family]
    data = blobs16 if family == "stackgan-1" else blobs32
    a = _system(sg_config, *sets, *RECIPE)
    logs = [a.train_step(_batch(data, i), i) for i in range(3)]
    assert all(math.isfinite(v) for log in logs for v in log.values())
    assert "nonfinite" not in logs[-1] and "g_ms" in logs[-1]
    # the term is 1 / (mean |G(z1) − G(z2)| / mean |z1 − z2|): positive, and it changes G's update
    assert logs[-1]["g_ms"] > 0
    b = _system(sg_config, *sets, *RECIPE[:2], *RECIPE[3:])  # the same without mode seeking
    for i in range(3):
        b.train_step(_batch(data, i), i)
    ga, gb = a.G.state_dict(), b.G.state_dict()
    assert any(not torch.equal(ga[k], gb[k]) for k in ga if ga[k].is_floating_point())
    # deterministic: the same config and seed give the same weights
    c = _system(sg_config, *sets, *RECIPE)
    for i in range(3):
        c.train_step(_batch(data, i), i)
    gc = c.G.state_dict()
    assert all(torch.equal(ga[k], gc[k]) for k in ga)


class _ZeroLogit(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1, :1, :1] * 0.0


def test_hinge_loss_is_what_the_step_reports(sg_config, blobs16) -> None:
    """With loss.kind=hinge a D that scores everything 0 pays 1 per term: loss_d = 1 + ½(1 + 1) = 2 (BCE: 2·log 2)."""
    s = _system(sg_config, "model.name=stackgan", "data.size=16", "loss.kind=hinge", "model.d_norm=spectral")
    s.D.cond_head[-1] = _ZeroLogit()  # every conditional logit is 0
    log = s.train_step(_batch(blobs16), 0)
    assert log["d_real"] == pytest.approx(1.0) and log["d_fake"] == pytest.approx(1.0)
    assert log["loss_d"] == pytest.approx(2.0) and log["loss_g"] == pytest.approx(0.0)


@pytest.mark.parametrize("name", ["stackgan", "stackgan++"])
def test_ema_generator_gets_standing_batchnorm_statistics(sg_config, blobs16, blobs32, name: str) -> None:
    sets = ["model.name=stackgan", "data.size=16"] if name == "stackgan" else ["model.name=stackgan++", "data.size=32"]
    data = blobs16 if name == "stackgan" else blobs32
    s = _system(sg_config, *sets, "optim.ema=0.9")
    for i in range(3):
        s.train_step(_batch(data, i), i)
    ema = s.G_ema
    bns = [m for m in ema.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    live = [m for m in s.G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert all(torch.equal(a.running_mean, b.running_mean) for a, b in zip(bns, live, strict=True))  # copied
    text = torch.from_numpy(data.emb[:24])
    s.refresh_generator_statistics(text)
    first = [m.running_mean.clone() for m in bns]
    assert any(not torch.equal(a, b.running_mean) for a, b in zip(first, live, strict=True))
    assert all(torch.isfinite(m.running_var).all() and m.momentum == 0.1 for m in bns)  # momentum restored
    assert not ema.training
    s.refresh_generator_statistics(text)  # exact average with fixed noise: the same statistics again
    assert all(torch.equal(a, m.running_mean) for a, m in zip(first, bns, strict=True))


def test_standing_statistics_leave_a_frozen_stage1_alone(sg_config, blobs32, stage1_dir) -> None:
    s = _system(sg_config, "model.name=stackgan", "model.stage=2", f"model.stage1={stage1_dir}", "data.size=32",
                "optim.ema=0.9")  # fmt: skip
    s.train_step(_batch(blobs32), 0)
    before = copy.deepcopy(s.G_ema.stage1.state_dict())
    s.refresh_generator_statistics(torch.from_numpy(blobs32.emb[:16]))
    after = s.G_ema.stage1.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    stage2_bn = next(m for m in s.G_ema.stage2.modules() if isinstance(m, nn.BatchNorm2d))
    live_bn = next(m for m in s.G.stage2.modules() if isinstance(m, nn.BatchNorm2d))
    assert not torch.equal(stage2_bn.running_mean, live_bn.running_mean)


# ------------------------------------------------------------------------------------------------ residual Stage-II
def test_residual_stage2_starts_as_stage1_upsampled_and_learns_a_residual() -> None:
    from t2igan.models.stackgan import StackGanGenerator

    torch.manual_seed(0)
    g = StackGanGenerator(stackgan_config("tiny", stage=2, stage2_residual=True, text_dim=12)).eval()
    z, emb = torch.randn(3, 16), torch.randn(3, 12)
    x1, x2 = g(z, emb)
    up = F.interpolate(x1, size=32, mode="bilinear", align_corners=False)
    assert x2.shape == (3, 3, 32, 32)
    assert torch.allclose(x2, up.clamp(-0.995, 0.995), atol=1e-5)  # zero residual at init
    # the residual conv gets gradients (it is what Stage-II learns), the paper's output does not change shape
    x2.sum().backward()
    assert g.stage2.to_image[0].weight.grad.abs().sum() > 0
    g2 = StackGanGenerator(stackgan_config("tiny", stage=2, text_dim=12)).eval()
    assert g2.stage2.to_image[0].weight.abs().sum() > 0  # the paper's Stage-II keeps its init
    y1, y2 = g2(z, emb)
    assert (y2 - F.interpolate(y1, size=32, mode="bilinear", align_corners=False)).abs().max() > 1e-4


@pytest.mark.parametrize("residual", [True, False])
def test_stage2_skip_hands_the_upsampled_stage1_image_to_the_last_layers(residual: bool) -> None:
    from t2igan.models.stackgan import StackGanConfig, StackGanGenerator

    torch.manual_seed(0)
    cfg = stackgan_config("tiny", stage=2, stage2_residual=residual, stage2_skip=True, text_dim=12)
    assert StackGanConfig.from_dict(cfg.to_dict()) == cfg
    g = StackGanGenerator(cfg).eval()
    seen: list[torch.Tensor] = []
    g.stage2.skip.register_forward_hook(lambda m, args, out: seen.append(args[0].detach()))
    z, emb = torch.randn(3, 16), torch.randn(3, 12)
    x1, x2 = g(z, emb)
    up = F.interpolate(x1, size=32, mode="bilinear", align_corners=False)
    assert x2.shape == (3, 3, 32, 32) and len(seen) == 1
    # the skip layer sees Stage-II's features and, as its last 3 channels, Stage-I's image at full size
    assert seen[0].shape[1] == g.stage2.to_image[0].weight.shape[1] + 3
    assert torch.allclose(seen[0][:, -3:], up, atol=1e-6)
    if residual:  # still starts as Stage-I upsampled
        assert torch.allclose(x2, up.clamp(-0.995, 0.995), atol=1e-5)
    # one Stage-I pixel moves Stage-II's output where it lies, through the skip (and not only via 16×16 features)
    x1b = x1.clone()
    x1b[:, :, 5, 5] += 0.5
    y = g.stage2.to_image[0](
        g.stage2.skip(
            torch.cat([seen[0][:, :-3], F.interpolate(x1b, size=32, mode="bilinear", align_corners=False)], 1)
        )
    )
    base = g.stage2.to_image[0](g.stage2.skip(seen[0]))
    if not residual:  # (a zero-initialised residual conv shows no change yet)
        assert (y - base)[:, :, 8:14, 8:14].abs().sum() > 0 and (y - base)[:, :, 20:, 20:].abs().sum() == 0
    assert "skip" not in dict(StackGanGenerator(stackgan_config("tiny", stage=2, text_dim=12)).stage2.named_children())


def test_stage2_can_read_the_code_that_drew_its_stage1_image(sg_config, blobs32, stage1_dir, tmp_path) -> None:
    from t2igan.models.stackgan import StackGanGenerator
    from t2igan.sampling import T2IPipeline

    torch.manual_seed(0)
    cfg = stackgan_config("tiny", stage=2, stage2_condition="stage1", text_dim=12)
    g = StackGanGenerator(cfg).eval()
    assert g.stage2.ca is None and g.ca_noise_dims == [cfg.condition_dim]  # one CA, one ε
    z, emb = torch.randn(3, 16), torch.randn(3, 12)
    eps = [torch.randn(3, cfg.condition_dim)]
    seen: list[torch.Tensor] = []
    g.stage2.joint.register_forward_hook(lambda m, args, out: seen.append(args[0][:, : cfg.condition_dim, 0, 0]))
    out = g.generate(z, emb, eps)
    c1 = g.stage1.draw(z, emb, eps[0])[1]
    assert len(out.images) == 2 and len(out.mus) == 1  # Stage-I's CA statistics only
    assert torch.allclose(seen[0], c1, atol=1e-6)  # Stage-II is handed ĉ₀, the code of its Stage-I image
    with pytest.raises(ValueError, match="needs Stage-I's code"):
        g.stage2(out.images[0], emb)
    with pytest.raises(T2IError, match="stage2_condition"):
        stackgan_config("tiny", stage2_condition="text")
    # a training step: no KL of Stage-II's own, D on μ₀, Stage-II learns; the export samples reproducibly
    s = _system(sg_config, "model.name=stackgan", "model.stage=2", f"model.stage1={stage1_dir}", "data.size=32",
                "model.stage2_condition=stage1", "loss.real_sr=1", *RECIPE)  # fmt: skip
    before = copy.deepcopy(s.G.stage2.state_dict())
    logs = [s.train_step(_batch(blobs32, i), i) for i in range(2)]
    assert all(log["kl"] == 0 and "nonfinite" not in log and log["g_real_sr"] > 0 for log in logs)
    after = s.G.stage2.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in after if after[k].is_floating_point())
    folder = export_pretrained(s.generator_for_export(), tmp_path / "exp", model_name="stackgan")
    pipe = T2IPipeline.from_pretrained(folder)
    e = torch.randn(2, 12)
    a = pipe(text_embeddings=e, num_images_per_prompt=1, seeds=[1, 2], output_type="pt")
    b = pipe(text_embeddings=e, num_images_per_prompt=1, seeds=[1, 2], output_type="pt")
    assert torch.equal(a.images, b.images) and a.images.shape[-1] == 32


def test_stage2_colour_consistency_ties_stage2_colours_to_stage1(sg_config, blobs32, stage1_dir) -> None:
    sets = ["model.name=stackgan", "model.stage=2", f"model.stage1={stage1_dir}", "data.size=32"]
    on = _system(sg_config, *sets, "loss.color_lambda=10")
    off = _system(sg_config, *sets)
    log_on = on.train_step(_batch(blobs32), 0)
    log_off = off.train_step(_batch(blobs32), 0)
    assert log_on["color"] > 0 and "color" not in log_off
    ga, gb = on.G.stage2.state_dict(), off.G.stage2.state_dict()
    assert any(not torch.equal(ga[k], gb[k]) for k in ga if ga[k].is_floating_point())
    with pytest.raises(T2IError, match=r"loss\.color_lambda ties Stage-II"):
        _system(sg_config, "model.name=stackgan", "data.size=16", "loss.color_lambda=10")


def test_stage2_discriminator_can_condition_on_the_frozen_stage1_mu(sg_config, blobs32, stage1_dir) -> None:
    sets = ["model.name=stackgan", "model.stage=2", f"model.stage1={stage1_dir}", "data.size=32"]
    for flag in (True, False):
        s = _system(sg_config, *sets, f"loss.d_on_stage1_mu={str(flag).lower()}")
        seen: list[torch.Tensor] = []
        original = s.D.cond_logits

        def spy(features: torch.Tensor, mu: torch.Tensor, _orig=original, _seen=seen) -> torch.Tensor:
            _seen.append(mu.detach().clone())
            return _orig(features, mu)

        s.D.cond_logits = spy  # type: ignore[method-assign]
        batch = _batch(blobs32)
        s.train_step(batch, 0)
        ca = s.G.stage1.ca if flag else None
        with torch.no_grad():
            mu1 = s.G.stage1.ca(batch["text_emb"])[1]
            wrong1 = s.G.stage1.ca(batch["wrong_emb"])[1]
        # real/right, real/wrong, fake/right in the D step; fake/right in the G step
        assert len(seen) == 4
        matches = [torch.allclose(m, mu1, atol=1e-6) for m in (seen[0], seen[2], seen[3])]
        assert all(matches) if ca is not None else not any(matches)
        assert torch.allclose(seen[1], wrong1, atol=1e-6) == flag
    with pytest.raises(T2IError, match=r"loss\.d_on_stage1_mu is a Stage-II setting"):
        _system(sg_config, "model.name=stackgan", "data.size=16", "loss.d_on_stage1_mu=true")


@pytest.mark.parametrize("stage", [1, 2])
def test_discriminator_can_compress_the_text_itself(sg_config, blobs16, blobs32, stage1_dir, tmp_path, stage) -> None:
    """model.d_condition=text: D's own FC + leaky ReLU of φ_t (Reed et al. 2016) replaces the CA mean μ."""
    d = stackgan_discriminator(stackgan_config("tiny", d_condition="text", text_dim=12, d_norm="spectral")).eval()
    emb = torch.randn(5, 12)
    fc = d.text_fc[0]
    assert parametrize.is_parametrized(fc, "weight")  # spectral norm on D's text FC too
    assert torch.allclose(d.condition(emb), F.leaky_relu(fc(emb), 0.2), atol=1e-6)
    with pytest.raises(RuntimeError, match="reads the CA mean"):
        stackgan_discriminator(stackgan_config("tiny", text_dim=12)).condition(emb)
    with pytest.raises(T2IError, match=r"model\.d_condition must be one of"):
        stackgan_config("tiny", d_condition="mu")
    sets = (
        ["model.name=stackgan", "data.size=16"]
        if stage == 1
        else ["model.name=stackgan", "model.stage=2", f"model.stage1={stage1_dir}", "data.size=32", "loss.kl_weight=0"]
    )
    data = blobs16 if stage == 1 else blobs32
    s = _system(sg_config, *sets, "model.d_condition=text", "loss.contrastive=1", *RECIPE)
    seen: list[torch.Tensor] = []
    original = s.D.cond_logits

    def spy(features: torch.Tensor, mu: torch.Tensor, _orig=original) -> torch.Tensor:
        seen.append(mu.detach().clone())
        return _orig(features, mu)

    s.D.cond_logits = spy  # type: ignore[method-assign]
    batch = _batch(data)
    before = copy.deepcopy(s.D.text_fc.state_dict())
    with torch.no_grad():
        code, code_wrong = s.D.condition(batch["text_emb"]), s.D.condition(batch["wrong_emb"])
    log = s.train_step(batch, 0)
    assert "nonfinite" not in log and log["d_contrastive"] > 0
    # real/right, real/wrong, fake/right in D's step carry D's code of the batch's captions (before D's update)
    assert len(seen) == 4
    assert torch.allclose(seen[0].float(), code, atol=2e-2) and torch.allclose(seen[2].float(), code, atol=2e-2)
    assert torch.allclose(seen[1].float(), code_wrong, atol=2e-2)
    # G's step reads the code from D's updated text FC, which D's loss trained
    after = s.D.text_fc.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in after)
    with torch.no_grad():
        assert torch.allclose(seen[3].float(), s.D.condition(batch["text_emb"]), atol=2e-2)
    assert not torch.allclose(seen[3].float(), code, atol=1e-4)
    # saved with D: a checkpoint round trip restores D's text FC exactly
    t = _system(sg_config, *sets, "model.d_condition=text", "loss.contrastive=1", *RECIPE)
    t.D.load_state_dict(s.D.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(t.D.text_fc.state_dict().values(), after.values(), strict=True))
    if stage == 2:
        with pytest.raises(T2IError, match=r"d_on_stage1_mu conditions D on Stage-I's μ₀"):
            _system(sg_config, *sets, "model.d_condition=text", "loss.d_on_stage1_mu=true")


def test_stage2_cpu_preset_reads_the_text_in_d_and_in_its_own_ca(blobs32, stage1_dir, tmp_path) -> None:
    """The shipped Stage-II preset: D compresses φ_t itself, Stage-II's own CA has no KL term, contrastive and
    spectral terms on."""
    from t2igan.training.config import load_config

    from .conftest import TINY

    cfg = load_config("stackgan_stage2_cpu", [*TINY, f"run_dir={tmp_path / 'run'}", f"model.stage1={stage1_dir}",
                                              "data.size=32", "train.eval_every=0"])  # fmt: skip
    s = get_system_class(cfg.model.name)(cfg, 12, CPU)
    assert s.model_config.d_condition == "text" and s.D.text_fc is not None and s.G.stage2.ca is not None
    assert cfg.loss.kl_weight == 0 and not cfg.loss.d_on_stage1_mu and cfg.loss.contrastive > 0
    assert cfg.loss.spectral > 0
    log = s.train_step(_batch(blobs32), 0)
    assert "nonfinite" not in log and log["d_contrastive"] > 0 and log["g_contrastive"] > 0 and log["g_spectral"] > 0


def _assert_term_lowers(sg_config, blobs32, sets: list[str], term: str, log_key: str, error) -> None:
    """``term`` on vs off from the same initial weights: logged each step, and ``error`` falls below start and off."""
    on, off = _system(sg_config, *sets, term), _system(sg_config, *sets)
    start = error(on)
    assert start == pytest.approx(error(off))  # same seed, same initial weights
    logs = [on.train_step(_batch(blobs32, i), i) for i in range(6)]
    for i in range(6):
        assert log_key not in off.train_step(_batch(blobs32, i), i)
    assert all(log[log_key] > 0 and "nonfinite" not in log for log in logs)
    assert error(on) < start and error(on) < error(off)


def test_stage2_real_sr_pulls_refined_real_images_to_the_real_ones(sg_config, blobs32, stage1_dir) -> None:
    sets = ["model.name=stackgan", "model.stage=2", f"model.stage1={stage1_dir}", "data.size=32", "optim.lr=2e-3"]
    batch = _batch(blobs32)
    small = F.interpolate(batch["image"], size=16, mode="bilinear", antialias=True, align_corners=False)

    def sr_error(s: GanSystem) -> float:
        g = s.G.stage2
        g.eval()
        with torch.no_grad():
            out = g(small, batch["text_emb"], torch.zeros(small.shape[0], g.ca.condition_dim))[0]
        g.train()
        return float((out - batch["image"]).abs().mean())

    _assert_term_lowers(sg_config, blobs32, sets, "loss.real_sr=10", "g_real_sr", sr_error)
    with pytest.raises(T2IError, match=r"loss\.real_sr trains Stage-II"):
        _system(sg_config, "model.name=stackgan", "data.size=16", "loss.real_sr=1")
    with pytest.raises(T2IError, match=r"loss\.real_sr=-1\.0 must be ≥ 0"):
        sg_config(*sets, "loss.real_sr=-1")


def test_spectral_term_pulls_the_stage2_spectrum_to_the_real_one(sg_config, blobs32, stage1_dir) -> None:
    from t2igan.losses.spectral import spectral_loss

    sets = ["model.name=stackgan", "model.stage=2", f"model.stage1={stage1_dir}", "data.size=32", "optim.lr=2e-3"]
    batch = _batch(blobs32)
    z = torch.randn(8, 100, generator=torch.Generator().manual_seed(0))

    def distance(s: GanSystem) -> float:  # in training mode (batch statistics), as the term sees G
        with torch.no_grad():
            eps = [torch.zeros(8, d) for d in s.G.ca_noise_dims]
            fake = s.G.generate(z[:, : s.z_dim], batch["text_emb"], eps).images[-1]
        return float(spectral_loss(fake, batch["image"]))

    _assert_term_lowers(sg_config, blobs32, sets, "loss.spectral=10", "g_spectral", distance)
    with pytest.raises(T2IError, match=r"loss\.spectral=-1\.0 must be ≥ 0"):
        sg_config(*sets, "loss.spectral=-1")


# ------------------------------------------------------------------------------------------------ contrastive term
def test_pair_logits_are_the_matching_logits_of_every_pair() -> None:
    torch.manual_seed(0)
    d = StackGanDiscriminator(32, 4, 6, uncond_head=True, d_norm="spectral").eval()  # eval: no power iteration
    f = d.encode(torch.randn(3, 3, 32, 32)).contiguous(memory_format=torch.channels_last)
    mus = torch.randn(5, 6)
    pairs = d.pair_logits(f, mus)
    by_hand = torch.stack(
        [torch.stack([d.cond_logits(f[i : i + 1], mus[j : j + 1])[0] for j in range(5)]) for i in range(3)]
    )
    assert pairs.shape == (3, 5)
    assert torch.allclose(pairs, by_hand, atol=1e-5)
    with pytest.raises(ValueError, match="spectral"):
        StackGanDiscriminator(32, 4, 6, uncond_head=True, d_norm="batch").pair_logits(f, mus)


@pytest.mark.parametrize("d_norm", ["spectral", "batch"])
def test_projection_head_is_psi_plus_the_projected_condition_for_every_pair(d_norm: str) -> None:
    torch.manual_seed(0)
    d = StackGanDiscriminator(32, 4, 6, uncond_head=True, d_norm=d_norm, d_text="projection").eval()
    assert d.cond_head is None and d.psi is not None and d.embed is not None
    f = d.encode(torch.randn(3, 3, 32, 32))
    mus = torch.randn(5, 6)
    pooled = f.sum(dim=(2, 3))  # Miyato & Koyama 2018, Eq. (3), by hand
    v = mus @ d.embed.weight.t()
    by_hand = (pooled @ d.psi.weight.t() + d.psi.bias)[:, 0][:, None] + pooled @ v.t()
    pairs = d.pair_logits(f, mus)  # a matrix product for either norm: BatchNorm is not in this head
    assert pairs.shape == (3, 5) and torch.allclose(pairs, by_hand, atol=1e-4)
    assert torch.allclose(d.cond_logits(f, mus[:3]), by_hand.diagonal(), atol=1e-4)
    # the condition matters, and a different one changes only the text term
    assert not torch.allclose(pairs[:, 0], pairs[:, 1])
    with pytest.raises(T2IError, match=r"model\.d_text='film' is unknown"):
        StackGanDiscriminator(32, 4, 6, uncond_head=True, d_text="film")


def test_projection_d_trains_stage2_with_the_contrastive_term_and_is_saved(sg_config, blobs32, stage1_dir) -> None:
    sets = ["model.name=stackgan", "model.stage=2", f"model.stage1={stage1_dir}", "data.size=32"]
    s = _system(sg_config, *sets, *RECIPE, "model.d_text=projection", "loss.contrastive=1")
    assert s.D.d_text == "projection" and s.D.cond_head is None
    before = {k: v.clone() for k, v in s.D.state_dict().items()}
    log = s.train_step(_batch(blobs32), 0)
    assert log["d_contrastive"] > 0 and log["g_contrastive"] > 0
    after = s.D.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("embed."))  # V learns
    # BatchNorm in D is allowed with the projection head (its pair logits do not mix images)
    _system(sg_config, *sets, "model.d_norm=batch", "model.d_text=projection", "loss.contrastive=1")
    with pytest.raises(T2IError, match=r"model\.d_text='x' is unknown"):
        _system(sg_config, *sets, "model.d_text=x")


@pytest.mark.parametrize("stage", [1, 2])
def test_contrastive_term_trains_d_and_g_on_all_pairs(sg_config, blobs16, blobs32, stage1_dir, stage: int) -> None:
    sets = ["model.name=stackgan", "data.size=16"] if stage == 1 else [
        "model.name=stackgan", "model.stage=2", f"model.stage1={stage1_dir}", "data.size=32"
    ]  # fmt: skip
    data = blobs16 if stage == 1 else blobs32
    on = _system(sg_config, *sets, *RECIPE, "loss.contrastive=1")
    off = _system(sg_config, *sets, *RECIPE)
    log_on, log_off = on.train_step(_batch(data), 0), off.train_step(_batch(data), 0)
    assert log_on["d_contrastive"] > 0 and log_on["g_contrastive"] > 0 and "d_contrastive" not in log_off
    # the same start (seeded init) and batch: only the contrastive term differs, so D and G move differently
    for a, b in ((on.D, off.D), (on.trained_g, off.trained_g)):
        sa, sb = a.state_dict(), b.state_dict()
        assert any(not torch.equal(sa[k], sb[k]) for k in sa if sa[k].is_floating_point())
    # on one repeated batch D learns to tell its captions apart: the loss falls from chance (log 7: 4 classes, the
    # same-class caption masked). The untrained tiny CA's μ is ~0.01, so a sharp τ makes the differences count.
    fit = _system(sg_config, *sets, *RECIPE, "loss.contrastive=1", "loss.contrastive_tau=0.1", "optim.lr_d=2e-3")
    logs = [fit.train_step(_batch(data), i) for i in range(40)]
    assert logs[0]["d_contrastive"] == pytest.approx(math.log(7), abs=0.05)
    assert logs[-1]["d_contrastive"] < 0.9 * logs[0]["d_contrastive"]


def test_contrastive_temperature_defaults_per_family_and_batchnorm_d_is_refused(sg_config) -> None:
    from t2igan.training.reed_system import REED_CONTRASTIVE_TAU
    from t2igan.training.stackgan_system import STACKGAN_CONTRASTIVE_TAU

    assert (REED_CONTRASTIVE_TAU, STACKGAN_CONTRASTIVE_TAU) == (0.1, 1.0)
    s = _system(sg_config, "model.name=stackgan", "data.size=16", *RECIPE, "loss.contrastive=1")
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    assert float(s.contrastive(logits, None)) == pytest.approx(math.log(1 + math.exp(-2.0)), rel=1e-5)
    half = _system(sg_config, "model.name=stackgan", "data.size=16", *RECIPE, "loss.contrastive=1",
                   "loss.contrastive_tau=0.5")  # fmt: skip
    assert float(half.contrastive(logits, None)) == pytest.approx(math.log(1 + math.exp(-4.0)), rel=1e-5)
    with pytest.raises(T2IError, match=r"loss\.contrastive scores every image-text pair"):
        _system(sg_config, "model.name=stackgan", "data.size=16", "model.d_norm=batch", "loss.contrastive=1")


def test_contrastive_settings_out_of_range_are_refused_and_the_mask_marks_same_classes() -> None:
    from t2igan.training.config import load_config

    for bad in ("loss.contrastive=-1", "loss.contrastive_tau=0"):
        with pytest.raises(T2IError, match=rf"{re.escape(bad.split('=')[0])}=.* is out of range"):
            load_config(None, ["model.name=stackgan", bad])
    mask = same_class_mask(torch.tensor([0, 1, 0]), CPU)
    assert mask.tolist() == [[True, False, True], [False, True, False], [True, False, True]]
    assert same_class_mask(None, CPU) is None


# ------------------------------------------------------------------------------------------------ sentence matching
def test_sentence_matching_loss_is_attngans_two_way_softmax_over_cosines() -> None:
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    r = F.normalize(img, dim=1) @ F.normalize(txt, dim=1).T  # R(Q_i, D_j): cosine of image i and sentence j
    by_hand = -(torch.log_softmax(4.0 * r, dim=1).diag().mean() + torch.log_softmax(4.0 * r, dim=0).diag().mean())
    assert float(sentence_matching_loss(img, txt, gamma=4.0)) == pytest.approx(float(by_hand), rel=1e-5)
    assert sentence_matching_loss(txt * 3, txt) < sentence_matching_loss(txt.roll(1, 0), txt)  # cosine: scale-free
    same = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)  # images 0, 1 share a class
    img, txt = torch.eye(3), torch.eye(3)[[1, 0, 2]]  # images 0 and 1 match each other's caption, not their own
    masked = sentence_matching_loss(img, txt, gamma=5.0, same_class=same)
    # rows 0, 1: own (cos 0) against class 2's (cos 0), the other same-class pair masked: log 2; row 2: log(1 + 2e⁻⁵)
    assert float(masked) == pytest.approx(2 * (2 * math.log(2) + math.log(1 + 2 * math.exp(-5))) / 3, rel=1e-5)
    assert sentence_matching_loss(img, txt, gamma=5.0) > masked + 2  # unmasked, the swapped pair is a hard negative


def _sje_image_encoder(folder, embed_dim: int) -> str:
    from t2igan.text.sje_image import IMAGE_ENCODER_DIR, SjeImageConfig, SjeImageEncoder

    torch.manual_seed(0)
    enc = SjeImageEncoder(SjeImageConfig(embed_dim=embed_dim, image_size=16, channels=(8, 16), extra_conv=False))
    enc.save_pretrained(folder / IMAGE_ENCODER_DIR)
    return str(folder)


def test_sentence_matching_trains_g_through_the_frozen_sje_image_encoder(
    sg_config, blobs32, stage1_dir, tmp_path
) -> None:
    sets = ["model.name=stackgan", "model.stage=2", f"model.stage1={stage1_dir}", "data.size=32", *RECIPE]
    enc_dir = _sje_image_encoder(tmp_path / "text_encoder", 12)
    on = _system(sg_config, *sets, "loss.sje_match=1", f"loss.sje_encoder={enc_dir}")
    off = _system(sg_config, *sets)
    frozen_before = copy.deepcopy(on.sje_image.state_dict())
    logs = [on.train_step(_batch(blobs32, i), i) for i in range(3)]
    assert "g_sje" not in off.train_step(_batch(blobs32), 0)
    assert all(log["g_sje"] > 0 and "nonfinite" not in log for log in logs)
    fresh = _system(sg_config, *sets, "loss.sje_match=1", f"loss.sje_encoder={enc_dir}")  # same seeded start as off
    fresh.train_step(_batch(blobs32), 0)
    sa, sb = fresh.trained_g.state_dict(), off.trained_g.state_dict()
    assert any(not torch.equal(sa[k], sb[k]) for k in sa if sa[k].is_floating_point())  # the term reaches G
    # and it is a loss G can lower: a step along its own gradient (the code fixed) brings each image nearer its caption
    batch = _batch(blobs32)
    z, code = torch.randn(8, on.model_config.z_dim), torch.randn(8, on.model_config.condition_dim)
    same = same_class_mask(batch["class_id"], CPU)

    def term() -> torch.Tensor:
        fake = on.G.generate(z, batch["text_emb"], [code, code]).images[-1]
        return sentence_matching_loss(on.sje_image(fake), batch["text_emb"], 10.0, same)

    on.G.eval()
    start = term()
    grads = torch.autograd.grad(start, on._g_params, allow_unused=True)
    with torch.no_grad():
        for p, g in zip(on._g_params, grads, strict=True):
            if g is not None:
                p -= 1e-2 * g / (g.norm() + 1e-12)
    assert float(term().detach()) < float(start.detach())
    after = on.sje_image.state_dict()  # θ(v) is fixed: neither trained nor its BatchNorm statistics updated
    assert all(torch.equal(frozen_before[k], after[k]) for k in after) and not on.sje_image.training
    assert all(p is not q for p in on.sje_image.parameters() for q in on._g_params)
    with pytest.raises(T2IError, match=r"loss\.sje_encoder is not set"):
        _system(sg_config, *sets, "loss.sje_match=1")
    with pytest.raises(T2IError, match=r"embeds into 9 dimensions but the caption embeddings have 12"):
        _system(sg_config, *sets, "loss.sje_match=1", f"loss.sje_encoder={_sje_image_encoder(tmp_path / 'e9', 9)}")
    with pytest.raises(T2IError, match=r"has no DS-SJE image encoder"):
        _system(sg_config, *sets, "loss.sje_match=1", f"loss.sje_encoder={tmp_path}")
    with pytest.raises(T2IError, match=r"loss\.sje_match=-1\.0 must be ≥ 0"):
        sg_config(*sets, "loss.sje_match=-1")
    with pytest.raises(T2IError, match=r"loss\.sje_gamma"):
        sg_config(*sets, "loss.sje_gamma=0")


# ------------------------------------------------------------------------------------------ Stage-I's D on Stage-II
def test_stage2_trains_against_stage1s_trained_discriminator(sg_config, blobs16, blobs32, tmp_path) -> None:
    from t2igan.training.convert import save_discriminator
    from t2igan.utils.checkpoint import rng_state, save_checkpoint

    s1 = _system(sg_config, "model.name=stackgan", "data.size=16", *RECIPE)
    for i in range(2):
        s1.train_step(_batch(blobs16, i), i)
    run = tmp_path / "stage1_run"
    export_pretrained(s1.generator_for_export(), run / "pretrained", model_name="stackgan")
    with pytest.raises(T2IError, match="holds none"):  # an export without D and no checkpoints
        _system(sg_config, "model.name=stackgan", "model.stage=2", f"model.stage1={run}", "data.size=32",
                "loss.stage1_d=1", *RECIPE)  # fmt: skip
    state = {"system": s1.state_dict(), "rng": rng_state()}
    save_checkpoint(run / "checkpoints" / "best", 2, state, s1.cfg.to_dict(), {"reason": "best"}, keep=1)
    sets = ["model.name=stackgan", "model.stage=2", f"model.stage1={run}", "data.size=32", *RECIPE]
    s = _system(sg_config, *sets, "loss.stage1_d=1")
    d1 = s1.D.state_dict()
    assert all(torch.equal(v, d1[k]) for k, v in s.D1.state_dict().items())  # Stage-I's trained D, read from the run
    assert "D1" in s.nets() and {id(p) for p in s.D1.parameters()} <= {id(p) for p in s._d_params}
    seen: list[tuple[int, torch.Tensor]] = []
    s.D1.encode.register_forward_hook(lambda m, args, out: seen.append((args[0].shape[-1], args[0].detach().clone())))
    batch = _batch(blobs32)
    log = s.train_step(batch, 0)
    assert log["d_stage1_d"] > 0 and math.isfinite(log["g_stage1_d"]) and "nonfinite" not in log
    assert [size for size, _ in seen] == [16, 16, 16]  # real, fake (D step), fake (G step): all at Stage-I's size
    real16 = F.interpolate(batch["image"], size=16, mode="bilinear", antialias=True, align_corners=False)
    assert torch.allclose(seen[0][1], real16, atol=1e-5)
    assert any(not torch.equal(v, d1[k]) for k, v in s.D1.state_dict().items())  # D1 trains on
    off = _system(sg_config, *sets)
    off.train_step(_batch(blobs32), 0)
    ga, gb = s.G.stage2.state_dict(), off.G.stage2.state_dict()
    assert off.D1 is None and any(not torch.equal(ga[k], gb[k]) for k in ga if ga[k].is_floating_point())
    # the checkpoint holds D1: a fresh system restores it exactly
    t = _system(sg_config, *sets, "loss.stage1_d=1")
    t.load_state_dict(s.state_dict())
    assert all(torch.equal(v, s.D1.state_dict()[k]) for k, v in t.D1.state_dict().items())
    # an export's discriminator/ is preferred over the run's checkpoints
    other = stackgan_discriminator(stackgan_config("tiny", stage=1, d_norm="spectral", text_dim=12))
    save_discriminator(other, run / "pretrained" / "discriminator", source="test")
    u = _system(sg_config, *sets, "loss.stage1_d=1")
    assert all(torch.equal(v, other.state_dict()[k]) for k, v in u.D1.state_dict().items())
    with pytest.raises(T2IError, match="does not fit this config's Stage-I D"):
        _system(sg_config, *sets, "loss.stage1_d=1", "model.d_text=projection")
    with pytest.raises(T2IError, match=r"loss\.stage1_d trains Stage-II"):
        _system(sg_config, "model.name=stackgan", "data.size=16", "loss.stage1_d=1")
    for extra in ([], ["model.stage2_condition=stage1"]):  # D1 reads Stage-I's μ₀ of the right and wrong texts
        v = _system(sg_config, *sets, "loss.stage1_d=1", *extra)
        mus: list[torch.Tensor] = []
        orig = v.D1.cond_logits
        v.D1.cond_logits = lambda f, mu, _o=orig, _m=mus: (_m.append(mu.detach().clone()), _o(f, mu))[1]  # type: ignore
        v.train_step(batch, 0)
        with torch.no_grad():
            right, wrong = v.G.stage1.ca(batch["text_emb"])[1], v.G.stage1.ca(batch["wrong_emb"])[1]
        assert len(mus) == 4  # real/right, real/wrong, fake/right (D step); fake/right (G step)
        assert all(torch.allclose(mus[i], right, atol=1e-6) for i in (0, 2, 3))
        assert torch.allclose(mus[1], wrong, atol=1e-6)
    with pytest.raises(T2IError, match=r"loss\.stage1_d trains Stage-II.*set model\.stage1"):  # Stage-II without it
        _system(sg_config, "model.name=stackgan", "model.stage=2", "data.size=32", "loss.stage1_d=1")
    with pytest.raises(T2IError, match=r"loss\.stage1_d=-1\.0 must be ≥ 0"):
        sg_config(*sets, "loss.stage1_d=-1")
