"""The Conditioning Augmentation noise ε of StackGAN-family generators, drawn by the sampler, not by the model.

A generator whose CA samples (StackGAN §3.2: ĉ = μ + σ ⊙ ε) lists the size of each ε it needs in ``ca_noise_dims``
(``[]`` with ``use_ca_mean = True`` or for models without CA) and takes them as ``eps=[ε₁, …]``. Drawn per seed,
ε (like z) depends on the image's seed only, so a caption and a seed give one image whatever else is in the batch:

    noise = ca_noise(G, len(seeds), seeds=seeds)   # [ε_stage1, ε_stage2] or None
    images = G(z, text_emb, eps=noise)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from t2igan.utils.seed import derive_seed, torch_generator

__all__ = ["ca_noise", "ca_noise_dims"]


def ca_noise_dims(generator: nn.Module) -> list[int]:
    """The ε sizes a call of ``generator`` draws ([] if it has no sampling CA)."""
    return [int(d) for d in getattr(generator, "ca_noise_dims", [])]


def ca_noise(
    generator: nn.Module,
    n: int,
    *,
    seeds: Sequence[int] | None = None,
    stream: torch.Generator | None = None,
) -> list[torch.Tensor] | None:
    """ε for ``n`` images: one ``[n, d]`` tensor per sampling CA of ``generator``, or None if it has none.

    With ``seeds`` (length n), row i comes from its own generator seeded ``derive_seed(seeds[i], "ca-noise")``;
    otherwise all rows come from ``stream`` (default: a generator seeded 0).
    """
    dims = ca_noise_dims(generator)
    if not dims:
        return None
    if seeds is not None:
        if len(seeds) != n:
            raise ValueError(f"need {n} seeds, got {len(seeds)}")
        rows = [torch.randn(sum(dims), generator=torch_generator(derive_seed(int(s), "ca-noise"))) for s in seeds]
        flat = torch.stack(rows) if rows else torch.empty(0, sum(dims))
    else:
        flat = torch.randn(n, sum(dims), generator=stream if stream is not None else torch_generator(0))
    return list(flat.split(dims, dim=1))
