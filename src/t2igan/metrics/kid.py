"""Kernel Inception Distance (Bińkowski et al., 2018, "Demystifying MMD GANs").

KID is the unbiased estimate of the squared MMD with the cubic polynomial kernel k(x, y) = (xᵀy / d + 1)³, averaged
over random subsets (mean ± std). Unlike FID it is unbiased in the sample count, so small-n numbers are comparable.
Same feature networks and sample sets as :mod:`t2igan.metrics.fid`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from t2igan.metrics.registry import register

if TYPE_CHECKING:
    from t2igan.metrics.context import EvalContext


def polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² between samples ``x [m, d]`` and ``y [n, d]`` under k(a, b) = (aᵀb / d + 1)³."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    term_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    term_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(term_x + term_y - 2.0 * kxy.mean())


def kernel_inception_distance(
    real: np.ndarray, fake: np.ndarray, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Mean ± std of the unbiased polynomial MMD² over ``num_subsets`` random subsets of both sets."""
    rng = np.random.default_rng(seed)
    size = min(subset_size, len(real), len(fake))
    vals = [
        polynomial_mmd2_unbiased(
            real[rng.choice(len(real), size, replace=False)], fake[rng.choice(len(fake), size, replace=False)]
        )
        for _ in range(num_subsets)
    ]
    return float(np.mean(vals)), float(np.std(vals))


def _kid(ctx: EvalContext, net: str) -> dict[str, Any]:
    real = ctx.real_features(net, "test")
    fake = ctx.fake_features(net, "test")
    mean, std = kernel_inception_distance(real, fake, seed=ctx.derived_seed("kid"))
    return {
        "value": mean,
        "std": std,
        "protocol": ctx.protocol(f"kid_{net}", "test", net),
        "subsets": 100,
        "subset_size": min(1000, len(real), len(fake)),
    }


@register("kid_evaluator", "KID (×1, unbiased) in evaluator feature space, test captions vs real test")
def kid_evaluator(ctx: EvalContext) -> dict[str, Any]:
    return _kid(ctx, "evaluator")


@register("kid_inception", "KID with Inception-v3 pool3, test captions vs real test", needs=("inception",))
def kid_inception(ctx: EvalContext) -> dict[str, Any]:
    return _kid(ctx, "inception")
