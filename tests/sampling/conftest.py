"""Tiny stand-ins for the sampling tests: a 16 px generator, a two-stage one and a hashing text encoder.

They follow the contracts of docs/architecture.md (`.config`, `.z_dim`, `.text_dim`, forward(z, emb); `encode`,
`dim`, `name`, `save_pretrained`) so the pipeline is tested without training anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from t2igan.sampling import T2IPipeline, pipeline
from t2igan.utils.pretrained import register_pretrained


@dataclass
class TinyConfig:
    z_dim: int = 8
    text_dim: int = 6
    width: int = 8
    image_size: int = 16
    two_stage: bool = False


class TinyGenerator(nn.Module):
    """G(z, φ) → [B, 3, 16, 16] (and an 8 px first stage when two_stage): linear, BN, up-convs, tanh."""

    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        self.z_dim, self.text_dim = config.z_dim, config.text_dim
        w = config.width
        self.fc = nn.Linear(config.z_dim + config.text_dim, w * 4 * 4)
        self.bn = nn.BatchNorm1d(w * 4 * 4)
        self.up1 = nn.ConvTranspose2d(w, w, 4, 2, 1)
        self.up2 = nn.ConvTranspose2d(w, w, 4, 2, 1)
        self.to_rgb1 = nn.Conv2d(w, 3, 3, 1, 1)
        self.to_rgb2 = nn.Conv2d(w, 3, 3, 1, 1)
        with torch.no_grad():  # non-trivial running stats, so eval mode matters
            self.bn.running_mean.uniform_(-0.1, 0.1)
            self.bn.running_var.uniform_(0.5, 1.5)

    def forward(self, z: torch.Tensor, emb: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        h = torch.relu(self.bn(self.fc(torch.cat([z, emb], 1)))).view(z.shape[0], -1, 4, 4)
        h8 = torch.relu(self.up1(h))
        h16 = torch.relu(self.up2(h8))
        out = torch.tanh(self.to_rgb2(h16))
        return [torch.tanh(self.to_rgb1(h8)), out] if self.config.two_stage else out


register_pretrained(TinyConfig)(TinyGenerator)


class HashTextEncoder:
    """φ(t): bag of characters through a fixed random projection (deterministic, any caption)."""

    name = "hash-test"

    def __init__(self, dim: int = 6) -> None:
        self.dim = dim
        self.proj = torch.randn(128, dim, generator=torch.Generator().manual_seed(0))

    def encode(self, captions: list[str]) -> torch.Tensor:
        counts = torch.zeros(len(captions), 128)
        for i, c in enumerate(captions):
            for ch in c.lower():
                counts[i, ord(ch) % 128] += 1
        return torch.nn.functional.normalize(counts @ self.proj, dim=1)

    def save_pretrained(self, path: str | Path) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "config.json").write_text(json.dumps({"type": "hash-test", "dim": self.dim}))

    @classmethod
    def load(cls, path: Path) -> HashTextEncoder:
        return cls(json.loads((Path(path) / "config.json").read_text())["dim"])


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run 3× faster on one thread when the 2 cores are shared (measured); restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _hash_encoder_loader(monkeypatch):
    """Folders written by these tests name the hash encoder; load it instead of a real one."""
    real = pipeline._load_text_encoder

    def load(path: Path):
        cfg = json.loads((Path(path) / "config.json").read_text()) if (Path(path) / "config.json").is_file() else {}
        return HashTextEncoder.load(path) if cfg.get("type") == "hash-test" else real(path)

    monkeypatch.setattr(pipeline, "_load_text_encoder", load)


def make_pipe(two_stage: bool = False, seed: int = 0) -> T2IPipeline:
    torch.manual_seed(seed)
    return T2IPipeline(TinyGenerator(TinyConfig(two_stage=two_stage)), HashTextEncoder())


@pytest.fixture
def pipe() -> T2IPipeline:
    return make_pipe()


@pytest.fixture
def pretrained(tmp_path, pipe) -> Path:
    return pipe.save_pretrained(tmp_path / "pretrained")
