"""The word-level text encoder of Reed et al., CVPR 2016 (their "word-LSTM"; a GRU is one option away).

"Learning Deep Representations of Fine-Grained Visual Descriptions" (Reed, Akata, Lee, Schiele), §3.2 and Table 1:
beside the char-CNN-RNN the paper trains word-level models with the same DS-SJE objective (eq. 4–6). A caption is a
sequence of word indices; a learned word embedding feeds a recurrent layer whose hidden states are averaged over the
caption's words, and a linear layer maps the mean to φ(t) — the char-CNN-RNN's head (``char_cnn_rnn.py``) on words
instead of convolved characters. Words are lower-cased ASCII (``fold_ascii``) runs of letters and digits, each
punctuation mark a word of its own; the vocabulary is read off the training captions (``WordRnn.build``), and a word
outside it maps to one "unknown" index, so any caption encodes.

Why it is here: DS-SJE ties every caption to its class, and a character model has to *learn* that "pointed" is one
unit; a word model is given the words, so the attributes a caption names stay separate inputs for new combinations
of them (``docs/quality.md``, "What limits the petal count of new combinations").
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from t2igan.text.base import TextEncoder, fold_ascii, warn_truncated
from t2igan.utils.errors import T2IError

PAD, UNK = 0, 1  # word index 0 pads a caption, 1 stands for any word outside the vocabulary
WORD_PATTERN = r"[a-z0-9]+|[^\sa-z0-9]"  # a word: a run of letters and digits, or one punctuation mark
_WORD = re.compile(WORD_PATTERN)


def split_words(caption: str) -> list[str]:
    """``"Pink, pointed petals."`` → ``["pink", ",", "pointed", "petals", "."]`` (after ``fold_ascii``)."""
    return _WORD.findall(fold_ascii(caption))


@dataclass
class WordRnnConfig:
    """Widths and vocabulary of the word-level encoder (saved in its ``config.json``)."""

    vocab: list[str] = field(default_factory=list)  # words of index 2, 3, … (0 = padding, 1 = unknown)
    max_words: int = 64  # words read; longer captions are truncated (with a warning)
    word_dim: int = 128  # word embedding size
    rnn_dim: int = 128  # recurrent hidden size
    embed_dim: int = 256  # φ(t) size (the joint embedding space)
    rnn_type: str = "lstm"  # "lstm" (the paper's word-LSTM) or "gru"

    def __post_init__(self) -> None:
        self.vocab = [str(w) for w in self.vocab]
        if self.rnn_type not in ("lstm", "gru"):
            raise T2IError(f"rnn_type must be 'lstm' or 'gru', got {self.rnn_type!r}")
        if self.max_words < 1 or min(self.word_dim, self.rnn_dim, self.embed_dim) < 1:
            raise T2IError("max_words, word_dim, rnn_dim and embed_dim must be ≥ 1")
        if len(set(self.vocab)) != len(self.vocab):
            raise T2IError("the word vocabulary lists a word twice")


# Widths by preset name (the vocabulary comes from the data: ``WordRnn.build``).
PRESETS: dict[str, dict[str, int]] = {
    "paper": {"word_dim": 300, "rnn_dim": 512, "embed_dim": 1024},  # Reed et al. 2016's sizes
    "cpu": {"word_dim": 128, "rnn_dim": 128, "embed_dim": 256},  # the char-CNN-RNN cpu preset's φ(t) size
    "tiny": {"word_dim": 8, "rnn_dim": 8, "embed_dim": 16},  # unit tests
}


class WordRnn(TextEncoder):
    """φ(t) = Linear(mean_words RNN(Embedding(words))) — Reed et al. 2016's word-LSTM, trained with DS-SJE."""

    type_name = "word-rnn"
    name = "word-rnn"

    def __init__(self, config: WordRnnConfig | None = None) -> None:
        super().__init__()
        self.config = config or WordRnnConfig()
        self.index = {w: i + 2 for i, w in enumerate(self.config.vocab)}
        c = self.config
        self.embed = nn.Embedding(len(c.vocab) + 2, c.word_dim, padding_idx=PAD)
        self.rnn = (nn.LSTM if c.rnn_type == "lstm" else nn.GRU)(c.word_dim, c.rnn_dim, batch_first=True)
        self.proj = nn.Linear(c.rnn_dim, c.embed_dim)

    @classmethod
    def build(cls, captions: Iterable[str], preset: str = "cpu", min_count: int = 1, **overrides: Any) -> WordRnn:
        """An untrained encoder whose vocabulary is every word seen ≥ ``min_count`` times in ``captions``."""
        if preset not in PRESETS:
            raise T2IError(f"unknown word-rnn preset {preset!r}", hint=f"choose one of {sorted(PRESETS)}")
        counts = Counter(w for cap in captions for w in split_words(cap))
        vocab = sorted(w for w, n in counts.items() if n >= min_count)
        if not vocab:
            raise T2IError("no words to build a vocabulary from", hint="the training captions are empty")
        return cls(WordRnnConfig(vocab=vocab, **{**PRESETS[preset], **overrides}))

    @property
    def dim(self) -> int:
        return self.config.embed_dim

    @property
    def vocab_size(self) -> int:
        """Rows of the word embedding: the vocabulary plus padding and unknown."""
        return len(self.config.vocab) + 2

    def get_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> WordRnn:
        names = {f.name for f in dataclasses.fields(WordRnnConfig)}
        unknown = set(config) - names
        if unknown:
            raise T2IError(f"unknown word-rnn config keys {sorted(unknown)}", hint="was it saved by a newer t2igan?")
        return cls(WordRnnConfig(**config))

    # ---- the network -----------------------------------------------------------------------------------------
    def forward_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Word indices ``int64 [B, L]`` (0 = padding) → φ(t) ``[B, embed_dim]`` (differentiable; for the trainer).

        The recurrent layer runs left to right, so padding after a caption's last word cannot change the hidden
        states of its words; the mean is taken over those words only.
        """
        tokens = tokens.long()
        out, _ = self.rnn(self.embed(tokens))  # [B, L, rnn_dim]
        mask = (tokens != PAD).unsqueeze(-1).to(out.dtype)  # [B, L, 1]
        mean = (out * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return self.proj(mean)

    def tokenize(self, captions: list[str], *, warn: bool = True) -> torch.Tensor:
        """Captions → word indices ``int64 [N, L]`` (L = the longest caption's words, at most ``max_words``)."""
        rows = [[self.index.get(w, UNK) for w in split_words(cap)] or [UNK] for cap in captions]
        n_cut = sum(len(r) > self.config.max_words for r in rows)
        if n_cut and warn:
            warn_truncated(n_cut, self.config.max_words, "words", max(captions, key=len))
        width = min(self.config.max_words, max((len(r) for r in rows), default=1))
        out = torch.zeros(len(rows), width, dtype=torch.int64)
        for i, r in enumerate(rows):
            r = r[:width]
            out[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
        return out

    def _encode_batch(self, captions: list[str]) -> torch.Tensor:
        return self.forward_tokens(self.tokenize(captions).to(self.proj.weight.device))


__all__ = ["PAD", "PRESETS", "UNK", "WORD_PATTERN", "WordRnn", "WordRnnConfig", "split_words"]
