"""Fréchet Inception Distance (Heusel et al., 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a
Local Nash Equilibrium").

FID = ‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^½) between Gaussians fitted to features of real and generated
images. Protocols: ``fid_evaluator`` (features: the project's attribute evaluator, synthetic flowers) and
``fid_inception`` (pool3 of the project's Inception-v3 with the standard FID weights, comparable with published
numbers only at the same sample count). Generated images come from test-split captions and are compared with the
real test images; the real statistics are cached under a fingerprint of everything that affects them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.linalg

from t2igan.metrics.registry import register

if TYPE_CHECKING:
    from t2igan.metrics.context import EvalContext


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of ``features [N, D]`` in float64."""
    f = np.asarray(features, dtype=np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½).

    Tr((Σ1 Σ2)^½) is computed as Σ √λ of the symmetric PSD matrix Σ1^½ Σ2 Σ1^½ (same eigenvalues as Σ1 Σ2), which
    stays real and stable where a general ``sqrtm`` of the non-symmetric product returns complex noise.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    diff = mu1 - mu2
    w, v = scipy.linalg.eigh(sigma1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root1 @ sigma2 @ root1
    lam = scipy.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(lam, 0, None)).sum())
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    return frechet_distance(*feature_stats(real), *feature_stats(fake))


def _fid(ctx: EvalContext, net: str) -> dict[str, Any]:
    real = ctx.real_features(net, "test")
    fake = ctx.fake_features(net, "test")
    enough = min(len(real), len(fake)) >= 2  # a covariance needs two samples (tiny validation subsets)
    return {
        "value": fid_from_features(real, fake) if enough else float("nan"),
        "protocol": ctx.protocol(f"fid_{net}", "test", net),
        "n_real": len(real),
        "n_fake": len(fake),
    }


@register("fid_evaluator", "FID in the attribute evaluator's feature space, generated (test captions) vs real test")
def fid_evaluator(ctx: EvalContext) -> dict[str, Any]:
    return _fid(ctx, "evaluator")


@register(
    "fid_inception",
    "FID with Inception-v3 pool3 (standard weights file), test captions vs real test",
    needs=("inception",),
)
def fid_inception(ctx: EvalContext) -> dict[str, Any]:
    return _fid(ctx, "inception")
