"""The one exception type users see.

A `T2IError` message is a single line that says which file (or option) is wrong, what is wrong with it and what to do.
The CLI prints it as ``error: <message>`` and exits with status 2 — never a bare traceback.
"""

from __future__ import annotations

from pathlib import Path


class T2IError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    def __init__(self, message: str, *, path: str | Path | None = None, hint: str | None = None) -> None:
        parts = [f"{path}: {message}" if path is not None else message]
        if hint:
            parts.append(hint)
        super().__init__(" — ".join(parts))
        self.path = None if path is None else Path(path)
        self.hint = hint
