"""Progress bars: every tqdm bar of the library comes from ``progress_bar``, so one switch hides them all.

``progress_bar(..., enabled=False)`` hides one bar (a caller's ``progress=False``); ``set_progress_bars(False)``
hides every bar of the process (``t2igan --quiet`` does this).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

_bars_enabled = True


def set_progress_bars(enabled: bool) -> None:
    """Show (``True``, the default) or hide every progress bar made after this call."""
    global _bars_enabled
    _bars_enabled = enabled


def progress_bars_enabled() -> bool:
    return _bars_enabled


def progress_bar(iterable: Iterable[Any] | None = None, *, enabled: bool = True, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)``, hidden when ``enabled`` is false or bars are switched off."""
    return tqdm(iterable, disable=not (enabled and _bars_enabled), **kwargs)
