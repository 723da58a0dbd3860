"""The one text-encoder interface every model conditions on: φ(t) = ``encoder.encode(captions)``.

Three kinds implement it (see ``docs/text_encoders.md``):

- ``"char-cnn-rnn"`` — Reed et al., CVPR 2016, "Learning Deep Representations of Fine-Grained Visual Descriptions",
  trained here with the DS-SJE loss (``t2igan.text.sje``);
- ``"minilm"`` — the pretrained all-MiniLM-L6-v2 sentence encoder (optional extra ``t2igan[sentence]``);
- ``"precomputed"`` — a marker for models trained on published embedding files: it cannot encode new text.

A pretrained folder holds ``config.json`` (``_class_name``, a ``"type"`` field and the constructor arguments) and, when
the encoder has weights, ``model.safetensors`` — written and read by ``t2igan.utils.pretrained`` like every other
component. ``load_text_encoder(dir_or_name)`` dispatches on the type.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import unicodedata
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import nn

from t2igan.utils.errors import T2IError
from t2igan.utils.pretrained import CONFIG_NAME, WEIGHTS_NAME, load_weights, read_config, read_weights, write_pretrained

# type → loader(folder, config dict) -> TextEncoder. Filled by the modules that define encoders (imported lazily).
_LOADERS: dict[str, str] = {
    "char-cnn-rnn": "t2igan.text.char_cnn_rnn:CharCnnRnn",
    "word-rnn": "t2igan.text.word_rnn:WordRnn",
    "minilm": "t2igan.text.sentence:MiniLMEncoder",
    "precomputed": "t2igan.text.precomputed:PrecomputedEmbeddings",
}
# Names that need no folder.
_BUILTIN_NAMES = {"minilm": "minilm", "all-minilm-l6-v2": "minilm", "sentence-transformers/all-minilm-l6-v2": "minilm"}


# Punctuation mapped to an ASCII look-alike before the NFKD fold (`fold_ascii`; the ONNX export writes it out too).
ASCII_FOLD_TABLE = {"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "...", "\u00a0": " "}


class CaptionTruncatedWarning(UserWarning):
    """A caption was longer than the encoder takes and was cut (the encoder's ``max_len``)."""


def fold_ascii(text: str) -> str:
    """Lower-case and fold unicode to ASCII (``"Pétales – roses"`` → ``"petales - roses"``).

    Compatibility decomposition (NFKD) splits accents off letters; common punctuation (curly quotes, dashes) is mapped
    to its ASCII look-alike; anything left outside ASCII is dropped. Whitespace runs become one space.
    """
    text = "".join(ASCII_FOLD_TABLE.get(ch, ch) for ch in text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join(text.lower().split())


def check_captions(captions: Sequence[str] | str) -> list[str]:
    """Validate a caption list: a list of non-empty strings (whitespace-only counts as empty)."""
    if isinstance(captions, str):
        captions = [captions]
    out = list(captions)
    for i, c in enumerate(out):
        if not isinstance(c, str):
            raise T2IError(f"caption {i} is a {type(c).__name__}, not a string", hint="pass a list of strings")
        if not c.strip():
            raise T2IError(
                f"caption {i} is empty", hint="give every caption some text, e.g. 'a flower with red petals'"
            )
    return out


def warn_truncated(n: int, max_len: int, unit: str, example: str) -> None:
    """One warning per ``encode`` call that truncated anything."""
    short = example if len(example) <= 60 else example[:57] + "..."
    warnings.warn(
        f"{n} caption(s) longer than {max_len} {unit} were truncated (e.g. {short!r})",
        CaptionTruncatedWarning,
        stacklevel=3,
    )


def auto_threads() -> int:
    """torch CPU threads for small-op work: the idle cores (≥ 1, ≤ torch's default). On a busy machine one thread is
    ~2× faster than two, because OpenMP workers spin-wait for cores that other processes hold."""
    try:
        idle = (os.cpu_count() or 1) - os.getloadavg()[0]
    except (OSError, AttributeError):  # pragma: no cover - no load average (Windows)
        return torch.get_num_threads()
    return max(1, min(torch.get_num_threads(), int(idle + 0.5)))


@contextlib.contextmanager
def cpu_threads(n: int | None = None) -> Iterator[int]:
    """Run a block with ``n`` torch threads (default ``auto_threads()``), restoring the previous number after."""
    saved = torch.get_num_threads()
    n = n or auto_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(saved)


@runtime_checkable
class TextEncoderLike(Protocol):
    """What the pretrained folder and the pipeline need from a text encoder: `TextEncoder` is one; any object with
    these members can be exported with a generator and loaded back (by its own loader)."""

    name: str
    dim: int

    def encode(self, captions: list[str]) -> torch.Tensor: ...

    def save_pretrained(self, path: str | Path) -> Any: ...


class TextEncoder(nn.Module, ABC):
    """φ(t): captions → ``FloatTensor[N, dim]``. Deterministic: ``encode`` runs in eval mode without gradients."""

    type_name: ClassVar[str] = ""

    #: Short human-readable name, e.g. ``"char-cnn-rnn"``; used in cache keys.
    name: str = ""
    #: Where ``load_text_encoder`` found it: an absolute folder path or a built-in name (``None`` if built in code).
    source: str | None = None

    @property
    @abstractmethod
    def dim(self) -> int:
        """Embedding size D."""

    @abstractmethod
    def _encode_batch(self, captions: list[str]) -> torch.Tensor:
        """Encode one batch of validated captions (already in eval mode, under ``torch.no_grad``)."""

    @abstractmethod
    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments."""

    def encode(self, captions: Sequence[str] | str, batch_size: int = 256) -> torch.Tensor:
        """Encode captions in batches of ``batch_size`` → float32 CPU tensor ``[N, dim]``.

        Raises ``T2IError`` for an empty caption; warns (``CaptionTruncatedWarning``) when captions were cut.
        """
        caps = check_captions(captions)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                parts = [self._encode_batch(caps[i : i + batch_size]) for i in range(0, len(caps), batch_size)]
        finally:
            self.train(was_training)
        if not parts:
            return torch.zeros(0, self.dim)
        return torch.cat(parts).float().cpu()

    def forward(self, captions: Sequence[str]) -> torch.Tensor:  # pragma: no cover - convenience
        return self.encode(captions)

    # ---- persistence -------------------------------------------------------------------------------------------
    def save_pretrained(self, folder: str | Path) -> Path:
        """Write ``config.json`` (+ ``model.safetensors`` when the encoder has trainable weights) into ``folder``
        (``t2igan.utils.pretrained``: weights first, config last, each atomically)."""
        folder = Path(folder)
        write_pretrained(
            folder, type(self).__name__, {"type": self.type_name, **self.get_config()}, self.weights_to_save()
        )
        if self.source is None:
            self.source = str(folder.resolve())
        return folder

    def weights_to_save(self) -> dict[str, torch.Tensor]:
        """The tensors ``save_pretrained`` writes (default: the whole state dict)."""
        return dict(self.state_dict())

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> TextEncoder:
        """Load from a folder written by ``save_pretrained`` (must be of this class's type)."""
        enc = load_text_encoder(folder)
        if not isinstance(enc, cls):
            raise T2IError(f"holds a {enc.type_name!r} encoder, not {cls.type_name!r}", path=folder)
        return enc

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TextEncoder:
        """Build an untrained encoder from ``get_config()``'s output."""
        return cls(**config)

    @classmethod
    def _from_config_dir(cls, folder: Path | None, config: dict[str, Any]) -> TextEncoder:
        """Build from a config dict and load weights from ``folder`` if any (overridden where needed)."""
        enc = cls.from_config(config)
        if folder is not None and enc.weights_to_save():  # an encoder with weights of its own needs its file
            hint = "re-export the encoder with save_pretrained"
            load_weights(
                enc, read_weights(folder, hint=hint, what="text encoder weights"), folder / WEIGHTS_NAME, hint=hint
            )
        enc.eval()
        return enc

    def fingerprint(self) -> str:
        """A stable hash of the type, config and weights: same fingerprint ⇒ same embeddings."""
        h = hashlib.sha256()
        h.update(json.dumps({"type": self.type_name, "config": self.get_config()}, sort_keys=True).encode())
        for k, v in sorted(self.weights_to_save().items()):
            h.update(k.encode())
            h.update(v.detach().float().contiguous().cpu().numpy().tobytes())
        return h.hexdigest()[:16]


def _import_target(target: str) -> Callable[..., Any]:
    import importlib

    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def load_text_encoder(dir_or_name: str | Path) -> TextEncoder:
    """Load a text encoder: a pretrained folder (``config.json`` with ``"type"``) or a built-in name (``"minilm"``)."""
    key = str(dir_or_name).strip().lower()
    if key in _BUILTIN_NAMES and not Path(dir_or_name).exists():
        cls = _import_target(_LOADERS[_BUILTIN_NAMES[key]])
        enc = cls._from_config_dir(None, {})
        enc.source = _BUILTIN_NAMES[key]
        return enc
    folder = Path(dir_or_name)
    if not folder.exists():
        raise T2IError(
            "no such text encoder folder or name",
            path=folder,
            hint="pass a folder written by `t2igan encode train` / save_pretrained, or 'minilm'",
        )
    if not (folder / CONFIG_NAME).exists():
        raise T2IError(
            "is not a text encoder folder (config.json missing)",
            path=folder,
            hint="train one with `t2igan encode train DATA --out DIR`, or pass 'minilm'",
        )
    meta = read_config(folder, hint="re-export the encoder")
    type_name = meta.get("type")
    if type_name not in _LOADERS:
        raise T2IError(
            f"unknown text encoder type {type_name!r}",
            path=folder / CONFIG_NAME,
            hint=f"expected one of {sorted(_LOADERS)}",
        )
    cls = _import_target(_LOADERS[type_name])
    if "_class_name" in meta:
        config = {k: v for k, v in meta.items() if not k.startswith("_") and k != "type"}
    else:  # written before t2igan.utils.pretrained: {"type", "config", "t2igan_version"}
        config = dict(meta.get("config") or {})
    enc = cls._from_config_dir(folder, config)
    enc.source = str(folder.resolve())
    return enc
