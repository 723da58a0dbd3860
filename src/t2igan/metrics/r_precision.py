"""R-precision (Xu et al., 2018, "AttnGAN: Fine-Grained Text to Image Generation with Attentional GANs").

For every generated image, its true caption and 99 mismatched captions (of images from *other classes*) are ranked
by cosine similarity in a joint image-text space; R-precision (R = 1) is the fraction of images whose true caption
ranks first. Reported as mean ± std over 10 splits. The joint space here is the DS-SJE model (Reed et al., 2016):
text side ``encode``, image side ``SjeImageEncoder.encode_images``. Ties count against the image (a constant
scorer gets 0, not 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from t2igan.metrics.registry import register

if TYPE_CHECKING:
    from t2igan.metrics.context import EvalContext


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def r_precision_hits(image_emb: np.ndarray, candidate_emb: np.ndarray, r: int = 1) -> np.ndarray:
    """``image_emb [N, D]``, ``candidate_emb [N, C, D]`` with the true caption at index 0 → bool hits ``[N]``."""
    sims = np.einsum("nd,ncd->nc", _unit(image_emb), _unit(candidate_emb))
    better_or_equal = (sims[:, 1:] >= sims[:, :1]).sum(axis=1)  # mismatches that tie or beat the truth
    return better_or_equal < r


def r_precision(image_emb: np.ndarray, candidate_emb: np.ndarray, splits: int = 10, r: int = 1) -> tuple[float, float]:
    """Mean ± std over ``splits`` of the per-split R-precision."""
    hits = r_precision_hits(image_emb, candidate_emb, r)
    scores = [float(part.mean()) for part in np.array_split(hits, splits) if len(part)]
    return float(np.mean(scores)), float(np.std(scores))


def mismatched_caption_ids(
    class_ids: np.ndarray, caption_owner_class: np.ndarray, query_classes: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    """For each query class, ``k`` flat caption indices whose image is of a different class → ``[Q, k]``."""
    out = np.empty((len(query_classes), k), dtype=np.int64)
    for i, c in enumerate(query_classes):
        pool = np.flatnonzero(caption_owner_class != c)
        out[i] = rng.choice(pool, size=k, replace=len(pool) < k)
    return out


@register(
    "rprec_sje",
    "R-precision (R=1, 1 true + 99 other-class captions) in the DS-SJE joint space, 10 splits",
    needs=("sje",),
)
def rprec_sje(ctx: EvalContext) -> dict[str, Any]:
    text_enc, image_enc = ctx.sje
    prompts = ctx.prompts("test")
    images = ctx.samples("test")
    cache = ctx.cache
    owner = np.repeat(np.asarray(cache.class_ids), np.diff(np.asarray(cache.caption_offsets)))
    rng = np.random.default_rng(ctx.derived_seed("rprec"))
    wrong = mismatched_caption_ids(cache.class_ids, owner, prompts.class_ids, 99, rng)
    cand_ids = np.concatenate([prompts.caption_ids[:, None], wrong], axis=1)  # [N, 100]
    uniq, inverse = np.unique(cand_ids, return_inverse=True)
    text = ctx.encode_text(text_enc, [cache.flat_captions[j] for j in uniq])
    cand = text[inverse.reshape(cand_ids.shape)]
    img = ctx.batched(image_enc.encode_images, images)
    mean, std = r_precision(img, cand, splits=10)
    return {
        "value": mean,
        "std": std,
        "splits": 10,
        "candidates": 100,
        "protocol": ctx.protocol("rprec_sje", "test", None),
    }
