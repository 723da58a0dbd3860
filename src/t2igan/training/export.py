"""The pretrained folder the sampling pipeline loads (diffusers' layout), and the one writer of its index:

    pretrained/
      model_index.json          components, t2igan version, model family, step, variant, EMA or not — no absolute paths
      generator/                the generator: config.json + model.safetensors (``t2igan.utils.pretrained``)
      text_encoder/…            the encoder's own save_pretrained, or precomputed.json (a marker saying the training
                                embeddings were precomputed, with their cache key and metadata)
      style_encoder/            optional: the style encoder S (``t2igan style train``)

``export_pretrained`` writes it at the end of training (atomically, replacing only an earlier export);
``T2IPipeline.save_pretrained`` writes the same layout; both — and ``save_style_encoder`` — write the index through
``write_model_index``. ``load_generator(folder)`` rebuilds any registered generator from ``generator/``.
``text_side_for_export`` decides what goes into ``text_encoder/`` for a model trained on a cache's embeddings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

import t2igan.models  # noqa: F401  (registers every model family's classes for load_pretrained)
from t2igan import __version__
from t2igan.data.cache import PreparedCache
from t2igan.text import load_text_encoder
from t2igan.text.base import TextEncoderLike
from t2igan.text.cache import encoder_that_made
from t2igan.utils.io import atomic_write_json
from t2igan.utils.outputs import atomic_dir, json_says
from t2igan.utils.pretrained import class_name, load_pretrained, save_pretrained

PRETRAINED_KIND = "pretrained"  # the folder's ownership marker (utils.outputs)
is_pretrained_folder = json_says("model_index.json", "_class_name", "T2IPipeline")  # exports older than the marker
INDEX_NAME = "model_index.json"
PRECOMPUTED_MARKER = "precomputed.json"


def load_generator(folder: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a generator from ``folder/generator`` (or ``folder`` itself if it holds ``config.json``); eval mode."""
    folder = Path(folder)
    gdir = folder / "generator" if (folder / "generator").is_dir() else folder
    return load_pretrained(gdir, map_location=map_location)


def model_index(
    generator: nn.Module,
    text_encoder: TextEncoderLike | None = None,
    style_encoder: nn.Module | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The ``model_index.json`` of a pipeline folder: which class each component is, the generator's sizes, and
    ``extra`` (model family, step, variant, embeddings, …)."""

    def entry(obj: Any) -> list[str] | None:
        return (
            None
            if obj is None
            else [type(obj).__module__, class_name(obj) if isinstance(obj, nn.Module) else type(obj).__name__]
        )

    config = getattr(generator, "config", None)
    return {
        "_class_name": "T2IPipeline",
        "_t2igan_version": __version__,
        "generator": entry(generator),
        "text_encoder": entry(text_encoder),
        "style_encoder": entry(style_encoder),
        "z_dim": int(getattr(generator, "z_dim", 0)),
        "text_dim": int(getattr(generator, "text_dim", 0)),
        "image_size": int(getattr(config, "image_size", 0) or 0),
        **extra,
    }


def write_model_index(folder: str | Path, index: dict[str, Any]) -> Path:
    """Write ``folder/model_index.json`` atomically. Paths are stored relative to ``folder``: an absolute path
    inside it becomes relative, one outside it keeps only its last name (the folder must work wherever it is moved)."""
    folder = Path(folder)
    path = folder / INDEX_NAME
    atomic_write_json(path, _portable(index, folder))
    return path


def _portable(obj: Any, root: Path) -> Any:
    if isinstance(obj, dict):
        return {k: _portable(v, root) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_portable(v, root) for v in obj]
    if isinstance(obj, str) and os.path.isabs(obj):
        p = Path(obj)
        return str(p.relative_to(root.resolve())) if p.is_relative_to(root.resolve()) else p.name
    return obj


def save_text_side(folder: Path, text_encoder: TextEncoderLike | None, info: dict[str, Any]) -> None:
    """``folder`` = ``text_encoder/``: the encoder's own ``save_pretrained``, or the precomputed marker ``info``."""
    if isinstance(text_encoder, TextEncoderLike):
        text_encoder.save_pretrained(folder)
    else:
        atomic_write_json(folder / PRECOMPUTED_MARKER, _portable({"precomputed": True, **info}, folder.parent))


def text_side_for_export(
    text_dim: int,
    *,
    cache: PreparedCache | None = None,
    key: str | None = None,
    text_encoder: TextEncoderLike | None = None,
    text_encoder_dir: str | Path | None = None,
) -> tuple[TextEncoderLike | None, dict[str, Any]]:
    """``(encoder, embeddings info)`` for the export of a generator trained on ``cache``'s embeddings ``key``.

    The encoder is, in order: ``text_encoder`` (the object that made the embeddings), the one saved in
    ``text_encoder_dir`` (``data.text_encoder``), or the one the cache's metadata names if it still loads here
    (``text.cache.encoder_that_made``); else ``None`` and the export records the embeddings as precomputed.
    An unconditional generator (``text_dim`` 0) has no text side.
    """
    if text_dim == 0:
        return None, {"type": "unconditional", "dim": 0}
    meta: dict[str, Any] = {}
    if cache is not None and key and cache.has_embeddings(key):
        meta = cache.embedding_meta(key)
    info = {"type": "precomputed", "key": key, "dim": text_dim, "meta": meta}
    if text_encoder is not None:
        return text_encoder, info
    if text_encoder_dir:
        return load_text_encoder(text_encoder_dir), info
    return encoder_that_made(meta), info


def export_pretrained(
    generator: nn.Module,
    folder: str | Path,
    *,
    model_name: str,
    text_encoder: TextEncoderLike | None = None,
    embeddings: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the pretrained folder atomically (replacing an older export).

    ``text_encoder`` (a `TextEncoderLike`) is saved to ``text_encoder/`` with its own ``save_pretrained``;
    otherwise ``text_encoder/precomputed.json`` records ``embeddings`` (cache key, dim, encoder metadata) so the
    pipeline can tell the user which encoder to pair with the generator.
    """
    folder = Path(folder)
    has_encoder = isinstance(text_encoder, TextEncoderLike)
    with atomic_dir(folder, kind=PRETRAINED_KIND, is_own=is_pretrained_folder) as tmp:
        save_pretrained(generator, tmp / "generator")
        save_text_side(tmp / "text_encoder", text_encoder, embeddings or {})
        index = model_index(
            generator,
            text_encoder if has_encoder else None,
            model=model_name,
            embeddings=embeddings or {},
            **(extra or {}),
        )
        write_model_index(tmp, index)
    return folder
