"""Style spread across seeds: does z carry the style, as Reed et al. (2016, §4.4, §5.2) intend?

For ``groups`` test captions, ``per_caption`` seeds each, the evaluator's style heads read position, scale,
rotation phase, lighting, brightness and background tone off every image (``metrics.style_factors``). Per factor,
the within-caption spread (standard deviation across seeds; for the background, the share of seed pairs with
different tones) is compared with the same statistic over real images of the caption's class, read by the same
heads. ``value`` is the mean ratio over factors: 1 means z varies the style as much as the data does; near 0 means
every seed draws the same picture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from t2igan.metrics.registry import register
from t2igan.metrics.style_factors import spread

if TYPE_CHECKING:
    from t2igan.metrics.context import EvalContext


@register("style_spread", "within-caption spread of the style factors across seeds, ratio to same-class real images")
def style_spread(ctx: EvalContext) -> dict[str, Any]:
    ev = ctx.evaluator
    groups, per = min(50, max(2, ctx.n // 10)), 8
    if not getattr(ev, "reads_style", False):
        return {"value": float("nan"), "protocol": "style_spread (evaluator without style heads)", "skipped": True}
    _, class_ids, images = ctx.same_caption_samples(groups, per)
    fake_t, fake_bg = ev.predict_style(ctx.evaluator_input(images))
    rng = np.random.default_rng(ctx.derived_seed("style-spread-real"))
    cls = np.asarray(ctx.cache.class_ids)
    pick = np.concatenate(
        [rng.choice(m := np.flatnonzero(cls == c), size=per, replace=len(m) < per) for c in class_ids]
    )
    real_t, real_bg = ev.predict_style(ctx.real_images(pick))
    fake = spread(fake_t.reshape(groups, per, -1), fake_bg.reshape(groups, per))
    real = spread(real_t.reshape(groups, per, -1), real_bg.reshape(groups, per))
    ratio = {k: fake[k] / max(real[k], 1e-9) for k in fake}
    return {
        "value": float(np.mean(list(ratio.values()))),
        "per_factor": ratio,
        "fake": fake,
        "real_same_class": real,
        "groups": groups,
        "per_caption": per,
        "protocol": f"style_spread_{groups}x{per}_test",
    }
