"""Which generator classes a pretrained folder may name, and how to rebuild them from their JSON config.

A pretrained folder's ``model_index.json`` names its generator by class name (``"ReedGenerator"``). The name is
looked up here — never imported blindly from the file — so a folder can only build classes the library knows.
A model family registers its generator with one line in ``GENERATORS`` (module, generator class, config class);
plug-ins outside the package call :func:`register_generator`.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from typing import Any

from torch import nn

from t2igan.utils.errors import T2IError

# class name → (module, generator class, config dataclass). Imported lazily: one family's module never breaks another.
GENERATORS: dict[str, tuple[str, str, str]] = {
    "ReedGenerator": ("t2igan.models.reed", "ReedGenerator", "ReedConfig"),
    "StackGanGenerator": ("t2igan.models.stackgan", "StackGanGenerator", "StackGanConfig"),
    "StackGanPPGenerator": ("t2igan.models.stackganpp", "StackGanPPGenerator", "StackGanPPConfig"),
}

# Classes registered at run time (tests, plug-ins): name → (generator class, config class).
_RUNTIME: dict[str, tuple[type[nn.Module], type]] = {}


def register_generator(gen_cls: type[nn.Module], config_cls: type, name: str | None = None) -> None:
    """Allow ``gen_cls`` (built as ``gen_cls(config_cls(**json))``) in pretrained folders."""
    _RUNTIME[name or gen_cls.__name__] = (gen_cls, config_cls)


def resolve_generator(name: str) -> tuple[type[nn.Module], type]:
    """The (generator class, config class) registered under ``name``."""
    if name in _RUNTIME:
        return _RUNTIME[name]
    if name not in GENERATORS:
        known = ", ".join(sorted({*GENERATORS, *_RUNTIME}))
        raise T2IError(f"unknown generator class {name!r}", hint=f"known: {known}")
    module, gen, cfg = GENERATORS[name]
    try:
        mod = importlib.import_module(module)
        return getattr(mod, gen), getattr(mod, cfg)
    except (ImportError, AttributeError) as e:
        raise T2IError(f"generator class {name!r} is not available in this install ({e})") from None


def generator_name(generator: nn.Module) -> str:
    """The registry name of a generator instance (its class name; checked to be resolvable)."""
    name = type(generator).__name__
    for key, (gen_cls, _) in _RUNTIME.items():
        if gen_cls is type(generator):
            return key
    return name


def config_to_dict(config: Any) -> dict[str, Any]:
    """A generator's config dataclass as JSON-ready data."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    if hasattr(config, "to_dict"):
        return dict(config.to_dict())
    raise TypeError(f"generator config must be a dataclass, got {type(config).__name__}")


def config_from_dict(config_cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from JSON: unknown keys are an error, lists become tuples where the field is one."""
    if hasattr(config_cls, "from_dict"):
        return config_cls.from_dict(data)
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise T2IError(
            f"config has unknown keys {unknown} for {config_cls.__name__}",
            hint="the folder was written by a newer or different t2igan version",
        )
    hints = typing.get_type_hints(config_cls)
    kwargs = {}
    for key, value in data.items():
        hint = str(hints.get(key, ""))
        kwargs[key] = tuple(value) if isinstance(value, list) and "tuple" in hint else value
    return config_cls(**kwargs)
