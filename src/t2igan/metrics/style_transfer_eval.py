"""Style transfer, measured (Reed et al. 2016, §4.4 and Fig. 6): x̂ = G(S(x), φ(t)) should keep the *style* of the
real image x (pose, background — what z carries) and draw the *content* of the caption t.

The attribute evaluator's style heads (``metrics.style_factors``) read the style targets off x and x̂: per target,
the Pearson correlation across images says how much of x's style survives; the background tone is compared as an
agreement rate beside its chance level. Attribute accuracy of x̂ against the attributes t names says whether the
content follows the caption (t is chosen from another class than x, so copying x would fail it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from t2igan.metrics.attribute_accuracy import attribute_accuracy
from t2igan.metrics.captions import named_attribute_targets
from t2igan.metrics.style_factors import TARGETS


def style_transfer_scores(
    evaluator: Any, source: np.ndarray, transferred: np.ndarray, captions: list[str]
) -> dict[str, Any]:
    """uint8 ``source`` x and ``transferred`` x̂ ``[N, S, S, 3]`` (at the evaluator's size), the captions t of x̂."""
    src_t, src_bg = evaluator.predict_style(source)
    out_t, out_bg = evaluator.predict_style(transferred)
    corr = {}
    for i, name in enumerate(TARGETS):
        a, b = src_t[:, i].astype(np.float64), out_t[:, i].astype(np.float64)
        corr[name] = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
    shares = np.bincount(src_bg, minlength=evaluator.config.n_backgrounds) / len(src_bg)
    names = list(evaluator.config.attribute_names)
    pred = evaluator.predict(transferred)
    named = named_attribute_targets(captions, names, evaluator.config.attribute_values)
    attrs = attribute_accuracy(np.stack([pred[n] for n in names], 1), named, names)
    return {
        "style_correlation": corr,
        "style_correlation_mean": float(np.nanmean(list(corr.values()))),
        "background_agreement": float((src_bg == out_bg).mean()),
        "background_agreement_chance": float((shares**2).sum()),
        "attributes_follow_caption": attrs["overall"],
        "attributes_follow_caption_per_attribute": attrs["per_attribute"],
        "n": len(source),
    }
