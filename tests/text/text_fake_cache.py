"""An in-memory `t2igan.data.types.CacheLike` (toy two-colour flowers), so text tests do not depend on prepared data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from t2igan.utils.seed import derive_seed

COLOURS = {
    "red": (220, 30, 30), "pink": (240, 120, 180), "yellow": (240, 220, 40), "white": (245, 245, 245),
    "purple": (130, 40, 170), "orange": (250, 140, 20), "blue": (40, 80, 220),
}  # fmt: skip
TEMPLATES = [
    "this flower has {p} petals and a {c} center",
    "a flower with {p} petals and a {c} middle",
    "the petals are {p} and the center is {c}",
    "{p} petals surround a {c} center",
]


class FakeCache:
    """Classes = (petal colour, centre colour) pairs; the last ``n_test_classes`` classes are the test split."""

    def __init__(self, root: Path, per_class: int = 6, size: int = 32, n_test_classes: int = 6, seed: int = 0):
        rng = np.random.default_rng(derive_seed(seed, "fake-cache"))
        names = list(COLOURS)
        pairs = [(p, c) for p in names for c in names if p != c]
        order = rng.permutation(len(pairs))
        pairs = [pairs[i] for i in order]
        self.class_names = [f"{p}-{c}" for p, c in pairs]
        self.n = per_class * len(pairs)
        self.class_ids = np.repeat(np.arange(len(pairs)), per_class).astype(np.int64)
        test = self.class_ids >= len(pairs) - n_test_classes
        self.split = np.where(test, "test", "train")
        self.sizes = [size]
        yy, xx = np.mgrid[:size, :size] / (size - 1) * 2 - 1
        r = np.sqrt(xx**2 + yy**2)
        imgs = np.zeros((self.n, size, size, 3), np.uint8)
        self.captions: list[list[str]] = []
        for i, k in enumerate(self.class_ids):
            p, c = pairs[k]
            img = np.full((size, size, 3), (40, 110, 40), np.float64)
            rad = rng.uniform(0.6, 0.95)
            img[r < rad] = COLOURS[p]
            img[r < rad * rng.uniform(0.25, 0.4)] = COLOURS[c]
            imgs[i] = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
            self.captions.append([t.format(p=p, c=c) for t in rng.permutation(TEMPLATES)[:3]])
        self._images = {size: imgs}
        counts = [len(c) for c in self.captions]
        self.caption_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.flat_captions = [c for caps in self.captions for c in caps]
        self.n_captions = len(self.flat_captions)
        self.names = [f"image_{i:05d}" for i in range(self.n)]
        self.fingerprint = f"fake{per_class}-{size}-{seed}"
        self.root = Path(root)
        self._emb: dict[str, tuple[np.ndarray, dict]] = {}

    def images(self, size: int) -> np.ndarray:
        return self._images[size]

    def train_indices(self) -> np.ndarray:
        return np.flatnonzero(self.split == "train")

    def test_indices(self) -> np.ndarray:
        return np.flatnonzero(self.split == "test")

    def save_embeddings(self, key: str, array: np.ndarray, meta: dict) -> None:
        self._emb[key] = (np.asarray(array, np.float32), dict(meta))

    def has_embeddings(self, key: str) -> bool:
        return key in self._emb

    def embeddings(self, key: str) -> np.ndarray:
        return self._emb[key][0]

    def embedding_meta(self, key: str) -> dict:
        return self._emb[key][1]
