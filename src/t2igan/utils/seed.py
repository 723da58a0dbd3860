"""Seeding. Every random source in t2igan is derived from a config seed, so same seed + same config → same images."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch global generators (for code we do not control; ours takes generators)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed derived from parts, e.g. ``derive_seed(cfg.seed, "data", epoch)``; stable across runs."""
    import hashlib

    h = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def parse_seeds(spec: str | int | None, count: int | None = None) -> list[int]:
    """Parse ``"0-63"``, ``"1,5,9"`` or ``7`` into a list of non-negative seeds (the StyleGAN convention).

    A single seed with ``count > 1`` expands to ``seed, seed+1, …``.
    """
    if spec is None:
        return list(range(count or 1))
    seeds: list[int] = []
    for chunk in str(spec).split(","):
        chunk = chunk.strip()
        if not chunk:
            continue
        try:
            if "-" in chunk:
                lo, hi = (int(x) for x in chunk.split("-", 1))
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(chunk))
        except ValueError:
            raise ValueError(f"bad seed list {spec!r}: use e.g. 7, 0-15 or 1,5,9") from None
    if any(s < 0 for s in seeds) or not seeds:
        raise ValueError(f"bad seed list {spec!r}: seeds are non-negative integers")
    if count is not None and len(seeds) == 1 and count > 1:
        seeds = [seeds[0] + i for i in range(count)]
    return seeds
