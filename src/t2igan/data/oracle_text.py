"""Oracle caption embeddings for synthetic flowers: the one-hot code of the image's attributes.

Not a text encoder — a perfect, caption-independent condition for tests, demos and as an upper bound ("does the GAN
learn petal colour when the condition is exact?"). Every caption of an image gets the same vector: the concatenated
one-hot codes of its attribute values (8 + 6 + 3 + 4 = 21 dims for the default attributes).
"""

from __future__ import annotations

import numpy as np

from t2igan.data.cache import PreparedCache
from t2igan.utils.errors import T2IError

ORACLE_KEY = "attributes-onehot"


def attribute_onehot(cache: PreparedCache) -> np.ndarray:
    """float32 ``[n_captions, sum(len(values))]`` one-hot attribute codes, one row per flat caption."""
    if cache.attributes is None:
        raise T2IError(
            "the cache has no attributes (only synthetic flowers do)",
            path=cache.root,
            hint="use a text encoder for real datasets",
        )
    widths = [len(v) for v in cache.attribute_values]
    starts = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int64)
    per_image = np.zeros((cache.n, sum(widths)), dtype=np.float32)
    rows = np.arange(cache.n)[:, None]
    per_image[rows, starts[None, :] + cache.attributes] = 1.0
    return np.repeat(per_image, np.diff(cache.caption_offsets), axis=0)


def save_attribute_onehot(cache: PreparedCache, key: str = ORACLE_KEY) -> str:
    """Store `attribute_onehot` in the cache under ``key`` (no work if present) and return the key."""
    if not cache.has_embeddings(key):
        cache.save_embeddings(
            key,
            attribute_onehot(cache),
            {"encoder": "oracle attribute one-hot", "attribute_names": cache.attribute_names},
        )
    return key
