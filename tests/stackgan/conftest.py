"""A tiny multi-class dataset for the StackGAN system tests (the `TextImageDataset.batch` contract)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from t2igan.training.config import TrainConfig, load_config

sys.path.insert(0, str(Path(__file__).parent))  # stackgan_official_reference


class BlobDataset:
    """``n`` images at ``size`` px: a class-coloured disc on a grey ground; text = noisy one-hot of the class."""

    def __init__(self, n: int = 32, size: int = 32, text_dim: int = 12, classes: int = 4, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.n, self.size = n, size
        self.class_ids = np.arange(n) % classes
        colours = rng.uniform(-1, 1, size=(classes, 3)).astype(np.float32)
        yy, xx = np.mgrid[:size, :size] / size - 0.5
        radius = rng.uniform(0.2, 0.4, size=n)[:, None, None]
        disc = (yy**2 + xx**2 < radius**2).astype(np.float32)[:, None]
        self.images = disc * colours[self.class_ids][:, :, None, None] + (1 - disc) * 0.1
        self.emb = np.eye(classes, text_dim, dtype=np.float32)[self.class_ids]
        self.emb += rng.normal(0, 0.1, size=self.emb.shape).astype(np.float32)

    def __len__(self) -> int:
        return self.n

    def batch(self, indices: np.ndarray, epoch: int) -> dict[str, torch.Tensor]:
        idx = np.asarray(indices)
        wrong = (idx + 1) % self.n  # next index: always another class (classes alternate)
        return {
            "image": torch.from_numpy(self.images[idx].copy()),
            "text_emb": torch.from_numpy(self.emb[idx]),
            "wrong_emb": torch.from_numpy(self.emb[wrong]),
            "class_id": torch.from_numpy(self.class_ids[idx]),
            "index": torch.from_numpy(idx.astype(np.int64)),
            "caption_idx": torch.from_numpy(idx.astype(np.int64)),
        }


TINY = [
    "model.preset=tiny", "train.batch_size=8", "train.steps=4", "train.progress=false", "train.tensorboard=false",
    "train.log_every=1", "train.sample_every=1000", "train.ckpt_every=1000", "train.sample_n=2",
    "optim.decay_every_epochs=0", "train.threads=1", "train.precision=fp32",
]  # fmt: skip


@pytest.fixture
def sg_config(tmp_path) -> Callable[..., TrainConfig]:
    def make(*overrides: str, run: str = "run") -> TrainConfig:
        return load_config(None, [*TINY, f"run_dir={tmp_path / run}", *overrides])

    return make


@pytest.fixture
def blobs16() -> BlobDataset:
    return BlobDataset(size=16)


@pytest.fixture
def blobs32() -> BlobDataset:
    return BlobDataset(size=32)


@pytest.fixture
def make_blobs() -> type[BlobDataset]:
    """`BlobDataset` itself, for other sizes: ``make_blobs(n=16, size=64)``."""
    return BlobDataset
