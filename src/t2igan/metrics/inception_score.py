"""Inception Score (Salimans et al., 2016, "Improved Techniques for Training GANs").

IS = exp(E_x KL(p(y|x) ‖ p(y))), computed on each of 10 splits of the generated set; reported as mean ± std over
splits. ``is_evaluator``: p(y|x) is the project's evaluator's class head over the synthetic-flower classes (as
StackGAN used an Inception fine-tuned on the dataset's classes); ``is_inception``: the standard Inception-v3 1008-way
softmax from the user-supplied weights file. Images come from test-split captions. ``is_evaluator`` also reports
``real_test``: the score of the real images those captions belong to (what a perfect generator would get; with the
evaluator it is at most the number of test classes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from t2igan.metrics.registry import register

if TYPE_CHECKING:
    from t2igan.metrics.context import EvalContext


def inception_score(probs: np.ndarray, splits: int = 10, eps: float = 1e-12) -> tuple[float, float]:
    """IS of class probabilities ``probs [N, K]`` (rows sum to 1) over ``splits`` consecutive splits."""
    p = np.asarray(probs, dtype=np.float64)
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + eps) - np.log(py + eps))).sum(axis=1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))


def _is(ctx: EvalContext, net: str) -> dict[str, Any]:
    probs = ctx.fake_probs(net, "test")
    mean, std = inception_score(probs, splits=10)
    result = {
        "value": mean,
        "std": std,
        "splits": 10,
        "classes": probs.shape[1],
        "protocol": ctx.protocol(f"is_{net}", "test", net),
    }
    if net == "evaluator":  # cheap here: the same score of real test images, the value a perfect model would get
        p = ctx.prompts("test")
        fn = ctx.net(net)
        real = ctx.apply_net(fn.probs, fn.size, ctx.real_images(p.image_ids, fn.size))
        result["real_test"] = inception_score(real, splits=10)[0]
    return result


@register("is_evaluator", "Inception Score with the evaluator's class head, 10 splits, test captions")
def is_evaluator(ctx: EvalContext) -> dict[str, Any]:
    return _is(ctx, "evaluator")


@register("is_inception", "Inception Score with standard Inception-v3 (1008 classes), 10 splits", needs=("inception",))
def is_inception(ctx: EvalContext) -> dict[str, Any]:
    return _is(ctx, "inception")
