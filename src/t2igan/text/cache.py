"""φ(t) for every caption of a prepared dataset, stored once in its cache.

``encode_captions(cache, encoder)`` encodes the flat caption list (row ``j`` ↔ ``cache.flat_captions[j]``) and saves
it under a key that fingerprints the encoder (type, config, weights) and the cache, so a second call with the same
encoder and data does nothing; identical captions are encoded once. ``TextImageDataset(cache, embeddings=KEY)`` then
serves the (averaged) embeddings to GAN training — the Reed et al. 2016 setting, where φ is fixed during GAN training.
``encoder_that_made(meta)`` reads the metadata stored beside the embeddings back into the encoder that made them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from t2igan.data.types import CacheLike
from t2igan.text.base import TextEncoder, cpu_threads, load_text_encoder
from t2igan.utils.errors import T2IError
from t2igan.utils.io import fingerprint


def embedding_key(cache: CacheLike, encoder: TextEncoder) -> str:
    """``<encoder name>-<16 hex>``: changes whenever the encoder's weights/config or the cache's captions change."""
    return f"{encoder.name}-{fingerprint([encoder.type_name, encoder.fingerprint(), cache.fingerprint])}"


def encode_captions(
    cache: CacheLike,
    encoder: TextEncoder,
    key: str | None = None,
    *,
    batch_size: int = 512,
    progress: Callable[[int, int], None] | None = None,
    threads: int | None = None,
) -> str:
    """Store one embedding per flat caption of ``cache`` under ``key`` (default: ``embedding_key``); return the key.

    No work when the cache already holds that key. ``progress(done, total)`` is called after each batch; ``threads``
    defaults to the idle cores (``base.auto_threads``).
    """
    key = key or embedding_key(cache, encoder)
    if cache.has_embeddings(key):
        return key
    flat = list(cache.flat_captions)
    if not flat:
        raise T2IError("the dataset has no captions", path=cache.root)
    uniq, inverse = np.unique(np.asarray(flat, dtype=object), return_inverse=True)  # dedupe identical captions
    uniq_list = [str(u) for u in uniq]
    t0 = time.perf_counter()
    parts = []
    with cpu_threads(threads):
        for i in range(0, len(uniq_list), batch_size):
            parts.append(encoder.encode(uniq_list[i : i + batch_size], batch_size=batch_size).numpy())
            if progress:
                progress(min(i + batch_size, len(uniq_list)), len(uniq_list))
    emb = np.concatenate(parts).astype(np.float32)[inverse.reshape(-1)]
    meta = {
        "encoder": encoder.type_name,
        "encoder_name": encoder.name,
        "encoder_source": encoder.source,  # load_text_encoder(this) gives the encoder back (folder or "minilm")
        "encoder_fingerprint": encoder.fingerprint(),
        "encoder_config": encoder.get_config(),
        "dim": int(encoder.dim),
        "captions": len(flat),
        "unique_captions": len(uniq_list),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    cache.save_embeddings(key, emb, meta)
    return key


def encoder_that_made(meta: dict[str, Any]) -> TextEncoder | None:
    """The text encoder that made a cache's embeddings (``meta`` = ``cache.embedding_meta(key)``), if it can still be
    loaded here: its recorded folder (``encoder_source``), then its name, accepted only when its fingerprint matches
    the recorded one. ``None`` when it moved, changed or was deleted (the embeddings stay usable as precomputed)."""
    want = meta.get("encoder_fingerprint")
    for ref in (meta.get("encoder_source"), meta.get("encoder_name")):
        if not ref:
            continue
        try:
            candidate = load_text_encoder(ref)
        except Exception:  # moved, deleted or not loadable by name: try the next
            continue
        if want is None or candidate.fingerprint() == want:
            return candidate
    return None
