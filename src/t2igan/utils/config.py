"""The one typed config loader: nested dicts (from YAML, JSON, ``--set`` overrides or keyword options) → dataclasses.

Every trainer's config goes through ``build_config``: the GAN ``TrainConfig`` (``training/config.py``), the DS-SJE
``SjeTrainConfig`` (``text/sje_trainer.py``), the style encoder's ``StyleTrainConfig`` and StackGAN's
``OptimSettings``. Each value is converted to its field's annotated type (int, float, bool, str, lists, tuples,
optionals, nested dataclasses); a value of the wrong type or an unknown key is a one-line ``T2IError`` naming the key
(and listing the valid ones). A field declared with ``metadata={EXTRA_KEYS: True}`` collects the keys of its section
that are not fields (``TrainConfig.model.params``: architecture options checked later by the model family).

``config_diff`` compares two configs key by key (what ``--resume`` checks).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, TypeVar

from t2igan.utils.errors import T2IError

EXTRA_KEYS = "t2igan_extra_keys"
C = TypeVar("C")


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert a YAML value to the annotated field type (int/float/bool/str/list/optional)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        errors = []
        for a in args:
            try:
                return coerce(value, a, where)
            except T2IError as e:
                errors.append(e)
        raise errors[0]
    if origin is list:
        if not isinstance(value, (list, tuple)):
            value = [value]
        (inner,) = typing.get_args(tp) or (Any,)
        return [coerce(v, inner, where) for v in value]
    if origin is tuple:  # tuple[int, ...] (any length) or tuple[int, int] (fixed)
        if not isinstance(value, (list, tuple)):
            value = [value]
        args = typing.get_args(tp) or (Any, ...)
        inner = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        if len(inner) != len(value):
            raise T2IError(f"{where} must have {len(inner)} values, got {value!r}")
        return tuple(coerce(v, t, where) for v, t in zip(value, inner, strict=True))
    if origin is dict or tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise T2IError(f"{where} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise T2IError(f"{where} must be an integer, got {value!r}")
        if int(value) != value:
            raise T2IError(f"{where} must be an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool):
            raise T2IError(f"{where} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise T2IError(f"{where} must be a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise T2IError(f"{where} must be a string, got {value!r}")
        return str(value)
    return value


def build_config(cls: type[C], raw: dict[str, Any], where: str = "") -> C:
    """``cls(**raw)`` with every value coerced to its field's type; ``where`` prefixes key names in messages."""
    if not isinstance(raw, dict):
        raise T2IError(f"config section {where!r} must be a mapping" if where else "a config must be a mapping")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    extra = [f.name for f in fields.values() if f.metadata.get(EXTRA_KEYS)]
    if extra:  # unknown keys go into the catch-all field
        raw = dict(raw)
        bag = dict(raw.pop(extra[0], {}) or {})
        for k in [k for k in raw if k not in fields]:
            bag[k] = raw.pop(k)
        raw[extra[0]] = bag
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        name = f"{where}.{unknown[0]}" if where else unknown[0]
        raise T2IError(
            f"unknown config key {name!r}",
            hint=f"valid keys{' in ' + where if where else ''}: {', '.join(sorted(fields))}",
        )
    kwargs: dict[str, Any] = {}
    for name, value in raw.items():
        tp = hints[name]
        key = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise T2IError(f"config section {key!r} must be a mapping")
            kwargs[name] = build_config(tp, value, key)  # type: ignore[arg-type]
        else:
            kwargs[name] = coerce(value, tp, key)
    return cls(**kwargs)


def config_diff(old: dict[str, Any], new: dict[str, Any], ignore: tuple[str, ...] = ()) -> list[tuple[str, Any, Any]]:
    """``(dotted key, old value, new value)`` for every leaf that differs, except keys matched by ``ignore`` (exact,
    or a section ``"name.*"``). Tuples and lists compare equal."""
    a, b = _flatten(old), _flatten(new)
    out = []
    for key in sorted(set(a) | set(b)):
        if any(key == p or (p.endswith(".*") and key.startswith(p[:-1])) for p in ignore):
            continue
        if _plain(a.get(key)) != _plain(b.get(key)):
            out.append((key, a.get(key), b.get(key)))
    return out


def _plain(v: Any) -> Any:
    return [_plain(x) for x in v] if isinstance(v, (list, tuple)) else v


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
