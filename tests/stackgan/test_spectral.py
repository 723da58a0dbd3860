"""Spectral statistics (losses/spectral.py) and Stage-II's spectral regularisation term (loss.spectral)."""

from __future__ import annotations

import math

import pytest
import torch

from t2igan.losses.spectral import periodic_peak_ratio, power_spectrum, spectral_loss


def _smooth_images(n: int, size: int, seed: int) -> torch.Tensor:
    """Random fields with an isotropic 1/f² spectrum (no direction, no fixed frequency), in [−1, 1]."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.fft.fft2(torch.randn(n, 3, size, size, generator=g))
    f = torch.fft.fftfreq(size)
    radius = (f[:, None].pow(2) + f[None, :].pow(2)).sqrt()
    x = torch.fft.ifft2(noise / (1.0 + radius / 0.05)).real
    return x / x.abs().amax()


def _with_grid(images: torch.Tensor, period: int, amplitude: float = 0.3) -> torch.Tensor:
    """The same images with a dot grid at a fixed place in every image (a G's periodic artefact)."""
    size = images.shape[-1]
    idx = torch.arange(size)
    grid = ((idx[:, None] % period == 0) & (idx[None, :] % period == 0)).float()
    return (images + amplitude * grid).clamp(-1, 1)


def test_power_spectrum_ignores_the_mean_and_grows_with_the_contrast() -> None:
    x = _smooth_images(4, 32, 0)
    p = power_spectrum(x)
    assert p.shape == (32, 32) and bool((p >= 0).all())
    assert torch.allclose(power_spectrum(2 * x), 4 * p, rtol=1e-4)  # power: quadratic in the amplitude
    assert torch.allclose(power_spectrum(x + 0.5), p, atol=1e-6)  # a brightness shift changes nothing
    with pytest.raises(ValueError, match=r"expected images \[B, C, H, W\]"):
        power_spectrum(x[0])


def test_periodic_peak_ratio_singles_out_a_fixed_grid() -> None:
    clean = _smooth_images(16, 64, 1)
    dotted = _with_grid(clean, period=4)
    clean_ratio, dotted_ratio = periodic_peak_ratio(clean), periodic_peak_ratio(dotted)
    assert math.isfinite(clean_ratio) and clean_ratio < 10
    assert dotted_ratio > 10 * clean_ratio


def test_spectral_loss_is_small_between_like_images_and_large_for_a_grid_or_blur() -> None:
    a, b = _smooth_images(16, 32, 2), _smooth_images(16, 32, 3)
    same_kind = float(spectral_loss(a, b))
    dotted = float(spectral_loss(_with_grid(a, period=4), b))
    blurred = float(
        spectral_loss(torch.nn.functional.interpolate(a[:, :, ::2, ::2], scale_factor=2.0, mode="bilinear"), b)
    )
    assert same_kind < dotted and same_kind < blurred
    assert float(spectral_loss(a, a)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="differ in size"):
        spectral_loss(a, a[:, :, :16, :16])


def test_spectral_loss_gradient_removes_a_grid() -> None:
    target = _smooth_images(16, 32, 4)
    x = _with_grid(_smooth_images(16, 32, 5), period=4).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.01)
    start_peak = periodic_peak_ratio(x.detach())
    for _ in range(60):
        opt.zero_grad()
        loss = spectral_loss(x, target)
        loss.backward()
        opt.step()
    assert periodic_peak_ratio(x.detach()) < start_peak / 3
