"""`CacheLike`: what the layers above ``data`` read from a prepared dataset.

`t2igan.data.cache.PreparedCache` is the implementation; the text layer (encoders, DS-SJE training, caption
embeddings, zero-shot retrieval) takes any object with these members, so a test can hand it a small in-memory
stand-in. Code that needs more of the cache (attributes, style factors, embedding listings) takes `PreparedCache`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np


class CacheLike(Protocol):
    """A prepared dataset: ``n`` images at ``sizes``, their captions, a class-disjoint split, stored embeddings."""

    @property
    def root(self) -> Path: ...

    @property
    def n(self) -> int: ...

    @property
    def sizes(self) -> list[int]: ...

    @property
    def fingerprint(self) -> str:
        """Changes whenever the images or captions change (embedding keys include it)."""
        ...

    @property
    def names(self) -> list[str]:
        """Image names (file stems), one per image."""
        ...

    @property
    def class_ids(self) -> np.ndarray: ...

    @property
    def class_names(self) -> list[str]: ...

    @property
    def captions(self) -> list[list[str]]:
        """The captions of each image."""
        ...

    @property
    def caption_offsets(self) -> np.ndarray:
        """``[n + 1]``: image i's captions are rows ``offsets[i]:offsets[i + 1]`` of ``flat_captions``."""
        ...

    @property
    def flat_captions(self) -> list[str]: ...

    @property
    def n_captions(self) -> int: ...

    def images(self, size: int) -> np.ndarray:
        """uint8 ``[n, size, size, 3]``."""
        ...

    def train_indices(self) -> np.ndarray: ...

    def test_indices(self) -> np.ndarray: ...

    def has_embeddings(self, key: str) -> bool: ...

    def embeddings(self, key: str) -> np.ndarray:
        """float32 ``[n_captions, D]``: one row per flat caption."""
        ...

    def embedding_meta(self, key: str) -> dict[str, Any]: ...

    def save_embeddings(self, key: str, array: np.ndarray, meta: dict[str, Any]) -> None: ...


__all__ = ["CacheLike"]
