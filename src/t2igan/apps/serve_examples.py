"""The example captions the web demo offers: the model's own training captions, so the suggestions match what it
learned (flowers for a flower model, birds for a bird model).

Where they come from, first found wins:

1. ``PRETRAINED/examples.json`` — a JSON list of captions, for choosing them by hand;
2. the run the folder was exported from (``RUN/pretrained`` → ``RUN/config.yaml`` → ``data.cache``): the first
   caption of a few training images spread over the prepared cache (the cache is only read, never prepared);
3. generic captions (`GENERIC`), when neither is there (a folder copied on its own).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

GENERIC = [
    "this flower has pink petals and a yellow center",
    "a small bird with a red head and black wings",
    "this flower has many white petals and a green center",
    "a bird with a yellow belly and a short pointed beak",
]


def example_captions(pretrained: str | Path | None, k: int = 6, max_chars: int = 300) -> list[str]:
    """Up to ``k`` example captions for the model in ``pretrained`` (see module docstring); never raises."""
    if pretrained is None:
        return GENERIC[:k]
    folder = Path(pretrained)
    for found in (_from_file(folder / "examples.json"), _from_training_data(folder, k)):
        clean = _clean(found, max_chars)
        if clean:
            return clean[:k]
    return GENERIC[:k]


def _clean(captions: list[str], max_chars: int) -> list[str]:
    out: list[str] = []
    for c in captions:
        text = " ".join(str(c).split())
        if text and len(text) <= max_chars and text not in out:
            out.append(text)
    return out


def _from_file(path: Path) -> list[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [c for c in data if isinstance(c, str)] if isinstance(data, list) else []


def _cache_path(run: Path) -> Path | None:
    try:
        cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")) or {}
        cache = (cfg.get("data") or {}).get("cache")
    except (OSError, ValueError, yaml.YAMLError, AttributeError):
        return None
    if not isinstance(cache, str) or not cache:
        return None
    p = Path(cache)
    # As written (relative to here), then relative to where `t2igan train --out runs/NAME` most likely ran.
    for candidate in (p, run / p, run.parent / p, run.parent.parent / p):
        if candidate.is_dir():
            return candidate
    return None


def _from_training_data(folder: Path, k: int) -> list[str]:
    from t2igan.data.cache import PreparedCache
    from t2igan.utils.errors import T2IError

    run = folder.parent if folder.name == "pretrained" else folder
    cache_dir = _cache_path(run)
    if cache_dir is None:
        return []
    try:
        cache = PreparedCache.open(cache_dir)
        train = cache.train_indices()
        if len(train) == 0:
            train = np.arange(cache.n)
        picks = train[np.linspace(0, len(train) - 1, num=min(k * 2, len(train))).round().astype(int)]
        return [cache.captions[int(i)][0] for i in picks if cache.captions[int(i)]]
    except (T2IError, OSError, ValueError, KeyError, IndexError, TypeError):
        return []


__all__ = ["GENERIC", "example_captions"]
