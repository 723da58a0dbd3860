"""Attribute accuracy (synthetic flowers): does the generated image show what the caption says?

In the spirit of the text-image matching evaluations of Reed et al. (2016, GAN-CLS) and the attribute-classifier
scores of later work (e.g. Odena et al., 2017's auxiliary classifiers): for each generated image, the attributes
*named in its caption* are compared with what the project's evaluator network reads off the image. Reported per
attribute and overall, separately for captions of seen (train) and unseen (test) classes, beside the evaluator's own
accuracy on held-out real images — the ceiling. Chance level is 1 / (number of values) per attribute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from t2igan.metrics.captions import named_attribute_targets
from t2igan.metrics.registry import register

if TYPE_CHECKING:
    from t2igan.metrics.context import EvalContext


def attribute_accuracy(predicted: np.ndarray, named: np.ndarray, names: list[str]) -> dict[str, Any]:
    """``predicted [N, A]`` value indices vs ``named [N, A]`` (−1 = not named) → per-attribute and overall accuracy.

    Overall is the fraction over all (image, named attribute) pairs.
    """
    mask = named >= 0
    hit = (predicted == named) & mask
    per = {n: float(hit[:, i].sum() / mask[:, i].sum()) for i, n in enumerate(names) if mask[:, i].any()}
    overall = float(hit.sum() / mask.sum()) if mask.any() else float("nan")
    return {"overall": overall, "per_attribute": per, "named_per_caption": float(mask.sum(1).mean())}


@register("attr_acc", "fraction of caption-named attributes the evaluator reads off generated images (seen/unseen)")
def attr_acc(ctx: EvalContext) -> dict[str, Any]:
    ev = ctx.evaluator
    names = list(ev.config.attribute_names)
    result: dict[str, Any] = {}
    for split, label in (("test", "unseen"), ("train", "seen")):
        prompts = ctx.prompts(split)
        named = named_attribute_targets(prompts.captions, names, ev.config.attribute_values)
        pred = ev.predict(ctx.evaluator_input(ctx.samples(split)))
        result[label] = attribute_accuracy(np.stack([pred[n] for n in names], 1), named, names)
    ceiling = getattr(ev, "report", {}).get("heldout_accuracy", {})
    result["ceiling_real_heldout"] = {k: ceiling[k]["overall"] for k in ("seen", "unseen", "all") if k in ceiling}
    result["chance"] = float(np.mean([1.0 / len(v) for v in ev.config.attribute_values]))
    result["value"] = result["unseen"]["overall"]
    result["protocol"] = ctx.protocol("attr_acc", "test+train", "evaluator")
    return result
