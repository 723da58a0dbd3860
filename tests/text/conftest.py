"""Fixtures for the text-encoder tests: a toy duck-typed cache and a tiny trained-or-not char-CNN-RNN."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from text_fake_cache import FakeCache

from t2igan.text.char_cnn_rnn import CharCnnRnn


@pytest.fixture
def fake_cache(tmp_path: Path) -> FakeCache:
    return FakeCache(tmp_path / "cache", per_class=4, size=16)


@pytest.fixture
def tiny_encoder() -> CharCnnRnn:
    torch.manual_seed(0)
    return CharCnnRnn.from_preset("tiny").eval()


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny ops on a shared 2-core box: one thread avoids OpenMP spin-waits (trainer tests 16 s → 0.5 s)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)
