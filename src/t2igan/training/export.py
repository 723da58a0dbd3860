"""The pretrained folder the sampling pipeline loads (diffusers' layout):

    pretrained/
      model_index.json          component classes, t2igan version, model family, step, variant, EMA or not
      generator/config.json     the generator's config dataclass + "_class_name" and "_module"
      generator/model.safetensors
      text_encoder/…            the encoder's own save_pretrained, or precomputed.json (a marker saying the training
                                embeddings were precomputed, with their cache key and metadata)

``load_generator(folder)`` rebuilds any generator of t2igan from ``generator/`` (only classes under
``t2igan.models.`` are allowed; weights via safetensors).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import typing
from pathlib import Path
from typing import Any

import torch
from torch import nn

from t2igan import __version__
from t2igan.utils.errors import T2IError
from t2igan.utils.io import atomic_path, atomic_write_json
from t2igan.utils.outputs import atomic_dir, json_says

PRETRAINED_KIND = "pretrained"  # the folder's ownership marker (utils.outputs)
is_pretrained_folder = json_says("model_index.json", "_class_name", "T2IPipeline")  # exports older than the marker


def save_generator(generator: nn.Module, folder: str | Path) -> Path:
    """``config.json`` (dataclass ``generator.config`` + class path) and ``model.safetensors``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = getattr(generator, "config", None)
    if config is None or not dataclasses.is_dataclass(config):
        raise TypeError(f"{type(generator).__name__} needs a dataclass .config to be exported")
    cls = type(generator)
    doc = {
        "_class_name": cls.__name__,
        "_module": cls.__module__,
        "_t2igan_version": __version__,
        **dataclasses.asdict(config),
    }
    atomic_write_json(folder / "config.json", doc)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in generator.state_dict().items()}
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    return folder


def _generator_class(doc: dict[str, Any], path: Path) -> type[nn.Module]:
    module, name = doc.get("_module", ""), doc.get("_class_name", "")
    if not module.startswith("t2igan.models.") or not name.isidentifier():
        raise T2IError(f"generator class {module}:{name} is not a t2igan model", path=path)
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise T2IError(
            f"generator class {module}:{name} does not exist in this t2igan ({__version__})",
            path=path,
            hint=f"exported by t2igan {doc.get('_t2igan_version', '?')}",
        ) from None


def load_generator(folder: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a generator from ``folder/generator`` (or ``folder`` itself if it holds ``config.json``); eval mode.

    The class gets its config from ``cls.from_config(dict)`` if it has one, otherwise from the dataclass type of its
    constructor's ``config`` argument.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    gdir = folder / "generator" if (folder / "generator").is_dir() else folder
    cfg_path, weights = gdir / "config.json", gdir / "model.safetensors"
    for p in (cfg_path, weights):
        if not p.is_file():
            raise T2IError(
                "not a pretrained t2igan folder (file missing)",
                path=p,
                hint="point to run_dir/pretrained written by `t2igan train`",
            )
    try:
        doc = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise T2IError(f"not valid JSON ({e.msg})", path=cfg_path) from None
    cls = _generator_class(doc, cfg_path)
    values = {k: v for k, v in doc.items() if not k.startswith("_")}
    if hasattr(cls, "from_config"):
        model = cls.from_config(values)
    else:
        config_type = typing.get_type_hints(cls.__init__)["config"]
        known = {f.name for f in dataclasses.fields(config_type)}
        model = cls(config_type(**{k: v for k, v in values.items() if k in known}))
    try:
        state = load_file(str(weights), device=str(map_location))
    except Exception as e:  # safetensors' own error types for truncated/corrupt files
        raise T2IError(f"cannot read weights ({e})", path=weights) from None
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise T2IError(f"weights do not match config.json ({str(e).splitlines()[0]})", path=weights) from None
    return model.to(map_location).eval()


def export_pretrained(
    generator: nn.Module,
    folder: str | Path,
    *,
    model_name: str,
    text_encoder: Any = None,
    embeddings: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the pretrained folder atomically (replacing an older export).

    ``text_encoder``: an object with ``save_pretrained(dir)`` (and ``name``/``dim``), saved to ``text_encoder/``;
    otherwise ``text_encoder/precomputed.json`` records ``embeddings`` (cache key, dim, encoder metadata) so the
    pipeline can tell the user which encoder to pair with the generator.
    """
    folder = Path(folder)
    with atomic_dir(folder, kind=PRETRAINED_KIND, is_own=is_pretrained_folder) as tmp:
        save_generator(generator, tmp / "generator")
        index: dict[str, Any] = {
            "_class_name": "T2IPipeline",
            "t2igan_version": __version__,
            "model": model_name,
            "generator": [type(generator).__module__, type(generator).__name__],
            "z_dim": int(getattr(generator, "z_dim", 0)),
            "text_dim": int(getattr(generator, "text_dim", 0)),
            "image_size": int(getattr(generator.config, "image_size", 0)),
        }
        if text_encoder is not None and hasattr(text_encoder, "save_pretrained"):
            text_encoder.save_pretrained(tmp / "text_encoder")
            index["text_encoder"] = [type(text_encoder).__module__, type(text_encoder).__name__]
        else:
            atomic_write_json(tmp / "text_encoder" / "precomputed.json", {"precomputed": True, **(embeddings or {})})
            index["text_encoder"] = None
        index["embeddings"] = embeddings or {}
        index.update(extra or {})
        atomic_write_json(tmp / "model_index.json", index)
    return folder
