"""The one way t2igan saves and loads a network: ``config.json`` + ``model.safetensors`` (the diffusers shape).

    folder/model.safetensors   the state dict (safetensors: no pickle, nothing executable)
    folder/config.json         {"_class_name": "ReedGenerator", "_t2igan_version": "0.1.0", <constructor config>}

Every component uses it: the generators and discriminators, the style encoder, the text encoders, the DS-SJE image
encoder and the attribute evaluator. The weights are written first and ``config.json`` last, each atomically, so a
folder with a ``config.json`` is complete. A folder names its class; the class is looked up in the registry here
(filled by ``@register_pretrained`` where each class is defined) — never imported from a name in the file.

A missing, truncated or non-safetensors file, invalid JSON, an unknown class or weights that do not fit the config
are each a one-line ``T2IError`` naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from t2igan import __version__
from t2igan.utils.errors import T2IError
from t2igan.utils.io import atomic_write_json, write_safetensors

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

M = TypeVar("M", bound=nn.Module)
# class name → (class, config dataclass). Filled by @register_pretrained when the defining module is imported.
_REGISTRY: dict[str, tuple[type[nn.Module], type]] = {}


def register_pretrained(config_cls: type, name: str | None = None) -> Callable[[type[M]], type[M]]:
    """Class decorator: folders naming ``name`` (default: the class name) build ``cls(config_cls(**config))``."""

    def deco(cls: type[M]) -> type[M]:
        _REGISTRY[name or cls.__name__] = (cls, config_cls)
        return cls

    return deco


def resolve_class(name: str, path: Path | None = None) -> tuple[type[nn.Module], type]:
    """The (class, config dataclass) registered under ``name``."""
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise T2IError(f"unknown class {name!r}", path=path, hint=f"this t2igan ({__version__}) knows: {known}")
    return _REGISTRY[name]


def class_name(module: nn.Module) -> str:
    """The registry name of a module (its class name unless registered under another)."""
    for name, (cls, _) in _REGISTRY.items():
        if cls is type(module):
            return name
    return type(module).__name__


# -- config dataclass ↔ JSON --------------------------------------------------------------------------------------
def config_to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as JSON-ready data (tuples become lists)."""
    if not (dataclasses.is_dataclass(config) and not isinstance(config, type)):
        raise TypeError(f"a config must be a dataclass instance, got {type(config).__name__}")
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_from_dict(config_cls: type, data: dict[str, Any], path: Path | None = None) -> Any:
    """Rebuild a config dataclass: unknown keys are an error; lists become tuples where the field is a tuple."""
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise T2IError(
            f"unknown {config_cls.__name__} keys {unknown}",
            path=path,
            hint="the folder was written by a newer or different t2igan version",
        )
    hints = typing.get_type_hints(config_cls)
    kwargs = {k: tuple(v) if isinstance(v, list) and "tuple" in str(hints.get(k, "")) else v for k, v in data.items()}
    try:
        return config_cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise T2IError(f"bad {config_cls.__name__} ({e})", path=path) from None


# -- files ---------------------------------------------------------------------------------------------------------
def write_pretrained(
    folder: str | Path, name: str, config: dict[str, Any], tensors: dict[str, torch.Tensor] | None
) -> Path:
    """``folder/model.safetensors`` (if ``tensors``) then ``folder/config.json`` = ``{_class_name, _t2igan_version,
    **config}``, each atomically. No absolute path is stored (a folder must mean the same wherever it is moved): a
    config value that is one (e.g. StackGAN's ``stage1`` run, a training-time provenance) is kept as its last name."""
    folder = Path(folder)
    config = {k: Path(v).name if isinstance(v, str) and os.path.isabs(v) else v for k, v in config.items()}
    folder.mkdir(parents=True, exist_ok=True)
    if tensors:
        write_safetensors(folder / WEIGHTS_NAME, tensors)
    atomic_write_json(folder / CONFIG_NAME, {"_class_name": name, "_t2igan_version": __version__, **config})
    return folder


def read_config(folder: str | Path, hint: str | None = None) -> dict[str, Any]:
    """``folder/config.json`` as a dict (with its ``_class_name``); missing/invalid → one-line ``T2IError``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise T2IError("no such folder", path=folder, hint=hint)
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise T2IError("is not a saved t2igan model (config.json missing)", path=folder, hint=hint)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise T2IError(f"not valid JSON ({e})", path=path, hint=hint) from None
    if not isinstance(doc, dict):
        raise T2IError("config.json must hold a JSON object", path=path, hint=hint)
    return doc


def read_weights(
    folder: str | Path, map_location: str | torch.device = "cpu", hint: str | None = None, what: str = "weights"
) -> dict[str, torch.Tensor]:
    """``folder/model.safetensors`` → state dict; missing, truncated or not safetensors → one-line ``T2IError``
    (``utils.weights.read_safetensors`` says what the file is instead)."""
    from t2igan.utils.weights import read_safetensors

    state = read_safetensors(Path(folder) / WEIGHTS_NAME, what=what, hint=hint, device=str(map_location))
    return {k: v.clone() for k, v in state.items()}  # fresh copies, not views into the mapped file


def load_weights(module: nn.Module, state: dict[str, torch.Tensor], path: Path, hint: str | None = None) -> None:
    """``module.load_state_dict(state, strict=True)`` with a one-line error when they do not fit."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or shapes:
        if missing:
            what = f"missing {missing[:3]}"
        elif unexpected:
            what = f"unexpected {unexpected[:3]}"
        else:
            k = shapes[0]
            what = f"{k} has shape {tuple(state[k].shape)}, the config gives {tuple(own[k].shape)}"
        raise T2IError(f"weights do not fit config.json ({what})", path=path, hint=hint)
    module.load_state_dict(state, strict=True)


# -- modules with a config dataclass -------------------------------------------------------------------------------
def save_pretrained(module: nn.Module, folder: str | Path) -> Path:
    """Write ``module`` (which has a dataclass ``.config``) to ``folder``."""
    return write_pretrained(folder, class_name(module), config_to_dict(module.config), module.state_dict())


def load_pretrained(folder: str | Path, expected: type[M] | None = None, map_location: str | torch.device = "cpu") -> M:
    """Rebuild the registered class ``folder/config.json`` names, load its weights strictly; eval mode.

    ``expected``: the folder must hold this class or a subclass (else a one-line error)."""
    folder = Path(folder)
    doc = read_config(folder)
    name = doc.get("_class_name")
    if not isinstance(name, str):
        raise T2IError("config.json does not name its class (_class_name)", path=folder / CONFIG_NAME)
    cls, config_cls = resolve_class(name, folder / CONFIG_NAME)
    if expected is not None and not issubclass(cls, expected):
        raise T2IError(f"holds a {name}, not a {expected.__name__}", path=folder)
    config = config_from_dict(config_cls, {k: v for k, v in doc.items() if not k.startswith("_")}, folder / CONFIG_NAME)
    try:
        model = cls(config)
    except (ValueError, TypeError) as e:  # a config the class rejects (its own one-line T2IErrors pass through)
        raise T2IError(f"config.json does not describe a valid {name} ({e})", path=folder / CONFIG_NAME) from None
    what = f"{getattr(cls, 'weights_label', 'model')} weights"
    load_weights(model, read_weights(folder, map_location, what=what), folder / WEIGHTS_NAME)
    return model.to(map_location).eval()  # type: ignore[return-value]


class Pretrained:
    """Mixin for ``nn.Module`` classes with a dataclass ``.config`` (registered with ``@register_pretrained``):
    ``save_pretrained(folder)`` and ``Class.from_pretrained(folder)``. ``weights_label`` names the component in
    errors ("cannot read style encoder weights …")."""

    weights_label: str = "model"

    def save_pretrained(self, folder: str | Path) -> Path:
        return save_pretrained(self, folder)  # type: ignore[arg-type]

    @classmethod
    def from_pretrained(cls, folder: str | Path, map_location: str | torch.device = "cpu") -> Any:
        return load_pretrained(folder, expected=cls, map_location=map_location)  # type: ignore[type-var]
