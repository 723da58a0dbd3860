"""Diversity / mode-collapse check: mean pairwise feature distance between samples of the *same caption*.

Mode collapse — the failure users of the original GAN-INT-CLS and StackGAN code report most — shows as near-identical
images for different z. For ``groups`` test captions we draw ``per_caption`` samples with different seeds and
average the pairwise Euclidean distances of their evaluator features; the reference is the same statistic over
real images of the caption's class (same-class images share the attributes a caption names). ``value`` is the ratio
generated / real; ``mode_collapse`` is flagged when it is below 0.1 (in the spirit of the LPIPS / MS-SSIM diversity
checks of Odena et al., 2017).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from t2igan.metrics.registry import register

if TYPE_CHECKING:
    from t2igan.metrics.context import EvalContext

COLLAPSE_RATIO = 0.1


def mean_pairwise_distance(groups: np.ndarray) -> np.ndarray:
    """``groups [G, K, D]`` → mean pairwise Euclidean distance inside each group ``[G]`` (K ≥ 2)."""
    g = np.asarray(groups, np.float64)
    diff = g[:, :, None, :] - g[:, None, :, :]
    d = np.sqrt((diff**2).sum(-1))
    k = g.shape[1]
    return d.sum(axis=(1, 2)) / (k * (k - 1))


@register("diversity_evaluator", "same-caption mean pairwise evaluator-feature distance, ratio to same-class real")
def diversity_evaluator(ctx: EvalContext) -> dict[str, Any]:
    groups, per = min(50, max(2, ctx.n // 10)), 8
    _, class_ids, images = ctx.same_caption_samples(groups, per)
    feats = ctx.image_features("evaluator", images).reshape(groups, per, -1)
    fake = mean_pairwise_distance(feats)
    rng = np.random.default_rng(ctx.derived_seed("diversity-real"))
    real_groups = []
    cls = np.asarray(ctx.cache.class_ids)
    for c in class_ids:
        members = np.flatnonzero(cls == c)
        real_groups.append(rng.choice(members, size=per, replace=len(members) < per))
    real_feats = ctx.image_features("evaluator", ctx.real_images(np.concatenate(real_groups))).reshape(groups, per, -1)
    real = mean_pairwise_distance(real_feats)
    ratio = float(fake.mean() / max(real.mean(), 1e-12))
    return {
        "value": ratio,
        "pairwise_fake": float(fake.mean()),
        "pairwise_real_same_class": float(real.mean()),
        "mode_collapse": bool(ratio < COLLAPSE_RATIO),
        "groups": groups,
        "per_caption": per,
        "protocol": f"diversity_evaluator_{groups}x{per}_test",
    }
