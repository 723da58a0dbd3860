"""A tiny stand-in for ``t2igan.data.PreparedCache``: flowers drawn as a coloured disc (petal colour) with a coloured
centre square (centre colour); class = the attribute combination; classes 7, 8 are the unseen (test) ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

COLOURS = {"red": (220, 30, 30), "yellow": (230, 210, 40), "blue": (40, 60, 220)}
NAMES = list(COLOURS)


def draw(petal: int, centre: int, size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    c = size / 2 + rng.uniform(-1, 1, 2)
    img = np.full((size, size, 3), 20, np.uint8)
    img[(yy - c[0]) ** 2 + (xx - c[1]) ** 2 < (0.4 * size) ** 2] = COLOURS[NAMES[petal]]
    h = size // 8
    img[int(c[0]) - h : int(c[0]) + h, int(c[1]) - h : int(c[1]) + h] = COLOURS[NAMES[centre]]
    noise = rng.integers(-10, 10, img.shape)
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)


class FakeCache:
    def __init__(self, root: Path, n: int = 270, size: int = 32, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.root, self.n, self.sizes, self.fingerprint = root, n, [size], f"fake{seed}{n}{size}"
        self.attribute_names = ["petal_color", "center_color"]
        self.attribute_values = [NAMES, NAMES]
        self.attributes = np.stack([np.arange(n) % 3, (np.arange(n) // 3) % 3], 1).astype(np.int64)
        self.class_ids = self.attributes[:, 0] * 3 + self.attributes[:, 1]
        self.class_names = [f"class_{i}" for i in range(9)]
        self.split = np.where(self.class_ids >= 7, "test", "train")
        self._images = np.stack([draw(a, b, size, rng) for a, b in self.attributes])
        self.captions = [
            [f"this flower has {NAMES[a]} petals and a {NAMES[b]} center", f"a {NAMES[b]} center and {NAMES[a]} petals"]
            for a, b in self.attributes
        ]
        self.flat_captions = [c for cs in self.captions for c in cs]
        self.caption_offsets = np.arange(0, 2 * n + 1, 2, dtype=np.int64)

    def images(self, size: int) -> np.ndarray:
        assert size in self.sizes
        return self._images

    def train_indices(self) -> np.ndarray:
        return np.flatnonzero(self.split == "train")

    def test_indices(self) -> np.ndarray:
        return np.flatnonzero(self.split == "test")


def oracle_generator(cache: FakeCache, wrong: bool = False):
    """generate(captions, seeds): draws exactly what the caption says (or the wrong petal colour)."""

    def generate(captions: list[str], seeds: list[int]) -> torch.Tensor:
        out = []
        for cap, s in zip(captions, seeds, strict=True):
            words = cap.split()
            petal = NAMES.index(words[words.index("petals") - 1])
            centre = NAMES.index(words[words.index("center") - 1])
            if wrong:
                petal = (petal + 1) % 3
            out.append(draw(petal, centre, cache.sizes[0], np.random.default_rng(s)))
        x = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 127.5 - 1
        return x

    return generate


@pytest.fixture(scope="session")
def fake_cache(tmp_path_factory) -> FakeCache:
    return FakeCache(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def trained_evaluator(fake_cache):
    from t2igan.metrics.evaluator import train_evaluator

    torch.set_num_threads(1)
    return train_evaluator(fake_cache, size=32, steps=80, seed=0, batch=32, width=8, progress=False)
