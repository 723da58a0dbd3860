"""Tiny things for the Reed tests: a fake dataset with the `TextImageDataset.batch` contract and a tiny config."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from t2igan.training.config import TrainConfig, load_config
from t2igan.utils.seed import derive_seed


class FakeDataset:
    """``n`` 16 px images of ``classes`` flat colours; the text embedding is a noisy one-hot of the class.

    ``batch(indices, epoch)`` is deterministic in (seed, epoch, indices), like the real dataset.
    """

    def __init__(self, n: int = 32, size: int = 16, text_dim: int = 12, classes: int = 4, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.n, self.size, self.text_dim, self.seed = n, size, text_dim, seed
        self.class_ids = np.arange(n) % classes
        colours = rng.uniform(-1, 1, size=(classes, 3)).astype(np.float32)
        self.images = np.broadcast_to(colours[self.class_ids][:, :, None, None], (n, 3, size, size)).copy()
        self.images += rng.normal(0, 0.05, size=self.images.shape).astype(np.float32)
        self.emb = np.eye(classes, text_dim, dtype=np.float32)[self.class_ids]
        self.emb += rng.normal(0, 0.1, size=self.emb.shape).astype(np.float32)
        self.on_batch: Callable[[np.ndarray, int], None] | None = None

    def __len__(self) -> int:
        return self.n

    def batch(self, indices: np.ndarray, epoch: int) -> dict[str, torch.Tensor]:
        if self.on_batch is not None:
            self.on_batch(indices, epoch)
        indices = np.asarray(indices)
        wrong = []
        for i in indices:
            rng = np.random.default_rng(derive_seed(self.seed, "wrong", epoch, int(i)))
            others = np.flatnonzero(self.class_ids != self.class_ids[i])
            wrong.append(int(rng.choice(others)))
        flip = np.array([derive_seed(self.seed, "flip", epoch, int(i)) % 2 for i in indices], dtype=bool)
        img = self.images[indices].copy()
        img[flip] = img[flip][..., ::-1]
        return {
            "image": torch.from_numpy(np.ascontiguousarray(img)),
            "text_emb": torch.from_numpy(self.emb[indices]),
            "wrong_emb": torch.from_numpy(self.emb[wrong]),
            "class_id": torch.from_numpy(self.class_ids[indices]),
            "index": torch.from_numpy(indices.astype(np.int64)),
            "caption_idx": torch.from_numpy(indices.astype(np.int64)),
        }


@pytest.fixture
def fake_dataset() -> FakeDataset:
    return FakeDataset()


TINY = [
    "model.preset=tiny",
    "data.size=16",
    "train.batch_size=8",
    "train.steps=4",
    "train.progress=false",
    "train.tensorboard=false",
    "train.log_every=1",
    "train.sample_every=1000",
    "train.ckpt_every=1000",
    "train.sample_n=2",
    "optim.decay_every_epochs=0",
    "train.threads=1",
]


@pytest.fixture
def tiny_config(tmp_path) -> Callable[..., TrainConfig]:
    def make(*overrides: str, run: str = "run") -> TrainConfig:
        return load_config(None, [*TINY, f"run_dir={tmp_path / run}", *overrides])

    return make
