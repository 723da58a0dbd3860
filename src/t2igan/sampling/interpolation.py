"""Interpolation strips, as the figures of Reed et al. 2016, §5.

- Text interpolation ("Figure 6"-style, GAN-INT): z is fixed per row and the caption embedding moves linearly,
  φ_β = (1 − β)·φ(t₁) + β·φ(t₂), β = 0 … 1. Content (colour, shape) should change smoothly while the style
  (pose, background) held by z stays.
- Noise interpolation (§5, "style" rows): the caption is fixed per row and z moves from z(seed a) to z(seed b),
  linearly as in the paper (``mode="lerp"``) or along the great circle (``"slerp"``, which keeps ‖z‖ typical).

Both return an :class:`Interpolation` whose ``to_image()`` is a strip with the row label written under each row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from PIL import Image

from t2igan.sampling.pipeline import T2IPipeline, check_captions
from t2igan.utils.errors import T2IError
from t2igan.utils.images import make_grid


@dataclass
class Interpolation:
    """``images`` ``[rows · steps, 3, H, W]`` in [-1, 1], row-major; one label per row, β per column."""

    images: torch.Tensor
    steps: int
    row_labels: list[str]
    betas: list[float]
    kind: Literal["text", "z"]

    def to_image(self, scale: int = 1) -> Image.Image:
        """The strip: β above each column (when there is room), the row label under each row."""
        wide = self.images.shape[-1] * scale >= 32  # room for a "0.14" label above each column
        return make_grid(
            self.images,
            nrow=self.steps,
            row_captions=self.row_labels,
            scale=scale,
            col_labels=[f"{b:.2f}" for b in self.betas] if wide else None,
        )


def betas(steps: int) -> torch.Tensor:
    if steps < 2:
        raise T2IError(f"--steps must be ≥ 2, got {steps}")
    return torch.linspace(0.0, 1.0, steps)


def lerp(a: torch.Tensor, b: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """(1 − β)·a + β·b for each β: ``[D]``, ``[D]``, ``[S]`` → ``[S, D]``."""
    beta = beta[:, None]
    return (1 - beta) * a[None] + beta * b[None]


def slerp(a: torch.Tensor, b: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985), falling back to lerp for (anti)parallel vectors."""
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-8)
    omega = torch.arccos(cos.clamp(-1, 1))
    if float(omega.sin().abs()) < 1e-4:
        return lerp(a, b, beta)
    beta = beta[:, None]
    return (torch.sin((1 - beta) * omega) * a[None] + torch.sin(beta * omega) * b[None]) / omega.sin()


def interpolate_text(
    pipe: T2IPipeline,
    caption_a: str,
    caption_b: str,
    *,
    steps: int = 8,
    seeds: Sequence[int] = (0,),
    text_embeddings: torch.Tensor | None = None,
) -> Interpolation:
    """One row per seed: z fixed, φ moving linearly from caption A to caption B (Reed 2016 §5)."""
    bs = betas(steps)
    if text_embeddings is not None:
        emb = torch.as_tensor(text_embeddings, dtype=torch.float32)
        if emb.shape != (2, pipe.text_dim):
            raise T2IError(f"text_embeddings must be [2, {pipe.text_dim}], got {tuple(emb.shape)}")
    else:
        emb = pipe.encode_prompt(check_captions([caption_a, caption_b])).cpu()
    path = lerp(emb[0], emb[1], bs)  # [steps, D]
    seeds = list(seeds)
    z = pipe.prepare_latents(len(seeds), seeds=seeds).cpu()
    z = z.repeat_interleave(steps, dim=0)
    noise = pipe.prepare_ca_noise(len(seeds), seeds=seeds)  # CA ε fixed per row, like z
    noise = None if noise is None else [e.repeat_interleave(steps, dim=0) for e in noise]
    images = pipe.generate(z.to(pipe.device), path.repeat(len(seeds), 1).to(pipe.device), ca_noise=noise)[-1]
    labels = [f'seed {s}: "{caption_a}" -> "{caption_b}"' for s in seeds]  # ASCII: Pillow's default font
    return Interpolation(images, steps, labels, bs.tolist(), "text")


def interpolate_z(
    pipe: T2IPipeline,
    captions: Sequence[str],
    *,
    seed_a: int = 0,
    seed_b: int = 1,
    steps: int = 8,
    mode: Literal["lerp", "slerp"] = "lerp",
    text_embeddings: torch.Tensor | None = None,
) -> Interpolation:
    """One row per caption: φ fixed, z moving from z(seed_a) to z(seed_b)."""
    bs = betas(steps)
    if text_embeddings is not None:
        emb = torch.as_tensor(text_embeddings, dtype=torch.float32)
        captions = list(captions) or [f"embedding {i}" for i in range(len(emb))]
    else:
        captions = check_captions(captions)
        emb = pipe.encode_prompt(captions).cpu()
    za, zb = pipe.prepare_latents(2, seeds=[seed_a, seed_b]).cpu()
    if mode not in ("lerp", "slerp"):
        raise T2IError(f"mode must be lerp or slerp, got {mode!r}")
    path = (lerp if mode == "lerp" else slerp)(za, zb, bs)  # [steps, z]
    z = path.repeat(len(captions), 1)
    noise = pipe.prepare_ca_noise(1, seeds=[seed_a])  # CA ε of seed_a for every image: only z moves
    noise = None if noise is None else [e.expand(len(z), -1) for e in noise]
    images = pipe.generate(z.to(pipe.device), emb.repeat_interleave(steps, dim=0).to(pipe.device), ca_noise=noise)[-1]
    labels = [f'"{c}": z(seed {seed_a}) -> z(seed {seed_b})' for c in captions]
    return Interpolation(images, steps, labels, bs.tolist(), "z")
