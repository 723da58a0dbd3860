"""The char-CNN-RNN text encoder of Reed et al., CVPR 2016.

"Learning Deep Representations of Fine-Grained Visual Descriptions" (Reed, Akata, Lee, Schiele), §3.2: a caption is a
sequence of one-hot characters (the paper's alphabet, 201 characters, zero-padded); a temporal convolution stack
shrinks it to ~8 timesteps, a recurrent layer (GRU here, as in the released ``cvpr2016`` code's ``char-CNN-GRU``)
runs over them, its hidden states are averaged over time and a linear layer maps the mean to the embedding φ(t)
(1024-d in the paper). It is trained jointly with an image encoder by the DS-SJE loss (``t2igan.text.sje``).

Shapes for the default 201 characters: 201 →conv4→ 198 →pool3→ 66 →conv4→ 63 →pool3→ 21 →conv4→ 18 →pool(3,2)→ 8.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from t2igan.text.base import TextEncoder, fold_ascii, warn_truncated
from t2igan.utils.errors import T2IError

# The alphabet exactly as the released code spells it (70 symbols with the space, so weights keep the paper's
# channel layout). It lists "-" twice; like the original's dictionary, "-" maps to its last position, so one channel
# is never lit. Every printable ASCII character is in it: after ASCII folding only control characters are dropped.
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-,;.!?:'\"/\\|_@#$%^&*~`+-=<>()[]{} "
_CHAR_INDEX = {ch: i + 1 for i, ch in enumerate(ALPHABET)}  # 0 = padding (an all-zero one-hot column)


def _time_steps(max_len: int) -> int:
    t = (max_len - 3) // 3
    t = (t - 3) // 3
    t = t - 3
    return (t - 3) // 2 + 1


@dataclass
class CharCnnRnnConfig:
    """Widths of the char-CNN-RNN. The defaults are the paper's; ``PRESETS["cpu"]`` is a small CPU-friendly one."""

    max_len: int = 201  # characters read; longer captions are truncated (with a warning)
    conv_channels: tuple[int, int, int] = (384, 512, 512)  # the three temporal convolutions (kernel 4)
    rnn_dim: int = 512  # GRU hidden size
    embed_dim: int = 1024  # φ(t) size (the joint embedding space)
    rnn_type: str = "gru"  # "gru" (paper's best on flowers/birds) or "rnn"

    def __post_init__(self) -> None:
        self.conv_channels = tuple(int(c) for c in self.conv_channels)  # type: ignore[assignment]
        if len(self.conv_channels) != 3:
            raise T2IError(f"conv_channels needs 3 widths, got {self.conv_channels}")
        if self.rnn_type not in ("gru", "rnn"):
            raise T2IError(f"rnn_type must be 'gru' or 'rnn', got {self.rnn_type!r}")
        if _time_steps(self.max_len) < 1:
            shortest = next(n for n in range(1, 1000) if _time_steps(n) >= 1)
            raise T2IError(f"max_len={self.max_len} is too short for the conv stack (needs ≥ {shortest} characters)")


PRESETS: dict[str, CharCnnRnnConfig] = {
    # Reed et al. 2016 widths (slow on CPU: ~0.2 GFLOP per caption).
    "paper": CharCnnRnnConfig(),
    # Small widths for CPU training in ~2 minutes (grammar-like captions need little capacity); φ(t) is 256-d.
    "cpu": CharCnnRnnConfig(conv_channels=(64, 128, 128), rnn_dim=128, embed_dim=256),
    # For unit tests.
    "tiny": CharCnnRnnConfig(conv_channels=(8, 8, 8), rnn_dim=8, embed_dim=16),
}


def tokenize(captions: list[str], max_len: int) -> tuple[torch.Tensor, int]:
    """Captions → character indices ``int64 [N, max_len]`` (0 = padding) and how many were truncated.

    Text is lower-cased and folded to ASCII (``fold_ascii``); characters outside the alphabet are dropped.
    """
    out = np.zeros((len(captions), max_len), dtype=np.int64)
    truncated = 0
    for i, cap in enumerate(captions):
        idx = [_CHAR_INDEX[ch] for ch in fold_ascii(cap) if ch in _CHAR_INDEX]
        if len(idx) > max_len:
            truncated += 1
            idx = idx[:max_len]
        out[i, : len(idx)] = idx
    return torch.from_numpy(out), truncated


class CharCnnRnn(TextEncoder):
    """φ(t) of Reed et al. 2016: one-hot chars → 3×(Conv1d k4 + ReLU + MaxPool) → GRU → mean over time → Linear."""

    type_name = "char-cnn-rnn"
    name = "char-cnn-rnn"

    def __init__(self, config: CharCnnRnnConfig | None = None) -> None:
        super().__init__()
        self.config = config or CharCnnRnnConfig()
        c1, c2, c3 = self.config.conv_channels
        a = len(ALPHABET)
        self.conv = nn.Sequential(
            nn.Conv1d(a, c1, 4),
            nn.ReLU(inplace=True),
            nn.MaxPool1d(3),
            nn.Conv1d(c1, c2, 4),
            nn.ReLU(inplace=True),
            nn.MaxPool1d(3),
            nn.Conv1d(c2, c3, 4),
            nn.ReLU(inplace=True),
            nn.MaxPool1d(3, 2),
        )
        rnn_cls = nn.GRU if self.config.rnn_type == "gru" else nn.RNN
        self.rnn = rnn_cls(c3, self.config.rnn_dim, batch_first=True)
        self.proj = nn.Linear(self.config.rnn_dim, self.config.embed_dim)

    @property
    def dim(self) -> int:
        return self.config.embed_dim

    def get_config(self) -> dict[str, Any]:
        d = dataclasses.asdict(self.config)
        d["conv_channels"] = list(d["conv_channels"])
        return d

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CharCnnRnn:
        names = {f.name for f in dataclasses.fields(CharCnnRnnConfig)}
        unknown = set(config) - names
        if unknown:
            raise T2IError(
                f"unknown char-cnn-rnn config keys {sorted(unknown)}", hint="was it saved by a newer t2igan?"
            )
        return cls(CharCnnRnnConfig(**config))

    @classmethod
    def from_preset(cls, preset: str = "paper", **overrides: Any) -> CharCnnRnn:
        if preset not in PRESETS:
            raise T2IError(f"unknown char-cnn-rnn preset {preset!r}", hint=f"choose one of {sorted(PRESETS)}")
        return cls(dataclasses.replace(PRESETS[preset], **overrides))

    # ---- the network -----------------------------------------------------------------------------------------
    def forward_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Character indices ``int64 [B, L]`` → φ(t) ``[B, embed_dim]`` (differentiable; used by the trainer)."""
        h = self.conv[1:](self._first_conv(tokens))  # [B, c3, T≈8]
        out, _ = self.rnn(h.transpose(1, 2))  # [B, T, rnn_dim]
        return self.proj(out.mean(dim=1))  # mean over time, then the linear map to the embedding

    def _first_conv(self, tokens: torch.Tensor) -> torch.Tensor:
        """``conv[0]`` applied to the one-hot sequence, computed as a lookup: [B, L] → [B, c1, L − 3].

        A kernel-4 convolution of one-hot columns is the sum, over the 4 offsets, of the weight column of the
        character at each offset — identical to ``Conv1d(one_hot(tokens))`` at ~1/70 of the multiply-adds.
        """
        conv = self.conv[0]
        a = len(ALPHABET)
        w = conv.weight.permute(2, 1, 0)  # [4, A, c1]
        w = F.pad(w, (0, 0, 1, 0))  # row 0 = padding character → zero contribution
        windows = tokens.unfold(1, conv.kernel_size[0], 1)  # [B, L − 3, 4]
        offsets = torch.arange(conv.kernel_size[0], device=tokens.device) * (a + 1)
        out = F.embedding(windows + offsets, w.reshape(-1, w.shape[-1])).sum(2) + conv.bias  # [B, L − 3, c1]
        return out.transpose(1, 2)

    def tokenize(self, captions: list[str], *, warn: bool = True) -> torch.Tensor:
        tokens, n_cut = tokenize(captions, self.config.max_len)
        if n_cut and warn:
            longest = max(captions, key=len)
            warn_truncated(n_cut, self.config.max_len, "characters", longest)
        return tokens

    def _encode_batch(self, captions: list[str]) -> torch.Tensor:
        return self.forward_tokens(self.tokenize(captions).to(self.proj.weight.device))


__all__ = ["ALPHABET", "PRESETS", "CharCnnRnn", "CharCnnRnnConfig", "tokenize"]
