"""Adversarial losses for text-conditional GANs, each citing where it comes from.

Notation: s_r = D(x, h) real image + right text, s_w = D(x, ĥ) real image + wrong text, s_f = D(G(z, h), h).
D outputs logits; the BCE forms use ``binary_cross_entropy_with_logits`` (numerically stable log σ).

- ``GanClsLoss`` — Reed et al. 2016, Algorithm 1 (GAN-CLS, matching-aware discriminator):
      L_D = log s_r + (log(1 − s_w) + log(1 − s_f)) / 2,   L_G = log s_f   (non-saturating, §3.2).
  Generalised as in the released code (``opt.cls_weight``): L_D = real + λ·wrong + (1 − λ)·fake, λ = 0.5 for
  GAN-CLS and λ = 0 for the plain conditional GAN (``GanClsLoss(cls_weight=0.0)``).
- ``interpolate_embeddings`` — GAN-INT, Reed et al. 2016 §4.3, Eq. (5): E_{t1,t2}[log(1 − D(G(z, βt1 + (1−β)t2)))];
  the released code realises it with an extra half batch of midpoints (β = 0.5) of two different samples'
  embeddings, with fresh z, in the generator step only.
- ``HingeLoss`` — hinge adversarial loss as used by DF-GAN (Tao et al. 2022, Eq. (1)–(2)):
      L_D = E[max(0, 1 − s_r)] + ½E[max(0, 1 + s_f)] + ½E[max(0, 1 + s_w)],   L_G = −E[s_f].
- ``matching_aware_gp`` — DF-GAN's Matching-Aware zero-centred Gradient Penalty (MA-GP, Eq. (3)):
      k·E[(‖∇_x D(x, e)‖ + ‖∇_e D(x, e)‖)^p] on real, matching pairs, k = 2, p = 6 (the code takes the L2 norm of
  the concatenated gradients, which we follow).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


@dataclass
class GanClsLoss:
    """Matching-aware BCE loss of GAN-CLS (Reed et al. 2016, Alg. 1). ``cls_weight`` = λ in real + λ·wrong + (1−λ)·fake.

    ``d_loss`` takes ``wrong_logits=None`` when λ = 0 (the plain conditional GAN never computes them).
    """

    cls_weight: float = 0.5

    def d_loss(
        self, real_logits: torch.Tensor, wrong_logits: torch.Tensor | None, fake_logits: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        real = _bce(real_logits, 1.0)
        fake = _bce(fake_logits, 0.0)
        parts = {"d_real": real, "d_fake": fake}
        total = real + (1.0 - self.cls_weight) * fake
        if self.cls_weight > 0:
            if wrong_logits is None:
                raise ValueError("GAN-CLS needs the logits of real images with mismatching text")
            wrong = _bce(wrong_logits, 0.0)
            parts["d_wrong"] = wrong
            total = total + self.cls_weight * wrong
        return total, parts

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        """Non-saturating generator loss: maximise log D(G(z, h), h) (Goodfellow et al. 2014, §3)."""
        return _bce(fake_logits, 1.0)


@dataclass
class HingeLoss:
    """Hinge loss with the matching-aware mismatch term of DF-GAN (Tao et al. 2022, Eq. (1)–(2)).

    The fake and mismatch terms share the weight ``cls_weight`` / ``1 − cls_weight`` like ``GanClsLoss``
    (DF-GAN: ½ and ½); λ = 0 drops the mismatch term.
    """

    cls_weight: float = 0.5

    def d_loss(
        self, real_logits: torch.Tensor, wrong_logits: torch.Tensor | None, fake_logits: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        real = F.relu(1.0 - real_logits.float()).mean()
        fake = F.relu(1.0 + fake_logits.float()).mean()
        parts = {"d_real": real, "d_fake": fake}
        total = real + (1.0 - self.cls_weight) * fake
        if self.cls_weight > 0:
            if wrong_logits is None:
                raise ValueError("the matching-aware hinge loss needs mismatching-text logits")
            wrong = F.relu(1.0 + wrong_logits.float()).mean()
            parts["d_wrong"] = wrong
            total = total + self.cls_weight * wrong
        return total, parts

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.float().mean()


def matching_aware_gp(
    real_logits: torch.Tensor, images: torch.Tensor, text_emb: torch.Tensor, *, weight: float = 2.0, power: float = 6.0
) -> torch.Tensor:
    """MA-GP of DF-GAN (Tao et al. 2022, Eq. (3)): weight · E[‖(∇_x D, ∇_e D)‖₂^power] on real matching pairs.

    ``real_logits`` must have been computed from ``images`` and ``text_emb`` that require grad; the penalty keeps
    the graph (``create_graph=True``) so its gradient reaches D's weights.
    """
    gx, ge = torch.autograd.grad(real_logits.float().sum(), (images, text_emb), create_graph=True)
    grad = torch.cat([gx.reshape(gx.shape[0], -1), ge.reshape(ge.shape[0], -1)], dim=1).float()
    norm = grad.pow(2).sum(dim=1).add(1e-12).sqrt()  # ε keeps the sqrt differentiable at 0
    return weight * norm.pow(power).mean()


def r1_penalty(real_logits: torch.Tensor, images: torch.Tensor, *, gamma: float) -> torch.Tensor:
    """R1 of Mescheder et al. 2018 (Eq. (9)): γ/2 · E[‖∇_x D(x)‖²] on real data (here: real *matching* pairs).

    ``real_logits`` must have been computed from ``images`` that require grad; the graph is kept
    (``create_graph=True``) so the penalty's gradient reaches D's weights. StyleGAN2 applies it lazily: every k-th
    D step with γ·k (pass ``gamma=γ·k``).
    """
    (grad,) = torch.autograd.grad(real_logits.float().sum(), images, create_graph=True)
    return 0.5 * gamma * grad.float().pow(2).flatten(1).sum(dim=1).mean()


def interpolate_embeddings(
    text_emb: torch.Tensor, n: int, *, beta: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """GAN-INT's interpolated embeddings (Reed et al. 2016 §4.3, Eq. (5)): β·h_i + (1 − β)·h_j for ``n`` pairs of
    *different* samples i ≠ j of the batch (a random permutation split in two halves, so i and j never coincide).

    The released code uses n = B/2 midpoints (β = 0.5) per batch of B; these enter only the generator's loss.
    """
    b = text_emb.shape[0]
    if b < 2:
        raise ValueError("GAN-INT needs at least 2 samples per batch to interpolate between")
    half = b // 2
    perm = torch.randperm(b, generator=generator, device="cpu").to(text_emb.device)
    i = perm[:half].repeat((n + half - 1) // half)[:n]
    j = perm[half : 2 * half].repeat((n + half - 1) // half)[:n]
    return beta * text_emb[i] + (1.0 - beta) * text_emb[j]


def mode_seeking_loss(fake_a: torch.Tensor, fake_b: torch.Tensor, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
    """Mode seeking (MSGAN, Mao et al., CVPR 2019, Eq. (3)): for two z of the same condition, maximise
    d(G(c, z1), G(c, z2)) / d(z1, z2); minimised as its reciprocal 1 / (ratio + ε), with mean absolute distances."""
    ratio = (fake_a.float() - fake_b.float()).abs().mean() / (z_a.float() - z_b.float()).abs().mean()
    return 1.0 / (ratio + 1e-5)


def same_class_mask(class_ids: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    """``[B, B]`` True where captions i and j are of the same class (contrastive_loss's mask); None without ids."""
    return None if class_ids is None else (class_ids[:, None] == class_ids[None, :]).to(device)


def contrastive_loss(logits: torch.Tensor, same_class: torch.Tensor | None = None) -> torch.Tensor:
    """Image-to-text InfoNCE (XMC-GAN, Zhang et al., CVPR 2021, Eq. (1)–(2)): each image must match its own caption
    better than the other captions of the batch. ``logits [B, B]`` (image i, text j); pairs of the same class other
    than the diagonal are masked out (they describe the same attributes: not negatives)."""
    logits = logits.float()
    if same_class is not None:
        off_diag = same_class & ~torch.eye(len(logits), dtype=torch.bool, device=logits.device)
        logits = logits.masked_fill(off_diag, float("-inf"))
    target = torch.arange(len(logits), device=logits.device)
    return F.cross_entropy(logits, target)


def sentence_matching_loss(
    image_emb: torch.Tensor, text_emb: torch.Tensor, gamma: float = 10.0, same_class: torch.Tensor | None = None
) -> torch.Tensor:
    """AttnGAN's sentence-level DAMSM loss (Xu et al., CVPR 2018, Eqs. (10)–(11)): R(Q, D) = cos(image, sentence),
    P(D_i | Q_i) = softmax_j(γ₃·R(Q_i, D_j)) over the batch, loss = −log P(D|Q) − log P(Q|D). ``image_emb`` and
    ``text_emb`` are ``[B, E]`` vectors of one joint space (here the DS-SJE image and caption encoders); same-class
    pairs other than the diagonal are masked out, as in ``contrastive_loss``."""
    scores = gamma * F.normalize(image_emb.float(), dim=1) @ F.normalize(text_emb.float(), dim=1).T
    return contrastive_loss(scores, same_class) + contrastive_loss(scores.T, same_class)
