"""Every error message and hint in src/ that names a `t2igan …` command, a config key or an install extra names one
that exists: commands are resolved in the real click tree, keys in the config dataclasses, extras in pyproject.toml.

Collected from the source (AST): every argument of a `T2IError(…)` call, every ``hint=`` argument of any call, and
every line of a string constant that starts with ``t2igan `` (the usage examples of ``--help`` texts).
"""

from __future__ import annotations

import ast
import dataclasses
import re
import sys
from pathlib import Path

import click
import pytest

from t2igan.apps.cli import cli
from t2igan.training.config import TrainConfig

SRC = Path(__file__).resolve().parents[1] / "src" / "t2igan"
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

# A command mention: `t2igan WORD` at the start, after punctuation (": t2igan …", "(t2igan …", "`t2igan …") or after
# a verb that introduces one ("run t2igan …", "e.g. t2igan …"); prose such as "a t2igan model" is not a command.
COMMAND = re.compile(
    r"(?:^|[:(`'\"→]\s*|\b(?:run|with|try|use|e\.g\.|then|see|via|or|and|-m)\s+)"
    r"t2igan ([a-z][a-z0-9_-]*)(?: ([a-z][a-z0-9_-]*))?"
)
KEY = re.compile(r"\b([a-z_]+)\.([a-z_][a-z0-9_]*)(?==)")  # "optim.lr=…", "text.encoder=…"
SECTION_KEY = re.compile(r"\b(data|loss|optim|train|debug)\.([a-z_][a-z0-9_]*)\b")
EXTRA = re.compile(r"t2igan\[([a-z0-9_,-]+)\]")


def _strings(node: ast.AST) -> list[str]:
    """Every string constant inside an expression (f-string parts, concatenations, conditional branches)."""
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def collect_hints() -> list[tuple[str, str]]:
    """(file:line, text) of every message/hint/example line in src/."""
    found: list[tuple[str, str]] = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        rel = path.relative_to(SRC.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                parts = [*node.args, *(k.value for k in node.keywords)] if name == "T2IError" else []
                parts += [k.value for k in node.keywords if k.arg == "hint"]
                for part in parts:
                    found += [(f"{rel}:{node.lineno}", s) for s in _strings(part)]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                for line in node.value.splitlines():
                    if line.strip().startswith("t2igan "):
                        found.append((f"{rel}:{node.lineno}", line.strip()))
    return found


HINTS = collect_hints()


def _commands_named(text: str) -> list[tuple[str, str | None]]:
    return [(m.group(1), m.group(2)) for m in COMMAND.finditer(text)]


def test_the_collection_sees_hints() -> None:
    """Guard against a collector that silently finds nothing."""
    texts = " ".join(t for _, t in HINTS)
    assert len(HINTS) > 100
    assert "t2igan data prepare" in texts and "t2igan encode captions" in texts and "train.device=cpu" in texts


def test_every_named_command_exists() -> None:
    ctx = click.Context(cli)
    bad = []
    for where, text in HINTS:
        for first, second in _commands_named(text):
            cmd = cli.get_command(ctx, first)
            if cmd is None:
                bad.append(f"{where}: `t2igan {first}` in {text!r}")
            elif isinstance(cmd, click.Group) and second is not None and cmd.get_command(ctx, second) is None:
                bad.append(f"{where}: `t2igan {first} {second}` in {text!r}")
    assert not bad, "hints name commands that do not exist:\n" + "\n".join(bad)


def _config_key_exists(section: str, key: str) -> bool:
    node = {f.name: f for f in dataclasses.fields(TrainConfig)}.get(section)
    if node is None:
        return False
    if section == "model":
        return True  # the model section takes each family's architecture options
    cls = getattr(TrainConfig(), section)
    return dataclasses.is_dataclass(cls) and key in {f.name for f in dataclasses.fields(cls)}


def test_every_named_config_key_exists() -> None:
    bad = []
    for where, text in HINTS:
        keys = {m.groups() for m in KEY.finditer(text)} | {m.groups() for m in SECTION_KEY.finditer(text)}
        for section, key in sorted(keys):
            if (section, key) == ("e", "g"):  # "e.g."
                continue
            if not _config_key_exists(section, key):
                bad.append(f"{where}: {section}.{key} in {text!r}")
    assert not bad, "hints name config keys that do not exist:\n" + "\n".join(bad)


def _extras() -> dict[str, list[str]]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]


def test_every_named_extra_exists() -> None:
    extras = set(_extras())
    bad = [
        f"{where}: t2igan[{name}]"
        for where, text in HINTS
        for m in EXTRA.finditer(text)
        for name in m.group(1).split(",")
        if name not in extras
    ]
    assert not bad, "hints name extras that pyproject.toml does not define:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "text",
    ["t2igan text encode", "t2igan prepare SRC", "t2igan data synthetic …", "set text.encoder=minilm"],
)
def test_the_checks_catch_the_old_hints(text: str) -> None:
    """The four hints that once named nothing would fail these checks."""
    ctx = click.Context(cli)
    missing_cmd = any(
        cli.get_command(ctx, a) is None
        or (
            isinstance(cli.get_command(ctx, a), click.Group)
            and b
            and cli.get_command(ctx, a).get_command(ctx, b) is None
        )
        for a, b in _commands_named(text)
    )
    missing_key = any(not _config_key_exists(s, k) for s, k in (m.groups() for m in KEY.finditer(text)))
    assert missing_cmd or missing_key


def test_required_modules_are_in_the_extra_the_hint_names() -> None:
    """Every ``require("mod", …, extra="x")`` in src/ names an extra whose requirements install ``mod`` — and `all`
    holds every such extra, without the development tools."""
    from t2igan.utils.optional import _DIST

    extras = _extras()

    def dists(extra: str) -> set[str]:
        out = set()
        for req in extras[extra]:
            name = re.split(r"[<>=;\[ ]", req, maxsplit=1)[0].lower()
            if name == "t2igan":
                for sub in re.search(r"\[(.*)\]", req).group(1).split(","):  # type: ignore[union-attr]
                    out |= dists(sub.strip())
            else:
                out.add(name)
        return out

    calls = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "require":
                extra = next((k.value.value for k in node.keywords if k.arg == "extra"), None)
                mods = [a.value for a in node.args if isinstance(a, ast.Constant)]
                calls.append((f"{path.name}:{node.lineno}", extra, mods))
    assert len(calls) >= 4
    for where, extra, mods in calls:
        for mod in mods:
            assert _DIST.get(mod, mod).lower() in dists(extra), f"{where}: {mod} is not in t2igan[{extra}]"
        assert _DIST.get(mods[0], mods[0]).lower() in dists("all") if mods else True
    assert not dists("all") & {"pytest", "ruff", "playwright", "pytest-xdist"}  # tools live in [dev]
