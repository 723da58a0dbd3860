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


SEED_MAX = 2**64 - 1  # torch generators take 64-bit seeds


def parse_seeds(spec: str | int | None, count: int | None = None, max_count: int | None = None) -> list[int]:
    """Parse ``"0-63"``, ``"1,5,9"`` or ``7`` into a list of seeds in ``0 … 2^64-1`` (the StyleGAN convention).

    A single seed with ``count > 1`` expands to ``seed, seed+1, …``. ``max_count`` bounds the number of seeds; it is
    checked before any list is built, so ``0-10000000000`` costs nothing. Problems raise ``ValueError``.
    """
    if spec is None:
        return list(range(count or 1))
    ranges: list[tuple[int, int]] = []
    for chunk in str(spec).split(","):
        chunk = chunk.strip()
        if not chunk:
            continue
        try:
            if "-" in chunk[1:]:
                lo, hi = (int(x) for x in chunk.split("-", 1))
            else:
                lo = hi = int(chunk)
        except ValueError:
            raise ValueError(f"bad seed list {spec!r}: use e.g. 7, 0-15 or 1,5,9") from None
        if lo < 0 or hi < 0:
            raise ValueError(f"bad seed list {spec!r}: seeds are non-negative integers")
        if lo > SEED_MAX or hi > SEED_MAX:
            raise ValueError(f"bad seed list {spec!r}: seeds must be below 2^64")
        if hi < lo:
            raise ValueError(f"bad seed list {spec!r}: range {lo}-{hi} is empty (write low-high)")
        ranges.append((lo, hi))
    if not ranges:
        raise ValueError(f"bad seed list {spec!r}: seeds are non-negative integers")
    total = sum(hi - lo + 1 for lo, hi in ranges)
    if max_count is not None and total > max_count:
        raise ValueError(f"{spec!r} lists {total:,} seeds; at most {max_count:,} per call")
    seeds = [s for lo, hi in ranges for s in range(lo, hi + 1)]
    if count is not None and len(seeds) == 1 and count > 1:
        if seeds[0] + count - 1 > SEED_MAX:
            raise ValueError(f"bad seed {spec!r}: seeds {seeds[0]} … +{count - 1} pass 2^64")
        seeds = [seeds[0] + i for i in range(count)]
    return seeds
