"""StackGAN / StackGAN++ networks on tiny configs: shapes of every stage and branch, fused up-sampling, CA."""

from __future__ import annotations

import math

import pytest
import torch

from t2igan.losses.stackgan import kl_loss
from t2igan.models.stackgan import (
    ConditioningAugmentation,
    StackGanConfig,
    StackGanDiscriminator,
    StackGanGenerator,
    UpsampleConv3x3,
)
from t2igan.models.stackganpp import StackGanPPConfig, StackGanPPDiscriminators, StackGanPPGenerator
from t2igan.utils.errors import T2IError

TINY = dict(text_dim=12, z_dim=6, condition_dim=4, gf_dim=8, df_dim=8)


def test_fused_upsample_equals_nearest_then_conv3x3() -> None:
    torch.manual_seed(0)
    m = UpsampleConv3x3(5, 7, fused=True)
    torch.nn.init.normal_(m.weight)
    x = torch.randn(2, 5, 6, 6, dtype=torch.float64)
    m = m.double()
    fused = m(x)
    m.fused = False
    naive = m(x)
    assert fused.shape == naive.shape == (2, 7, 12, 12)
    torch.testing.assert_close(fused, naive, rtol=1e-10, atol=1e-10)


def test_bilinear_upsample_is_bilinear_resize_then_conv3x3_and_not_nearest() -> None:
    torch.manual_seed(0)
    m = UpsampleConv3x3(5, 7, fused=True, mode="bilinear").double()
    torch.nn.init.normal_(m.weight)
    assert not m.fused  # bilinear never folds into the transposed conv
    x = torch.randn(2, 5, 6, 6, dtype=torch.float64)
    up = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    torch.testing.assert_close(m(x), torch.nn.functional.conv2d(up, m.weight, padding=1))
    nearest = UpsampleConv3x3(5, 7, fused=True).double()
    nearest.weight.data.copy_(m.weight.data)
    assert (m(x) - nearest(x)).abs().max() > 1e-3


def test_stage2_upsample_reaches_only_stage2_and_survives_save_and_load(tmp_path) -> None:
    cfg = StackGanConfig(stage=2, stage1_size=16, stage2_size=32, r_num=1, stage2_upsample="bilinear", **TINY)
    g = StackGanGenerator(cfg)
    modes = lambda net: {m.mode for m in net.modules() if isinstance(m, UpsampleConv3x3)}  # noqa: E731
    assert modes(g.stage2) == {"bilinear"} and modes(g.stage1) == {"nearest"}
    g.save_pretrained(tmp_path / "g")
    again = StackGanGenerator.from_pretrained(tmp_path / "g")
    assert modes(again.stage2) == {"bilinear"}
    g.eval(), again.eval()
    z, t = torch.randn(2, 6), torch.randn(2, 12)
    eps = [torch.zeros(2, 4), torch.zeros(2, 4)]
    torch.testing.assert_close(g.generate(z, t, eps).images[1], again.generate(z, t, eps).images[1])


@pytest.mark.parametrize(("s1", "s2"), [(16, 32), (16, 64)])
def test_stackgan_shapes(s1: int, s2: int) -> None:
    cfg = StackGanConfig(stage=2, stage1_size=s1, stage2_size=s2, r_num=1, **TINY)
    g = StackGanGenerator(cfg)
    z, t = torch.randn(3, 6), torch.randn(3, 12)
    out = g.generate(z, t)
    assert [tuple(x.shape) for x in out.images] == [(3, 3, s1, s1), (3, 3, s2, s2)]
    assert [tuple(m.shape) for m in out.mus] == [(3, 4), (3, 4)]
    assert all(p.requires_grad is False for p in g.stage1.parameters())
    assert not g.stage1.training and g.stage2 is not None and g.stage2.training
    d1 = StackGanDiscriminator(s1, 8, 4, uncond_head=False)
    d2 = StackGanDiscriminator(s2, 8, 4, uncond_head=True)
    mu = out.mus[0].detach()
    assert d1(out.images[0], mu).shape == (3,)
    f = d2.encode(out.images[1])
    assert f.shape[-2:] == (4, 4) and f.shape[1] <= 8 * 8
    assert d2.cond_logits(f, mu).shape == (3,) and d2.uncond_logits(f).shape == (3,)


def test_stage1_only_generator_returns_one_image() -> None:
    g = StackGanGenerator(StackGanConfig(stage=1, stage1_size=16, **TINY))
    imgs = g(torch.randn(2, 6), torch.randn(2, 12))
    assert len(imgs) == 1 and imgs[0].shape == (2, 3, 16, 16)
    assert imgs[0].abs().max() <= 1


def test_paper_discriminator_widths() -> None:
    d = StackGanDiscriminator(256, 64, 128, uncond_head=True)
    assert d.feature_dim == 512  # 4×4×ndf·32 reduced to ndf·8 by two conv3×3 blocks
    assert StackGanDiscriminator(64, 64, 128, uncond_head=False).feature_dim == 512


def test_ca_noise_is_an_input_and_ca_mean_turns_it_off() -> None:
    g = StackGanGenerator(StackGanConfig(stage=2, stage1_size=16, stage2_size=32, r_num=1, **TINY)).eval()
    z, t = torch.randn(2, 6), torch.randn(2, 12)
    assert g.ca_noise_dims == [4, 4]  # one ε per CA: Stage-I, Stage-II
    eps = [torch.randn(2, 4), torch.randn(2, 4)]
    a, b = g(z, t, eps=eps), g(z, t, eps=eps)
    assert torch.equal(a[1], b[1])  # the noise is the caller's: same ε, same image
    other = g(z, t, eps=[eps[0], torch.randn(2, 4)])
    assert torch.equal(other[0], a[0]) and not torch.equal(other[1], a[1])  # Stage-II's own ε moves Stage-II only
    gen = torch.Generator().manual_seed(1)
    assert not torch.equal(g(z, t, generator=gen)[1], g(z, t, generator=gen)[1])
    g.use_ca_mean = True
    assert g.use_ca_mean and g.ca_noise_dims == []
    assert torch.equal(g(z, t, eps=eps)[1], g(z, t, generator=gen)[1])  # ĉ = μ: ε ignored


def test_pipeline_ca_noise_follows_the_seed_not_the_batch() -> None:
    from t2igan.sampling import T2IPipeline

    pipe = T2IPipeline(StackGanPPGenerator(StackGanPPConfig(base_size=16, branch_num=2, r_num=1, **TINY)))
    emb = torch.randn(2, 12)
    out = pipe(["a", "b"], num_images_per_prompt=2, seeds=[5, 6], output_type="pt", text_embeddings=emb)
    alone = pipe(["b"], num_images_per_prompt=1, seeds=[6], output_type="pt", text_embeddings=emb[1:])
    torch.testing.assert_close(alone.images[0], out.images[3])
    z = pipe.prepare_latents(1, seeds=[6])
    same_z = pipe.generate(z, emb[1:], ca_noise=pipe.prepare_ca_noise(1, seeds=[7]))[-1]
    assert not torch.allclose(same_z[0], alone.images[0])  # another seed's ε: another image for the same z


@pytest.mark.parametrize("glu", [False, True])
def test_ca_samples_have_mean_mu_and_variance_sigma_squared(glu: bool) -> None:
    """ĉ = μ + σ ⊙ ε, ε ~ N(0, I) (StackGAN §3.2): over many ε, ĉ's sample mean is μ and its variance σ² = exp(log σ²).

    (μ, log σ²) are the two halves of ReLU(FC φ), or of GLU(FC φ) with FC → 4·Ng (StackGAN++).
    """
    ca = ConditioningAugmentation(5, 3, glu=glu)
    assert ca.fc.out_features == (12 if glu else 6)
    want_mu = [0.5, -1.0, 2.0] if glu else [0.5, 0.0, 2.0]
    want_logvar = [-1.0, 0.7, 1.5] if glu else [0.0, 0.7, 1.5]  # ReLU: log σ² ≥ 0
    head = torch.tensor(want_mu + want_logvar)
    with torch.no_grad():  # FC output = bias, set so the halves are the wanted (μ, log σ²); GLU gate open
        ca.fc.weight.zero_()
        ca.fc.bias.copy_(torch.cat([head, torch.full((6,), 30.0)]) if glu else head)
    n = 40_000
    t = torch.randn(n, 5)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        c, mu, logvar = ca(t, generator=gen)
    torch.testing.assert_close(mu[0], torch.tensor(want_mu))
    torch.testing.assert_close(logvar[0], torch.tensor(want_logvar))
    mu, var = mu[0], logvar[0].exp()
    se = (var / n).sqrt()
    assert ((c.mean(0) - mu).abs() < 5 * se).all()
    torch.testing.assert_close(c.var(0), var, rtol=0.05, atol=0.0)
    ca.sample = False
    c_mean, mu2, _ = ca(t[:2])
    assert torch.equal(c_mean, mu2)  # test time: ĉ = μ


def test_kl_is_zero_exactly_at_the_standard_normal() -> None:
    """KL(N(μ, σ²) ‖ N(0, I)) (StackGAN eq. 2) is 0 iff μ = 0 and log σ² = 0, and positive elsewhere."""
    zeros = torch.zeros(4, 3)
    assert kl_loss(zeros, zeros).item() == 0.0
    for mu, logvar in [(zeros + 0.1, zeros), (zeros, zeros + 0.2), (zeros, zeros - 0.2), (torch.randn(4, 3), zeros)]:
        assert kl_loss(mu, logvar).item() > 0
    # closed form for one dimension: ½(μ² + σ² − 1 − log σ²)
    mu, logvar = torch.tensor([[0.5]]), torch.tensor([[math.log(2.0)]])
    assert kl_loss(mu, logvar).item() == pytest.approx(0.5 * (0.25 + 2.0 - 1.0 - math.log(2.0)), rel=1e-6)


@pytest.mark.parametrize("conditional", [True, False])
def test_stackganpp_shapes(conditional: bool) -> None:
    cfg = StackGanPPConfig(base_size=16, branch_num=3, r_num=1, conditional=conditional, **TINY)
    g = StackGanPPGenerator(cfg)
    z = torch.randn(3, 6)
    out = g.generate(z, torch.randn(3, 12) if conditional else None)
    assert [tuple(x.shape) for x in out.images] == [(3, 3, 16, 16), (3, 3, 32, 32), (3, 3, 64, 64)]
    assert (out.mu is None) == (not conditional)
    ds = StackGanPPDiscriminators(cfg)
    for d, img in zip(ds, out.images, strict=True):
        f = d.encode(img)
        assert d.uncond_logits(f).shape == (3,)
        if conditional:
            assert d.cond_logits(f, out.mu.detach()).shape == (3,)
        else:
            assert d.cond_head is None


def test_bad_config_is_a_user_error() -> None:
    with pytest.raises(T2IError):
        StackGanConfig(stage=3)
    with pytest.raises(T2IError):
        StackGanConfig(stage1_size=48)
    with pytest.raises(T2IError, match="stage2_upsample"):
        StackGanConfig(stage2_upsample="cubic")
    with pytest.raises(T2IError):
        StackGanPPConfig.from_dict({"nope": 1})


def test_stage_grid_names_stages_and_branches() -> None:
    from t2igan.sampling.stages import stage_grid

    sg = StackGanGenerator(StackGanConfig(stage=2, stage1_size=16, stage2_size=32, r_num=1, **TINY))
    pp = StackGanPPGenerator(StackGanPPConfig(base_size=16, branch_num=2, r_num=1, **TINY))
    emb = torch.randn(1, 12)
    for g in (sg, pp):
        grid = stage_grid(g, ["a caption"], seeds=[0, 1], text_embeddings=emb)
        assert grid.width >= 4 * 32  # 2 seeds × 2 stages, each at the finest size

    from t2igan.sampling.stages import _stage_names

    assert _stage_names(sg, [16, 32]) == ["Stage-I", "Stage-II"]
    assert _stage_names(pp, [16, 32]) == ["16px", "32px"]  # StackGAN++ branches are named by their size


def test_preset_time_builds_the_preset_with_overrides(tmp_path, load_benchmark) -> None:
    bench = load_benchmark("preset_time")
    system, cfg = bench.build("stackgan_stage2_cpu", tmp_path, ["model.r_num=4", "model.stage2_upsample=bilinear"])
    g = system.generator_for_export()
    assert len(g.stage2.residual) == 4 and cfg.model.params["r_num"] == 4
    assert {m.mode for m in g.stage2.modules() if isinstance(m, UpsampleConv3x3)} == {"bilinear"}
    plain, _ = bench.build("stackgan_stage2_cpu", tmp_path / "plain")
    assert len(plain.generator_for_export().stage2.residual) == 2  # the preset's R_NUM
