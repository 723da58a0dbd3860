"""The later-GAN options of the Reed model and step: spectral norm, projection D, affine fusion, upsampling,
R1, mode seeking and DiffAugment translation."""

import pytest
import torch
from torch import nn

from t2igan.losses.gan import mode_seeking_loss, r1_penalty
from t2igan.models.reed import ReedDiscriminator, ReedGenerator, reed_config
from t2igan.training.augment import translate
from t2igan.utils.errors import T2IError
from t2igan.utils.seed import derive_seed

MODERN = dict(g_upsample="nearest", g_fusion="affine", d_norm="spectral", d_text="projection")


def test_modern_options_shapes_and_structure():
    cfg = reed_config(image_size=16, ngf=8, ndf=8, text_dim=12, z_dim=10, proj_dim=6, **MODERN)
    g, d = ReedGenerator(cfg), ReedDiscriminator(cfg)
    z, h = torch.randn(3, 10), torch.randn(3, 12)
    x = g(z, h)
    assert x.shape == (3, 3, 16, 16) and d(x, h).shape == (3,)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())  # SN replaces D's BatchNorm
    convs = [m for m in d.trunk.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)
    assert isinstance(g.stages[1].conv[0], nn.Upsample)
    for stage in g.stages:  # affine fusion starts as the identity (γ = β = 0)
        assert stage.affine is not None and stage.affine.weight.abs().sum() == 0


def test_projection_head_is_unconditional_plus_inner_product():
    cfg = reed_config(image_size=16, ngf=8, ndf=8, text_dim=12, d_text="projection")
    d = ReedDiscriminator(cfg).eval()
    feats = torch.randn(2, d.feature_dim, 4, 4)
    h = torch.randn(2, 12)
    pooled = feats.sum(dim=(2, 3))
    want = d.unconditional(pooled).flatten() + (d.embed(h) * pooled).sum(1)
    assert torch.allclose(d.head(feats, h), want, atol=1e-5)
    assert not torch.allclose(d.head(feats, h), d.head(feats, -h))  # the text changes the score


def test_affine_fusion_lets_the_text_act_in_every_stage():
    cfg = reed_config(image_size=16, ngf=8, ndf=8, text_dim=12, z_dim=10, proj_dim=6, g_fusion="affine")
    g = ReedGenerator(cfg).eval()
    torch.manual_seed(0)
    for stage in g.stages:
        nn.init.normal_(stage.affine.weight, 0, 0.5)
    # Cut the input path: the first stage sees no [z, φ'] through its conv, only through the affine terms.
    nn.init.zeros_(g.stages[0].conv.weight)
    z = torch.randn(2, 10)
    h = torch.randn(2, 12)
    assert not torch.allclose(g(z, h), g(z, h + 1.0))


def test_unknown_choice_is_a_one_line_error():
    with pytest.raises(T2IError, match=r"model\.d_norm='layer' is unknown"):
        reed_config("tiny", d_norm="layer")


def test_translate_shifts_with_zero_fill_and_keeps_gradients():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8).requires_grad_(True)
    gen = torch.Generator().manual_seed(0)
    y = translate(x, 0.25, gen)  # shifts of up to 2 px
    assert y.shape == x.shape
    gen = torch.Generator().manual_seed(0)
    sy = torch.randint(-2, 3, (2, 1, 1), generator=gen)
    sx = torch.randint(-2, 3, (2, 1, 1), generator=gen)
    for b in range(2):
        dy, dx = int(sy[b]), int(sx[b])
        for i in range(8):
            for j in range(8):
                si, sj = i + dy, j + dx
                want = x[b, :, si, sj] if 0 <= si < 8 and 0 <= sj < 8 else torch.zeros(3)
                assert torch.equal(y[b, :, i, j], want)
    y.sum().backward()
    assert x.grad is not None and x.grad.sum() > 0
    assert translate(x, 0.0, gen) is x


def test_r1_penalty_is_half_gamma_squared_gradient_norm():
    w = torch.randn(1, 3, 4, 4)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (x * w).flatten(1).sum(1)  # ∇_x D = w for every sample
    got = r1_penalty(logits, x, gamma=10.0)
    assert torch.allclose(got, 0.5 * 10.0 * w.pow(2).sum(), rtol=1e-5)


def test_mode_seeking_loss_falls_as_images_differ_more():
    z1, z2 = torch.zeros(4, 8), torch.ones(4, 8)
    a = torch.zeros(4, 3, 4, 4)
    close, far = mode_seeking_loss(a, a + 0.1, z1, z2), mode_seeking_loss(a, a + 1.0, z1, z2)
    assert far < close
    assert torch.allclose(far, torch.tensor(1.0 / (1.0 + 1e-5)))


@pytest.mark.parametrize(
    "extra",
    [
        ["loss.r1=1.0", "loss.r1_every=2", "data.translate=0.125", "loss.ms_weight=1.0", "loss.kind=hinge"],
        [f"model.{k}={v}" for k, v in MODERN.items()] + ["loss.kind=hinge", "optim.lr_d=4e-4", "optim.beta1=0"],
    ],
)
def test_training_step_with_options_is_finite_and_reports_terms(tiny_config, fake_dataset, extra):
    from t2igan.training.trainer import Trainer

    trainer = Trainer(tiny_config(*extra), dataset=fake_dataset)
    summary = trainer.fit()
    last = summary["last"]
    assert summary["step"] == 4 and "nonfinite" not in last
    if "loss.r1=1.0" in extra:
        assert "g_ms" in last and last["g_ms"] > 0
        # R1 every 2nd step: the last step (index 3) has none, an even one does
        idx, epoch = trainer.batch_indices(4)
        out = trainer.system.train_step(trainer.dataset.batch(idx, epoch), 4)
        assert out["d_r1"] > 0


def test_contrastive_loss_masks_same_class_pairs_and_prefers_the_diagonal():
    from t2igan.losses.gan import contrastive_loss

    good = torch.eye(3) * 5.0
    bad = torch.ones(3, 3) * 5.0 - torch.eye(3) * 5.0
    assert contrastive_loss(good) < contrastive_loss(bad)
    same = torch.tensor([[True, True, False], [True, True, False], [False, False, True]])
    masked = contrastive_loss(torch.ones(3, 3), same)  # i=0,1 only compete with class-2's caption
    assert torch.allclose(masked, (2 * torch.tensor(2.0).log() + torch.tensor(3.0).log()) / 3)


def test_contrastive_step_trains_both_players(tiny_config, fake_dataset):
    from t2igan.training.trainer import Trainer

    extra = [f"model.{k}={v}" for k, v in MODERN.items()] + ["loss.contrastive=1.0", "loss.kind=hinge"]
    summary = Trainer(tiny_config(*extra), dataset=fake_dataset).fit()
    assert summary["last"]["d_contrastive"] > 0 and summary["last"]["g_contrastive"] > 0
    with pytest.raises(T2IError, match="projection"):
        Trainer(tiny_config("loss.contrastive=1.0"), dataset=fake_dataset)


def test_standing_statistics_make_the_ema_generator_batch_independent_and_deterministic(tiny_config, fake_dataset):
    """The EMA G's BatchNorm statistics are recomputed for its own weights (BigGAN's standing statistics)."""
    from t2igan.training.trainer import Trainer

    trainer = Trainer(tiny_config("optim.ema=0.9"), dataset=fake_dataset)
    trainer.fit()
    g = trainer.system.G_ema
    live_mean = trainer.system.G.stages[0].norm.running_mean.clone()
    trainer.refresh_generator_statistics()
    first = g.stages[0].norm.running_mean.clone()
    assert not torch.allclose(first, live_mean)  # no longer the live G's statistics
    trainer.refresh_generator_statistics()
    assert torch.equal(first, g.stages[0].norm.running_mean)  # exact, repeatable average
    # They are the mean of the batch statistics of G_ema itself over the fixed captions.
    emb = trainer._stat_embs
    gen = torch.Generator().manual_seed(derive_seed(trainer.cfg.seed, "standing-stats"))
    z = torch.randn(len(emb), trainer.system.z_dim, generator=gen)
    feats = {}
    handle = g.stages[0].conv.register_forward_hook(lambda _m, _i, out: feats.setdefault("x", out))
    g.eval()
    with torch.no_grad():
        g(z, emb)
    handle.remove()
    assert torch.allclose(first, feats["x"].float().mean(dim=(0, 2, 3)), atol=1e-4)


def test_cpu_time_budget_stops_the_run_cleanly(tiny_config, fake_dataset):
    from t2igan.training.trainer import Trainer

    trainer = Trainer(tiny_config("train.steps=100000", "train.max_cpu_minutes=0.002"), dataset=fake_dataset)
    summary = trainer.fit()
    assert summary["budget_reached"] and 0 < summary["step"] < 100000
    assert (trainer.run_dir / "pretrained" / "model_index.json").is_file()  # stopped cleanly: exported


def test_cpu_time_budget_leaves_out_the_callbacks(tiny_config, fake_dataset):
    """Training-time evaluation (a callback) does not use up the CPU budget: runs compare on training CPU time."""
    import time

    from t2igan.training.trainer import Trainer

    class BusyCallback:
        def on_step_end(self, trainer) -> None:
            t0 = time.process_time()
            while time.process_time() - t0 < 0.4:  # more than the whole budget, at every step
                pass

        def on_fit_end(self, trainer) -> None:
            pass

    trainer = Trainer(
        tiny_config("train.steps=3", "train.max_cpu_minutes=0.005"), dataset=fake_dataset, callbacks=[BusyCallback()]
    )
    summary = trainer.fit()
    assert summary["step"] == 3 and not summary["budget_reached"]
