"""HTML pages from Jinja2 templates shipped as package data: ``render("t2igan.apps", "rank.html", **context)``.

Each layer keeps its templates beside its code (``<package>/templates/``); values are HTML-escaped unless marked
safe, and a name missing from ``context`` is an error rather than an empty string.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def _environment(package: str) -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render(package: str, name: str, **context: Any) -> str:
    """The template ``<package>/templates/<name>`` rendered with ``context``."""
    return _environment(package).get_template(name).render(**context)
