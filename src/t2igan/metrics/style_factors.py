"""What the attribute evaluator reads besides the attributes: the *style* of a synthetic flower.

Reed et al. (2016, §4.4 and §5.2) use z for style — what the caption does not say (pose, background). The synthetic
flowers know each image's style factors (``attributes.json``; ``PreparedCache.style``). The evaluator learns to read
them off real images as regression targets (standardised) plus a background-tone class, so the style spread across
seeds and the style transfer of ``G(S(x), φ(t))`` can be measured like the attributes are.

Targets (what is visible, not the renderer's raw parameters):
``x``, ``y`` (position), ``scale`` (petal radius), ``rotation_cos``/``rotation_sin`` (cos kθ, sin kθ: a ring of k
petals looks the same after a turn of 2π/k, so only the phase kθ is visible), ``light_x``/``light_y`` (direction ×
strength of the lighting gradient) and ``brightness``; ``background`` is the background tone (8 classes).
"""

from __future__ import annotations

import numpy as np

TARGETS = ("x", "y", "scale", "rotation_cos", "rotation_sin", "light_x", "light_y", "brightness")
FACTORS = ("position", "scale", "rotation", "lighting", "brightness", "background")
FACTOR_TARGETS = {
    "position": ("x", "y"),
    "scale": ("scale",),
    "rotation": ("rotation_cos", "rotation_sin"),
    "lighting": ("light_x", "light_y"),
    "brightness": ("brightness",),
}


def has_style(cache: object) -> bool:
    names = list(getattr(cache, "style_names", []) or [])
    return getattr(cache, "style", None) is not None and all(
        k in names for k in ("cx", "cy", "radius", "rotation", "bg", "light_angle", "light_amp", "brightness")
    )


def style_targets(cache: object) -> tuple[np.ndarray, np.ndarray]:
    """(float32 ``[n, len(TARGETS)]`` continuous targets, int64 ``[n]`` background class) of every cache image."""
    raw = np.asarray(cache.style, dtype=np.float64)  # type: ignore[attr-defined]
    col = {name: raw[:, i] for i, name in enumerate(cache.style_names)}  # type: ignore[attr-defined]
    k = _petal_counts(cache)
    phase = k * col["rotation"]
    targets = np.stack(
        [
            col["cx"],
            col["cy"],
            col["radius"],
            np.cos(phase),
            np.sin(phase),
            col["light_amp"] * np.cos(col["light_angle"]),
            col["light_amp"] * np.sin(col["light_angle"]),
            col["brightness"],
        ],
        axis=1,
    ).astype(np.float32)
    return targets, col["bg"].astype(np.int64)


def _petal_counts(cache: object) -> np.ndarray:
    names = list(getattr(cache, "attribute_names", []) or [])
    attrs = getattr(cache, "attributes", None)
    if "petal_count" not in names or attrs is None:
        return np.ones(len(cache.style), dtype=np.float64)  # type: ignore[attr-defined]
    i = names.index("petal_count")
    values = np.array([float(v) for v in cache.attribute_values[i]])  # type: ignore[attr-defined]
    return values[np.asarray(attrs)[:, i]]


def spread(targets: np.ndarray, background: np.ndarray) -> dict[str, float]:
    """Per-factor spread inside groups: ``targets [G, K, T]``, ``background [G, K]`` → {factor: value}.

    Continuous factors: the mean (over groups) of the within-group standard deviation, summed over the factor's
    targets; background: the share of within-group pairs with different tones."""
    out: dict[str, float] = {}
    for factor, names in FACTOR_TARGETS.items():
        idx = [TARGETS.index(n) for n in names]
        out[factor] = float(targets[:, :, idx].std(axis=1).sum(axis=-1).mean())
    k = background.shape[1]
    differ = (background[:, :, None] != background[:, None, :]).sum(axis=(1, 2)) / (k * (k - 1))
    out["background"] = float(differ.mean())
    return out
