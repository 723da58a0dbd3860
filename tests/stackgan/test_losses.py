"""KL against the closed form, colour consistency against a hand computation, D/G loss structure."""

from __future__ import annotations

import math

import torch

from t2igan.losses.stackgan import (
    bce_fake,
    bce_real,
    color_consistency_loss,
    generator_adv_loss,
    kl_loss,
    mean_covariance,
    stackgan_d_loss,
    stackganpp_d_loss,
)


def test_kl_matches_closed_form() -> None:
    mu = torch.tensor([[0.5, -1.0], [0.0, 2.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)], [math.log(0.25), 0.0]])
    # KL(N(m, s²) ‖ N(0, 1)) = ½ (s² + m² − 1 − ln s²), per dim, then the mean over the 4 entries
    per = [0.5 * (s2 + m * m - 1 - math.log(s2)) for m, s2 in [(0.5, 1), (-1, 4), (0, 0.25), (2, 1)]]
    assert math.isclose(float(kl_loss(mu, logvar)), sum(per) / 4, rel_tol=1e-6)
    assert float(kl_loss(torch.zeros(3, 5), torch.zeros(3, 5))) == 0.0


def test_mean_covariance_by_hand() -> None:
    # one image, 2 channels, 2 pixels: channel 0 = (1, 3), channel 1 = (2, 2)
    img = torch.tensor([[[[1.0, 3.0]], [[2.0, 2.0]]]])
    mu, cov = mean_covariance(img)
    torch.testing.assert_close(mu, torch.tensor([[2.0, 2.0]]))
    torch.testing.assert_close(cov, torch.tensor([[[1.0, 0.0], [0.0, 0.0]]]))


def test_color_consistency_by_hand() -> None:
    coarse = torch.zeros(1, 3, 2, 2)  # μ = 0, Σ = 0
    fine = torch.zeros(1, 3, 4, 4)
    fine[:, 0, :2] = 1.0  # red channel: half the pixels 1 → mean 0.5, var 0.25
    # MSE over μ (3 entries): (0.5²)/3 ; MSE over Σ (9 entries): (0.25²)/9
    expected = 50.0 * (0.25 / 3) + 250.0 * (0.0625 / 9)
    got = color_consistency_loss(fine, coarse, lambda_mean=50.0, lambda_cov=250.0)
    assert math.isclose(float(got), expected, rel_tol=1e-6)
    fine.requires_grad_(True)
    coarse.requires_grad_(True)
    color_consistency_loss(fine, coarse).backward()
    assert coarse.grad is None and fine.grad is not None  # the coarse scale is the target


def test_d_and_g_loss_structure() -> None:
    r, w, f = torch.tensor([2.0]), torch.tensor([-1.0]), torch.tensor([0.5])
    loss, parts = stackgan_d_loss(r, w, f)
    torch.testing.assert_close(loss, bce_real(r) + 0.5 * (bce_fake(w) + bce_fake(f)))
    assert set(parts) == {"d_real", "d_wrong", "d_fake"}
    ur, uf = torch.tensor([1.0]), torch.tensor([-2.0])
    loss2, _ = stackgan_d_loss(r, w, f, real_uncond=ur, fake_uncond=uf)
    torch.testing.assert_close(loss2, (bce_real(r) + bce_real(ur)) / 2 + (bce_fake(w) + bce_fake(f) + bce_fake(uf)) / 3)
    loss3, _ = stackganpp_d_loss(r, w, f, real_uncond=ur, fake_uncond=uf, wrong_uncond=ur)
    want = bce_real(r) + bce_fake(w) + bce_fake(f) + 2 * bce_real(ur) + bce_fake(uf)
    torch.testing.assert_close(loss3, want)
    loss4, parts4 = stackganpp_d_loss(None, None, None, real_uncond=ur, fake_uncond=uf)
    torch.testing.assert_close(loss4, bce_real(ur) + bce_fake(uf))
    assert "d_real" not in parts4
    torch.testing.assert_close(generator_adv_loss(f, uf), bce_real(f) + bce_real(uf))
