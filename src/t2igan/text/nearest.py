"""The training captions nearest to a caption in an encoder's embedding space (``t2igan encode text --data``)."""

from __future__ import annotations

import logging

import numpy as np
import torch

from t2igan.data.types import CacheLike
from t2igan.text.base import TextEncoder
from t2igan.text.cache import embedding_key, encode_captions

logger = logging.getLogger(__name__)


def nearest_captions(
    cache: CacheLike, encoder: TextEncoder, vector: torch.Tensor, top: int = 5
) -> list[tuple[str, float]]:
    """The ``top`` distinct training-split captions of ``cache`` whose embeddings are closest to ``vector`` by cosine
    similarity, most similar first, as ``(caption, cosine)``. The captions are encoded once and kept in the cache."""
    if not cache.has_embeddings(embedding_key(cache, encoder)):
        logger.info("encoding the %d dataset captions once (cached for next time) …", cache.n_captions)
    emb = np.asarray(cache.embeddings(encode_captions(cache, encoder)))
    train = np.asarray(cache.train_indices())
    offsets = np.asarray(cache.caption_offsets)
    rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in train]) if len(train) else np.arange(0)
    e = torch.nn.functional.normalize(torch.as_tensor(emb[rows]), dim=1)
    sims = e @ torch.nn.functional.normalize(vector, dim=0)
    nearest: dict[str, float] = {}  # distinct captions only (grammar-made datasets repeat captions)
    for j in torch.topk(sims, min(top * 20, len(rows))).indices.tolist():
        nearest.setdefault(cache.flat_captions[int(rows[j])], round(float(sims[j]), 4))
        if len(nearest) == top:
            break
    return list(nearest.items())
