"""ONNX export of a pretrained folder: the generator and the DS-SJE text encoder, for onnxruntime without PyTorch.

    t2igan export runs/demo --format onnx --out runs/demo_onnx
    python examples/onnx_sample.py runs/demo_onnx "this flower has pink petals" --out pink.png

The folder written::

    onnx_model.json       what each graph takes and gives (names, shapes, sizes), the opset and the measured
                          onnxruntime-vs-PyTorch difference of each graph
    generator.onnx        z [B, z_dim], text_emb [B, text_dim] (absent when unconditional), eps_0 … [B, d_k]
                          (StackGAN's Conditioning Augmentation noise ε, one per sampling CA) → image [B, 3, S, S]
                          (Reed) or stage_0 … stage_k coarse → fine (StackGAN, StackGAN++), in [-1, 1]
    text_encoder.onnx     char-CNN-RNN: tokens int64 [B, max_len] → embedding [B, dim] (one-hot, conv stack, GRU,
                          mean over time, linear; Reed et al., CVPR 2016); word-LSTM: word indices int64
                          [B, words] → embedding (word embedding, LSTM, mean over the words, linear; same paper)
    text_encoder.json     the tokenisation, done in Python/numpy: alphabet and max_len (characters) or the word
                          pattern, vocabulary and max_words (words), the ASCII fold
    README.md             the model card of the source folder, when it has one

The batch axis is dynamic in every graph. ε is an input, so a graph is deterministic: the same inputs give the same
image. The generator is exported as the pipeline runs it (eval mode: BatchNorm uses its running statistics). Models
with a MiniLM encoder or precomputed embeddings export the generator only (their ``text_emb`` comes from elsewhere).
Exported with torch's TorchScript-based exporter (``dynamo=False``: needs only ``onnx``, seconds per graph).
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from t2igan import __version__
from t2igan.sampling.ca_noise import ca_noise_dims
from t2igan.utils.errors import T2IError
from t2igan.utils.io import atomic_write_json
from t2igan.utils.outputs import atomic_dir

ONNX_KIND = "onnx"
FORMAT = "t2igan-onnx/1"
MIN_OPSET, MAX_OPSET, DEFAULT_OPSET = 17, 20, 17
TOLERANCE = 1e-4  # max |onnxruntime − PyTorch| accepted for an exported graph

__all__ = [
    "CharTokensGraph",
    "GeneratorGraph",
    "WordTokensGraph",
    "export_onnx",
    "tokenizer_spec",
    "word_tokenizer_spec",
]


class GeneratorGraph(nn.Module):
    """The generator as exported: explicit inputs ``(z, [text_emb], *eps)`` → a tuple of images, coarse → fine."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator
        self.conditional = int(getattr(generator, "text_dim", 0)) > 0
        self.eps_dims = ca_noise_dims(generator)

    def input_names(self) -> list[str]:
        return ["z", *(["text_emb"] if self.conditional else []), *(f"eps_{k}" for k in range(len(self.eps_dims)))]

    def forward(self, z: torch.Tensor, *rest: torch.Tensor) -> tuple[torch.Tensor, ...]:
        text = rest[0] if self.conditional else None
        eps = list(rest[1:] if self.conditional else rest)
        out = self.generator(z, text, eps=eps) if eps else self.generator(z, text)
        return tuple(out) if isinstance(out, (list, tuple)) else (out,)


class CharTokensGraph(nn.Module):
    """The char-CNN-RNN from character indices (0 = padding): the one-hot sequence through the first convolution,
    then the rest of `CharCnnRnn.forward_tokens` (which computes that convolution as a lookup; same result)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.alphabet_size = int(encoder.conv[0].in_channels)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        e = self.encoder
        one_hot = F.one_hot(tokens, self.alphabet_size + 1)[..., 1:].to(e.proj.weight.dtype).transpose(1, 2)
        h = e.conv(one_hot)  # [B, c3, T]
        out, _ = e.rnn(h.transpose(1, 2))
        return e.proj(out.mean(dim=1))


class WordTokensGraph(nn.Module):
    """The word-LSTM from word indices (0 = padding, 1 = unknown): `WordRnn.forward_tokens` as is."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.encoder.forward_tokens(tokens)


def word_tokenizer_spec(encoder: Any) -> dict[str, Any]:
    """What `WordRnn.tokenize` does, as data: the ASCII fold of the char-CNN-RNN, then the word pattern; index = 2 +
    the word's position in ``vocab``, 1 for any other word, a caption without words is one unknown word; cut at
    ``max_words``; zero-padded to the batch's longest caption."""
    from t2igan.text.base import ASCII_FOLD_TABLE
    from t2igan.text.word_rnn import PAD, UNK, WORD_PATTERN

    return {
        "type": "word-rnn",
        "pattern": WORD_PATTERN,
        "vocab": list(encoder.config.vocab),
        "max_words": int(encoder.config.max_words),
        "padding_index": PAD,
        "unknown_index": UNK,
        "index": "2 + the position of the word in vocab; any other word is unknown_index",
        "replace": dict(ASCII_FOLD_TABLE),
        "unicode": "NFKD, then ASCII characters only",
        "lowercase": True,
        "collapse_whitespace": True,
        "dim": int(encoder.dim),
    }


def tokenizer_spec(encoder: Any) -> dict[str, Any]:
    """What `t2igan.text.char_cnn_rnn.tokenize` does, as data: fold to ASCII (replacements, NFKD, drop the rest),
    lower-case, collapse whitespace; index = 1 + the character's position in the alphabet (its last position when it
    appears twice), characters outside it dropped, cut at ``max_len``, zero-padded."""
    from t2igan.text.base import ASCII_FOLD_TABLE
    from t2igan.text.char_cnn_rnn import ALPHABET

    return {
        "type": "char-cnn-rnn",
        "alphabet": ALPHABET,
        "max_len": int(encoder.config.max_len),
        "padding_index": 0,
        "index": "1 + the last position of the character in alphabet; characters not in it are dropped",
        "replace": dict(ASCII_FOLD_TABLE),
        "unicode": "NFKD, then ASCII characters only",
        "lowercase": True,
        "collapse_whitespace": True,
        "dim": int(encoder.dim),
    }


def export_onnx(
    model: str | Path | Any,
    out: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    ca_mean: bool = False,
    overwrite: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Export ``model`` (a pretrained folder, a run folder or a `T2IPipeline`) to the folder ``out``; returns the
    contents of ``onnx_model.json``. Every graph is run in onnxruntime and compared with PyTorch on a batch of 3
    before the folder is written (a difference above 1e-3 is an error). ``ca_mean``: StackGAN with ĉ = μ (no ε
    inputs). ``out`` must be new, empty or an earlier ONNX export (``overwrite`` replaces another folder)."""
    from t2igan.sampling.pipeline import T2IPipeline
    from t2igan.utils.optional import require

    require("onnx", "onnxruntime", extra="onnx", what="ONNX export")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise T2IError(f"opset {opset} is not supported", hint=f"choose {MIN_OPSET} … {MAX_OPSET}")
    pipe = model if isinstance(model, T2IPipeline) else T2IPipeline.from_pretrained(model)
    generator = pipe.generator.to("cpu").eval()
    had_ca = getattr(generator, "use_ca_mean", None)
    if ca_mean:
        if had_ca is None:
            raise T2IError("--ca-mean: this model has no conditioning augmentation (StackGAN only)")
        generator.use_ca_mean = True
    try:
        graph = GeneratorGraph(generator).eval()
        rng = torch.Generator().manual_seed(seed)
        with atomic_dir(out, kind=ONNX_KIND, overwrite=overwrite) as tmp:
            info: dict[str, Any] = {"format": FORMAT, "t2igan_version": __version__, "opset": opset}
            info["generator"] = _export_generator(graph, tmp / "generator.onnx", opset, rng)
            info["text_encoder"] = _export_text_encoder(pipe, tmp, opset, rng)
            card = pipe.path / "README.md" if pipe.path is not None else None
            if card is not None and card.is_file():
                shutil.copyfile(card, tmp / "README.md")
            atomic_write_json(tmp / "onnx_model.json", info)
    finally:
        if ca_mean and had_ca is not None:
            generator.use_ca_mean = had_ca
    return info


def _export_generator(graph: GeneratorGraph, path: Path, opset: int, rng: torch.Generator) -> dict[str, Any]:
    g = graph.generator
    z_dim, text_dim = int(g.z_dim), int(g.text_dim)

    def inputs(b: int) -> tuple[torch.Tensor, ...]:
        return (
            torch.randn(b, z_dim, generator=rng),
            *([torch.randn(b, text_dim, generator=rng)] if graph.conditional else []),
            *(torch.randn(b, d, generator=rng) for d in graph.eps_dims),
        )

    with torch.no_grad():
        n_out = len(graph(*inputs(2)))
    outputs = ["image"] if n_out == 1 else [f"stage_{k}" for k in range(n_out)]
    names = graph.input_names()
    _export(graph, inputs(2), path, names, outputs, opset)
    check = inputs(3)
    with torch.no_grad():
        want = [t.numpy() for t in graph(*check)]
    got = _run(path, dict(zip(names, check, strict=True)))
    diff = _max_diff(got, want, path)
    return {
        "file": path.name,
        "class": type(g).__name__,
        "inputs": {n: ["batch", int(t.shape[1])] for n, t in zip(names, check, strict=True)},
        "outputs": {n: ["batch", *(int(s) for s in w.shape[1:])] for n, w in zip(outputs, want, strict=True)},
        "z_dim": z_dim,
        "text_dim": text_dim,
        "eps_dims": list(graph.eps_dims),
        "ca_mean": bool(getattr(g, "use_ca_mean", False)),
        "range": [-1.0, 1.0],
        "max_abs_diff_vs_torch": diff,
    }


def _export_text_encoder(pipe: Any, folder: Path, opset: int, rng: torch.Generator) -> dict[str, Any]:
    from t2igan.text.char_cnn_rnn import CharCnnRnn
    from t2igan.text.word_rnn import WordRnn

    enc = pipe.text_encoder
    if not isinstance(enc, (CharCnnRnn, WordRnn)):
        kind = getattr(enc, "name", None) or ("none: the model was trained on precomputed embeddings")
        return {"file": None, "type": kind, "note": "not exported: feed text_emb computed elsewhere"}
    enc = enc.to("cpu").eval()
    words = isinstance(enc, WordRnn)
    graph: nn.Module = (WordTokensGraph(enc) if words else CharTokensGraph(enc)).eval()
    spec = word_tokenizer_spec(enc) if words else tokenizer_spec(enc)
    length = spec["max_words"] if words else spec["max_len"]
    high = enc.vocab_size if words else graph.alphabet_size + 1  # type: ignore[operator]

    def tokens(b: int, n: int) -> torch.Tensor:
        return torch.randint(0, high, (b, n), generator=rng)

    path = folder / "text_encoder.onnx"
    axes = {"tokens": {0: "batch", 1: "words"}} if words else None  # word rows are as long as the longest caption
    _export(graph, (tokens(2, 8 if words else length),), path, ["tokens"], ["embedding"], opset, axes)
    check = tokens(3, 11 if words else length)  # another length than traced, for words
    check[0, check.shape[1] // 2 :] = 0  # a padded caption too
    with torch.no_grad():
        want = enc.forward_tokens(check).numpy()
    diff = _max_diff(_run(path, {"tokens": check}), [want], path)
    atomic_write_json(folder / "text_encoder.json", spec)
    return {
        "file": path.name,
        "type": enc.name,
        "tokenizer": "text_encoder.json",
        "inputs": {"tokens": ["batch", "words" if words else length]},
        "outputs": {"embedding": ["batch", int(enc.dim)]},
        "max_abs_diff_vs_torch": diff,
    }


def _export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    inputs: list[str],
    outputs: list[str],
    opset: int,
    dynamic: dict[str, dict[int, str]] | None = None,
) -> None:
    axes = {n: {0: "batch"} for n in [*inputs, *outputs]} | (dynamic or {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        try:
            torch.onnx.export(
                module,
                args,
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=inputs,
                output_names=outputs,
                dynamic_axes=axes,
                do_constant_folding=True,
            )
        except Exception as e:  # an operator without an ONNX form, a tracer failure: one line, not a traceback
            raise T2IError(
                f"ONNX export of {path.stem} failed ({type(e).__name__}: {str(e).splitlines()[0]})"
            ) from None


def _run(path: Path, feeds: dict[str, torch.Tensor]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {k: v.numpy() for k, v in feeds.items()})


def _max_diff(got: list[np.ndarray], want: list[np.ndarray], path: Path) -> float:
    diff = max(float(np.abs(g - w).max()) for g, w in zip(got, want, strict=True))
    if not diff <= 1e-3:
        raise T2IError(f"onnxruntime differs from PyTorch by {diff:.2e}", path=path, hint="please report this model")
    return diff
