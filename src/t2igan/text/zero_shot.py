"""Zero-shot class retrieval from text — the evaluation of Reed et al., CVPR 2016, §5 (Table 1, "Top-1 Acc").

Each class is represented by the average text embedding of its captions, E_{t∼T(y)}[φ(t)]; an image is assigned to the
class whose average scores highest under the compatibility F(v, t) = θ(v)ᵀφ(t) (eq. 2, f_v). On the *test* classes,
never seen in training, this measures whether descriptions alone define a visual classifier. Chance is 1 / classes.
"""

from __future__ import annotations

import numpy as np
import torch

from t2igan.data.types import CacheLike
from t2igan.text.base import TextEncoder
from t2igan.text.sje_image import SjeImageEncoder
from t2igan.utils.seed import derive_seed


def pick_image_size(cache: CacheLike, size: int) -> int:
    """The cached size to read for ``size``-px images: exact, else the smallest larger one, else the largest."""
    sizes = sorted(int(s) for s in cache.sizes)
    if size in sizes:
        return size
    larger = [s for s in sizes if s > size]
    return larger[0] if larger else sizes[-1]


def split_indices(cache: CacheLike, split: str) -> np.ndarray:
    if split == "train":
        return np.asarray(cache.train_indices(), dtype=np.int64)
    if split == "test":
        return np.asarray(cache.test_indices(), dtype=np.int64)
    return np.arange(cache.n, dtype=np.int64)


def class_text_embeddings(
    encoder: TextEncoder,
    cache: CacheLike,
    indices: np.ndarray,
    max_captions_per_class: int | None = 200,
    seed: int = 0,
) -> tuple[np.ndarray, torch.Tensor]:
    """Average φ(t) per class over the captions of ``indices``' images → (class ids ``[C]``, ``[C, D]``)."""
    offsets = np.asarray(cache.caption_offsets)
    flat = cache.flat_captions
    class_ids = np.asarray(cache.class_ids)[indices]
    classes = np.unique(class_ids)
    rng = np.random.default_rng(derive_seed(seed, "zero-shot-captions"))
    groups: list[list[int]] = []
    for c in classes:
        caps = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in indices[class_ids == c]])
        if max_captions_per_class and len(caps) > max_captions_per_class:
            caps = np.sort(rng.choice(caps, max_captions_per_class, replace=False))
        groups.append(caps.tolist())
    all_caps = [flat[j] for g in groups for j in g]
    emb = encoder.encode(all_caps)
    means, start = [], 0
    for g in groups:
        means.append(emb[start : start + len(g)].mean(0))
        start += len(g)
    return classes, torch.stack(means)


def zero_shot_accuracy(
    text_encoder: TextEncoder,
    image_encoder: SjeImageEncoder,
    cache: CacheLike,
    split: str = "test",
    *,
    max_images: int | None = None,
    max_captions_per_class: int | None = 200,
    image_features: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Top-1 accuracy of classifying ``split`` images among ``split`` classes by their class-average caption embedding.

    Returns ``{"top1", "chance", "classes", "images"}``. ``image_features`` (``[n, F]``, aligned with the cache) is
    used instead of pixels when the image side is a ``SjeFeatureEncoder``.
    """
    idx = split_indices(cache, split)
    classes, class_emb = class_text_embeddings(text_encoder, cache, idx, max_captions_per_class, seed)
    if max_images and len(idx) > max_images:
        rng = np.random.default_rng(derive_seed(seed, "zero-shot-images", split))
        idx = np.sort(rng.choice(idx, max_images, replace=False))
    if image_features is not None:
        img_emb = image_encoder.encode_features(image_features[idx])  # type: ignore[attr-defined]
    else:
        size = pick_image_size(cache, image_encoder.config.image_size)
        img_emb = image_encoder.encode_images(np.asarray(cache.images(size)[idx]))
    scores = img_emb @ class_emb.T
    pred = classes[scores.argmax(1).numpy()]
    truth = np.asarray(cache.class_ids)[idx]
    return {
        "top1": float((pred == truth).mean()),
        "chance": 1.0 / len(classes),
        "classes": len(classes),
        "images": len(idx),
    }
