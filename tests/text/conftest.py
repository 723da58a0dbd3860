"""Fixtures for the text-encoder tests: a toy duck-typed cache and a tiny trained-or-not char-CNN-RNN."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

# Tiny ops on a shared 2-core box: one thread avoids OpenMP spin-waits (16 s → 0.5 s for the trainer tests).
torch.set_num_threads(1)

sys.path.insert(0, str(Path(__file__).parent))

from fakecache import FakeCache  # noqa: E402

from t2igan.text.char_cnn_rnn import CharCnnRnn  # noqa: E402


@pytest.fixture
def fake_cache(tmp_path: Path) -> FakeCache:
    return FakeCache(tmp_path / "cache", per_class=4, size=16)


@pytest.fixture
def tiny_encoder() -> CharCnnRnn:
    torch.manual_seed(0)
    return CharCnnRnn.from_preset("tiny").eval()
