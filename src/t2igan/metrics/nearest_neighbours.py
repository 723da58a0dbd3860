"""Nearest-neighbour memorisation check (Zhang et al., 2017, "StackGAN", Fig. 5: generated images next to their
nearest training images).

For generated images (test captions) we find the k nearest *training* images in a feature space (the evaluator's,
and the run's discriminator features when available) and save a grid PNG (generated | k neighbours). As numbers we
report the mean distance of generated images to their nearest training image and the same for *real test* images:
a ratio ``gen / real`` far below 1 means the generator is copying training images; ``exact_copies`` counts
generated images closer to a training image than 1e-3 of the real test median.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from t2igan.metrics.registry import register

if TYPE_CHECKING:
    from t2igan.metrics.context import EvalContext


def nearest_neighbours(
    query: np.ndarray, bank: np.ndarray, k: int = 5, chunk: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean k-NN of ``query [M, D]`` in ``bank [N, D]`` → (distances ``[M, k]``, indices ``[M, k]``)."""
    bank_t = torch.as_tensor(np.asarray(bank, np.float32))
    dists, idx = [], []
    for s in range(0, len(query), chunk):
        q = torch.as_tensor(np.asarray(query[s : s + chunk], np.float32))
        d = torch.cdist(q, bank_t)
        v, i = d.topk(min(k, len(bank_t)), dim=1, largest=False)
        dists.append(v.numpy())
        idx.append(i.numpy())
    return np.concatenate(dists), np.concatenate(idx)


@register("nn_evaluator", "k=5 nearest training images in evaluator space: distance ratio vs real test + grid PNG")
def nn_evaluator(ctx: EvalContext) -> dict[str, Any]:
    train_idx = np.asarray(ctx.cache.train_indices())
    bank = ctx.real_features("evaluator", "train")
    fake = ctx.fake_features("evaluator", "test")
    real = ctx.real_features("evaluator", "test")
    d_fake, i_fake = nearest_neighbours(fake, bank, k=5)
    d_real, _ = nearest_neighbours(real, bank, k=1)
    median_real = float(np.median(d_real[:, 0]))
    result: dict[str, Any] = {
        "value": float(d_fake[:, 0].mean() / max(d_real[:, 0].mean(), 1e-12)),
        "nn_dist_fake": float(d_fake[:, 0].mean()),
        "nn_dist_real_test": float(d_real[:, 0].mean()),
        "exact_copies": int((d_fake[:, 0] < 1e-3 * median_real).sum()),
        "protocol": ctx.protocol("nn_evaluator", "test", "evaluator"),
    }
    grid = ctx.save_neighbour_grid("nn_evaluator", i_fake[:8], train_idx)
    if grid is not None:
        result["grid"] = grid
    disc = ctx.discriminator_features
    if disc is not None:  # the run's own D features (StackGAN's figure uses them)
        fake_d = ctx.batched(disc, ctx.samples("test")[: min(256, ctx.n)])
        bank_d = ctx.batched(disc, ctx.real_images(train_idx))
        _, i_d = nearest_neighbours(fake_d, bank_d, k=5)
        grid_d = ctx.save_neighbour_grid("nn_discriminator", i_d[:8], train_idx)
        if grid_d is not None:
            result["grid_discriminator"] = grid_d
    return result
