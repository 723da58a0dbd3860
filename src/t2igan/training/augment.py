"""Differentiable augmentation for D (DiffAugment, Zhao et al., NeurIPS 2020, §3.2).

The same random transform family is applied to real and generated images wherever D sees them (D's and G's steps),
so D cannot tell real from fake by the augmentation, and G's gradient flows through it. Only transforms that keep
what a caption names are offered: translation (DiffAugment's "translation": shift by up to ``ratio`` of the side,
zero fill). Colour jitter would change "red petals", cutout could hide "a black centre" — they are left out on
purpose.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def translate(x: torch.Tensor, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """Shift each image of ``x [B, C, H, W]`` by its own integer offset in [−m, m]² pixels, m = round(ratio·H),
    filling with zeros. Differentiable in ``x``; the offsets come from ``generator`` (CPU)."""
    b, _, h, w = x.shape
    m = round(ratio * h)
    if m == 0:
        return x
    sy = torch.randint(-m, m + 1, (b, 1, 1), generator=generator).to(x.device)
    sx = torch.randint(-m, m + 1, (b, 1, 1), generator=generator).to(x.device)
    gy = torch.arange(h, device=x.device)[None, :, None] + sy + m  # [B, H, 1] rows of the padded image
    gx = torch.arange(w, device=x.device)[None, None, :] + sx + m  # [B, 1, W]
    padded = F.pad(x, [m, m, m, m]).permute(0, 2, 3, 1)  # [B, H+2m, W+2m, C]
    idx = torch.arange(b, device=x.device)[:, None, None]
    out = padded[idx, gy, gx].permute(0, 3, 1, 2)  # [B, C, H, W]
    fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    return out.contiguous(memory_format=fmt)
