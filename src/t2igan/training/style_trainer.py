"""Train the style encoder S after the generator (Reed et al. 2016, §4.4).

    L_style = E_{t, z ~ N(0, 1)} ‖z − S(G(z, φ(t)))‖²₂

G is frozen and in eval mode (the same G that samples); each step draws a fresh batch of z and of caption embeddings
φ(t) from the training captions, renders x = G(z, φ(t)) without gradients and regresses S(x) onto z. Every draw comes
from a generator seeded by ``derive_seed(seed, "style", step)``: the same seed gives the same S.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from t2igan.models.style import StyleEncoder, StyleEncoderConfig
from t2igan.utils.errors import T2IError
from t2igan.utils.progress import progress_bar
from t2igan.utils.seed import derive_seed, torch_generator


@dataclass
class StyleTrainConfig:
    """Options of ``train_style_encoder`` (built from CLI options by ``utils.config.build_config``)."""

    steps: int = 1500
    batch_size: int = 64
    lr: float = 2e-4  # Adam, β = (0.5, 0.999) as the GAN itself (Reed 2016 §5)
    beta1: float = 0.5
    width: int = 64  # S's first conv width
    seed: int = 0


@dataclass
class StyleTrainResult:
    encoder: StyleEncoder
    losses: list[float] = field(default_factory=list)  # per step, mean over z dims of ‖z − S(G(z, φ))‖²
    seconds: float = 0.0


def render(generator: nn.Module, z: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    """x = G(z, φ) without gradients; the finest stage for multi-stage generators."""
    with torch.no_grad():
        out = generator(z, emb)
    return (out[-1] if isinstance(out, (list, tuple)) else out).float()


def _draw(step_seed: int, n: int, z_dim: int, pool: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch_generator(step_seed)
    z = torch.randn(n, z_dim, generator=g)
    idx = torch.randint(0, pool.shape[0], (n,), generator=g)
    return z, pool[idx]


def train_style_encoder(
    generator: nn.Module,
    text_embeddings: torch.Tensor,
    config: StyleTrainConfig | None = None,
    *,
    progress: bool = True,
) -> StyleTrainResult:
    """Fit S on (z, G(z, φ(t))) pairs with G frozen; ``text_embeddings`` ``[M, D]`` is the pool of φ(t)."""
    cfg = config or StyleTrainConfig()
    if text_embeddings.dim() != 2 or text_embeddings.shape[0] == 0:
        raise T2IError(f"need a non-empty [M, D] pool of caption embeddings, got {tuple(text_embeddings.shape)}")
    generator.eval()
    for p in generator.parameters():
        p.requires_grad_(False)
    pool = text_embeddings.float()
    z_dim = int(generator.z_dim)
    probe = render(generator, torch.zeros(1, z_dim), pool[:1])
    with torch.random.fork_rng(devices=[]):  # S's initial weights from the seed, global RNG left untouched
        torch.manual_seed(derive_seed(cfg.seed, "style", "init") % (2**31))
        encoder = StyleEncoder(StyleEncoderConfig(image_size=probe.shape[-1], z_dim=z_dim, width=cfg.width))
    opt = torch.optim.Adam(encoder.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    result = StyleTrainResult(encoder)
    start = time.perf_counter()
    encoder.train()
    bar = progress_bar(range(cfg.steps), enabled=progress, desc="style encoder", leave=False)
    for step in bar:
        z, emb = _draw(derive_seed(cfg.seed, "style", step), cfg.batch_size, z_dim, pool)
        x = render(generator, z, emb)
        loss = (encoder(x) - z).pow(2).mean()  # ‖z − S(G(z, φ(t)))‖² / z_dim
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise T2IError(f"style encoder loss became {value} at step {step}", hint="lower --lr")
        result.losses.append(value)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{value:.3f}")
    bar.close()
    result.seconds = time.perf_counter() - start
    encoder.eval()
    return result


def evaluate_style(
    generator: nn.Module,
    encoder: StyleEncoder,
    text_embeddings: torch.Tensor,
    *,
    n: int = 512,
    seed: int = 12345,
    batch_size: int = 128,
) -> dict[str, float]:
    """Style reconstruction error on held-out z (a seed never used in training), per z dimension.

    ``z_mse``: E‖z − S(G(z, φ))‖² / dim. Baselines: ``random_z_mse`` (an independent z', ≈ 2) and ``zero_mse``
    (predicting 0, ≈ 1). ``image_mse``: ‖G(S(x), φ) − x‖² per pixel vs ``random_image_mse`` with z'.
    """
    generator.eval()
    encoder.eval()
    pool = text_embeddings.float()
    z_dim = int(generator.z_dim)
    sums = dict.fromkeys(("z_mse", "random_z_mse", "zero_mse", "image_mse", "random_image_mse"), 0.0)
    done = 0
    with torch.inference_mode():
        for i in range(0, n, batch_size):
            b = min(batch_size, n - i)
            z, emb = _draw(derive_seed(seed, "style-eval", i), b, z_dim, pool)
            z_rand = torch.randn(b, z_dim, generator=torch_generator(derive_seed(seed, "style-random", i)))
            x = render(generator, z, emb)
            z_hat = encoder(x)
            sums["z_mse"] += float((z_hat - z).pow(2).mean(1).sum())
            sums["random_z_mse"] += float((z_rand - z).pow(2).mean(1).sum())
            sums["zero_mse"] += float(z.pow(2).mean(1).sum())
            sums["image_mse"] += float((render(generator, z_hat, emb) - x).pow(2).flatten(1).mean(1).sum())
            sums["random_image_mse"] += float((render(generator, z_rand, emb) - x).pow(2).flatten(1).mean(1).sum())
            done += b
    return {k: v / done for k, v in sums.items()}
