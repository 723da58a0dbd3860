import math

import pytest
import torch
import torch.nn.functional as F

from t2igan.losses import GanClsLoss, HingeLoss, interpolate_embeddings, matching_aware_gp
from t2igan.models.reed import ReedDiscriminator, reed_config


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_gan_cls_on_known_logits():
    real, wrong, fake = torch.tensor([2.0]), torch.tensor([-1.0]), torch.tensor([0.5])
    loss, parts = GanClsLoss().d_loss(real, wrong, fake)
    # BCE(s, 1) = softplus(−s), BCE(s, 0) = softplus(s); Alg. 1: real + ½·wrong + ½·fake
    expected = softplus(-2.0) + 0.5 * softplus(-1.0) + 0.5 * softplus(0.5)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert parts["d_wrong"].item() == pytest.approx(softplus(-1.0), rel=1e-6)
    assert GanClsLoss().g_loss(fake).item() == pytest.approx(softplus(-0.5), rel=1e-6)


def test_plain_gan_and_hinge():
    real, fake = torch.tensor([0.0, 1.0]), torch.tensor([0.0, -3.0])
    loss, parts = GanClsLoss(cls_weight=0.0).d_loss(real, None, fake)
    expected = (softplus(0.0) + softplus(-1.0)) / 2 + (softplus(0.0) + softplus(-3.0)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert "d_wrong" not in parts
    with pytest.raises(ValueError):
        GanClsLoss().d_loss(real, None, fake)
    h_loss, _ = HingeLoss().d_loss(torch.tensor([0.5, 2.0]), torch.tensor([-2.0, 0.0]), torch.tensor([0.0, -0.5]))
    # mean relu(1 − r) = 0.25; ½·mean relu(1 + w) = ½·0.5; ½·mean relu(1 + f) = ½·0.75
    assert h_loss.item() == pytest.approx(0.25 + 0.25 + 0.375)
    assert HingeLoss().g_loss(torch.tensor([1.0, 3.0])).item() == -2.0


def test_gan_int_midpoints_of_different_samples():
    h = torch.eye(8)
    g = torch.Generator().manual_seed(0)
    mid = interpolate_embeddings(h, 4, generator=g)
    assert mid.shape == (4, 8)
    for row in mid:  # exactly two different one-hots mixed ½/½
        assert sorted(row.tolist())[-2:] == [0.5, 0.5]
    quarter = interpolate_embeddings(h, 3, beta=0.25, generator=g)
    for row in quarter:
        assert sorted(row.tolist())[-2:] == [0.25, 0.75]
    with pytest.raises(ValueError):
        interpolate_embeddings(h[:1], 1)


def test_ma_gp_finite_and_reaches_d():
    d = ReedDiscriminator(reed_config(image_size=16, ndf=8, text_dim=6, proj_dim=4))
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    h = torch.randn(4, 6, requires_grad=True)
    logits = d(x, h)
    gp = matching_aware_gp(logits, x, h, weight=2.0, power=6.0)
    assert torch.isfinite(gp) and gp.item() > 0
    gp.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in d.to_logit.parameters())
    # matches the definition: 2·mean(‖(∇x, ∇h)‖^6)
    x2, h2 = x.detach().requires_grad_(), h.detach().requires_grad_()
    gx, gh = torch.autograd.grad(d(x2, h2).sum(), (x2, h2))
    norm = torch.cat([gx.flatten(1), gh], 1).norm(dim=1)
    assert gp.item() == pytest.approx(2 * norm.pow(6).mean().item(), rel=1e-3)


def test_bce_matches_torch_reference():
    logits = torch.randn(16)
    loss, _ = GanClsLoss(cls_weight=0.0).d_loss(logits, None, logits)
    ref = F.binary_cross_entropy(torch.sigmoid(logits), torch.ones(16)) + F.binary_cross_entropy(
        torch.sigmoid(logits), torch.zeros(16)
    )
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
