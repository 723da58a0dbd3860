"""StackGAN / StackGAN++ losses: the CA KL term, colour consistency and the matching-aware D/G objectives.

- KL (StackGAN eq. 2, used with weight λ = 2.0 in the G losses eqs. 4 and 6):
  ``D_KL(N(μ, diag σ²) ‖ N(0, I)) = −½ · mean(1 + log σ² − μ² − σ²)``, averaged over batch *and* dimensions as in
  the authors' `KL_loss`.
- Colour consistency (StackGAN++ §4.3, "colour-consistency regularisation"): per image, the pixel mean
  μ = Σ_k p_k / N and covariance Σ = Σ_k (p_k − μ)(p_k − μ)ᵀ / N of the RGB values p_k; between consecutive scales
  L_C = λ₁‖μ_fine − μ_coarse‖² + λ₂‖Σ_fine − Σ_coarse‖²_F (averaged as `nn.MSELoss` does; coarse detached);
  λ₂ = 5 λ₁ in the release.
- D objective (StackGAN eqs. 3/5 with the GAN-CLS mismatch term; StackGAN++ joint conditional + unconditional):
  ``BCE(D(x, μ), 1) + w·[BCE(D(x, μ_wrong), 0) + BCE(D(G(z, ĉ), μ), 0)]`` (+ the unconditional real/fake terms),
  with ``w = ½`` for StackGAN and 1 for StackGAN++.
- G objective: non-saturating ``BCE(D(G(z, ĉ), μ), 1)`` (+ unconditional term) + λ·KL.

All logits are pre-sigmoid; BCE-with-logits equals the release's Sigmoid + BCELoss.

``kind="hinge"`` swaps every term for its hinge form (Lim & Ye 2017; Miyato et al. 2018, Eq. (17); DF-GAN Eqs. (1)–(2)):
"label 1" in D → E[max(0, 1 − s)], "label 0" → E[max(0, 1 + s)], and G's term → −E[s]. The weights of the terms
stay the release's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "bce_fake",
    "bce_real",
    "color_consistency_loss",
    "d_fake_term",
    "d_real_term",
    "g_term",
    "generator_adv_loss",
    "kl_loss",
    "mean_covariance",
    "stackgan_d_loss",
    "stackganpp_d_loss",
]


def kl_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag exp(logvar)) ‖ N(0, I)), averaged over batch and condition dimensions (StackGAN eq. 2)."""
    mu, logvar = mu.float(), logvar.float()
    return -0.5 * torch.mean(1.0 + logvar - mu.pow(2) - logvar.exp())


def mean_covariance(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image colour mean ``[B, C]`` and covariance ``[B, C, C]`` over pixels (normalised by N = H·W)."""
    x = images.float().flatten(2)  # [B, C, N]
    mu = x.mean(dim=2)
    centred = x - mu[:, :, None]
    cov = centred @ centred.transpose(1, 2) / x.shape[2]
    return mu, cov


def color_consistency_loss(
    fine: torch.Tensor, coarse: torch.Tensor, lambda_mean: float = 1.0, lambda_cov: float = 5.0
) -> torch.Tensor:
    """λ₁·MSE(μ_fine, μ_coarse) + λ₂·MSE(Σ_fine, Σ_coarse); the coarse scale is detached (StackGAN++ §4.3)."""
    mu_f, cov_f = mean_covariance(fine)
    mu_c, cov_c = mean_covariance(coarse.detach())
    return lambda_mean * F.mse_loss(mu_f, mu_c) + lambda_cov * F.mse_loss(cov_f, cov_c)


def bce_real(logits: torch.Tensor) -> torch.Tensor:
    """−E log σ(logit): the 'label 1' cross-entropy."""
    return F.binary_cross_entropy_with_logits(logits.float(), torch.ones_like(logits, dtype=torch.float32))


def bce_fake(logits: torch.Tensor) -> torch.Tensor:
    """−E log(1 − σ(logit)): the 'label 0' cross-entropy."""
    return F.binary_cross_entropy_with_logits(logits.float(), torch.zeros_like(logits, dtype=torch.float32))


def _is_hinge(kind: str) -> bool:
    if kind not in ("bce", "hinge"):
        raise ValueError(f"unknown loss kind {kind!r}: use 'bce' or 'hinge'")
    return kind == "hinge"


def d_real_term(logits: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """D's "this is real (and matching)" term: BCE(s, 1), or the hinge E[max(0, 1 − s)]."""
    return F.relu(1.0 - logits.float()).mean() if _is_hinge(kind) else bce_real(logits)


def d_fake_term(logits: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """D's "this is fake (or mismatched)" term: BCE(s, 0), or the hinge E[max(0, 1 + s)]."""
    return F.relu(1.0 + logits.float()).mean() if _is_hinge(kind) else bce_fake(logits)


def g_term(logits: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    """G's term for D's logit on a fake: non-saturating BCE(s, 1), or −E[s] (hinge)."""
    return -logits.float().mean() if _is_hinge(kind) else bce_real(logits)


def stackgan_d_loss(
    real: torch.Tensor,
    wrong: torch.Tensor,
    fake: torch.Tensor,
    *,
    real_uncond: torch.Tensor | None = None,
    fake_uncond: torch.Tensor | None = None,
    kind: str = "bce",
) -> tuple[torch.Tensor, dict[str, float]]:
    """StackGAN D loss (eqs. 3/5 + GAN-CLS mismatch): ``real + ½(wrong + fake)``; returns ``(loss, parts)``.

    ``real``/``wrong``/``fake`` are conditional logits of (real image, its text), (real image, a different class's
    text) and (fake image, its text). With the Stage-II unconditional head the release averages:
    ``(real + u_real)/2 + (wrong + fake + u_fake)/3``.
    """
    l_real, l_wrong, l_fake = d_real_term(real, kind), d_fake_term(wrong, kind), d_fake_term(fake, kind)
    parts = {"d_real": float(l_real.detach()), "d_wrong": float(l_wrong.detach()), "d_fake": float(l_fake.detach())}
    if real_uncond is None or fake_uncond is None:
        return l_real + 0.5 * (l_wrong + l_fake), parts
    u_real, u_fake = d_real_term(real_uncond, kind), d_fake_term(fake_uncond, kind)
    parts["d_uncond"] = float((u_real + u_fake).detach())
    return (l_real + u_real) / 2.0 + (l_wrong + l_fake + u_fake) / 3.0, parts


def stackganpp_d_loss(
    real: torch.Tensor | None,
    wrong: torch.Tensor | None,
    fake: torch.Tensor | None,
    *,
    real_uncond: torch.Tensor,
    fake_uncond: torch.Tensor,
    wrong_uncond: torch.Tensor | None = None,
    uncond_weight: float = 1.0,
    kind: str = "bce",
) -> tuple[torch.Tensor, dict[str, float]]:
    """StackGAN++ joint conditional + unconditional D loss for one branch; returns ``(loss, parts)``.

    Conditional: ``real + wrong + fake`` as above. Unconditional: real → 1, fake → 0, and the mismatched pair's
    image — a *real* image — → 1 (``wrong_uncond``). Unconditional mode: pass ``None`` for the conditional logits.
    """
    u = d_real_term(real_uncond, kind) + d_fake_term(fake_uncond, kind)
    if wrong_uncond is not None:
        u = u + d_real_term(wrong_uncond, kind)
    parts = {"d_uncond": float(u.detach())}
    loss = uncond_weight * u
    if real is not None and wrong is not None and fake is not None:
        l_real, l_wrong, l_fake = d_real_term(real, kind), d_fake_term(wrong, kind), d_fake_term(fake, kind)
        loss = loss + l_real + l_wrong + l_fake
        parts.update(d_real=float(l_real.detach()), d_wrong=float(l_wrong.detach()), d_fake=float(l_fake.detach()))
    return loss, parts


def generator_adv_loss(
    fake: torch.Tensor | None,
    fake_uncond: torch.Tensor | None = None,
    uncond_weight: float = 1.0,
    kind: str = "bce",
) -> torch.Tensor:
    """Non-saturating G loss BCE(D(G(z, ĉ), μ), 1) (+ ``uncond_weight``·BCE(D_uncond(G(z, ĉ)), 1)); hinge: −E[s]."""
    terms = []
    if fake is not None:
        terms.append(g_term(fake, kind))
    if fake_uncond is not None:
        terms.append(uncond_weight * g_term(fake_uncond, kind))
    if not terms:
        raise ValueError("generator_adv_loss needs at least one logit tensor")
    return torch.stack(terms).sum()
