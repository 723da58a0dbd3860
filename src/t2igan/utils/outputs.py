"""Folders t2igan writes whole (caches, datasets, exports, evaluators, checkpoints, demo and run folders), and the rule
for them: never delete or replace anything t2igan did not create.

Every folder t2igan builds carries a small marker ``.t2igan-<kind>.json`` (``{"kind": …, "t2igan_version": …}``).
Before a folder is replaced, :func:`check_replaceable` looks at what is there:

- nothing, or an empty folder → fine;
- a folder with this kind's marker (or one an older t2igan wrote, recognised by ``is_own``) → ours, replaced;
- anything else (a file, a device, someone's data, another kind of t2igan output) → a one-line ``T2IError``, unless
  the caller passes ``overwrite=True`` (the CLI's ``--overwrite``, where a command has one).

:func:`atomic_dir` builds the new folder under a hidden temporary name next to the target (``.<name>.<random>.tmp``,
holding ``.t2igan-partial.json`` with the host and process id) and renames it into place, so a crash leaves the old
folder or the new one, never half of one. A process killed while building leaves its temporary folder behind; the
next write to the same target removes it — only after proving it is such a leftover (the name pattern, the partial
marker, and a process id that is no longer alive on this host).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from t2igan import __version__
from t2igan.utils.errors import T2IError
from t2igan.utils.io import atomic_write_json, fsync_dir, raise_if_disk_problem, umask

MARKER_PREFIX = ".t2igan-"
PARTIAL = ".t2igan-partial.json"

OwnTest = Callable[[Path], bool]


def marker_name(kind: str) -> str:
    return f"{MARKER_PREFIX}{kind}.json"


def read_marker(folder: str | Path, kind: str) -> dict[str, Any] | None:
    """The marker of ``kind`` in ``folder`` (a dict), or None if there is none or it is unreadable."""
    try:
        doc = json.loads((Path(folder) / marker_name(kind)).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) and doc.get("kind") == kind else None


def write_marker(folder: str | Path, kind: str, **extra: Any) -> Path:
    """Mark ``folder`` as t2igan's output of ``kind`` (atomically); ``extra`` fields are stored with it."""
    path = Path(folder) / marker_name(kind)
    atomic_write_json(path, {"kind": kind, "t2igan_version": __version__, **extra})
    return path


def markers_in(folder: Path) -> list[str]:
    """The kinds of t2igan output ``folder`` is marked as."""
    try:
        names = [p.name for p in folder.iterdir()]
    except OSError:
        return []
    return sorted(
        n[len(MARKER_PREFIX) : -len(".json")]
        for n in names
        if n.startswith(MARKER_PREFIX) and n.endswith(".json") and n != PARTIAL
    )


def is_owned(folder: Path, kind: str, is_own: OwnTest | None = None) -> bool:
    """True if ``folder`` is t2igan's output of ``kind`` (its marker, or ``is_own`` for older outputs)."""
    if read_marker(folder, kind) is not None:
        return True
    if is_own is None:
        return False
    try:
        return bool(is_own(folder))
    except Exception:  # a damaged file is not proof of ownership
        return False


def json_says(filename: str, key: str, value: Any) -> OwnTest:
    """An ``is_own`` test for outputs of older t2igan versions (no marker): ``filename`` in the folder is a JSON object
    whose (dotted) ``key`` equals ``value``."""

    def test(folder: Path) -> bool:
        node: Any = json.loads((folder / filename).read_text(encoding="utf-8"))
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return bool(node == value)

    return test


def check_replaceable(
    path: str | Path, kind: str, *, overwrite: bool | None = None, is_own: OwnTest | None = None
) -> None:
    """Raise a one-line ``T2IError`` unless writing the folder ``path`` (of ``kind``) can only replace t2igan's own
    output of that kind (or nothing).

    ``overwrite``: ``None`` when the command offers no way to replace foreign content, ``False`` when it has an
    ``--overwrite`` flag that was not given (the hint names it), ``True`` to replace a foreign non-empty folder.
    A path that exists and is not a folder is never replaced.
    """
    path = Path(path)
    if not os.path.lexists(path):
        return
    if not path.is_dir():
        raise T2IError(
            "exists and is not a folder; t2igan does not replace it",
            path=path,
            hint="choose another output folder, or remove it yourself",
        )
    try:
        empty = not any(path.iterdir())
    except OSError as e:
        raise T2IError(f"cannot read the folder ({e.strerror})", path=path) from None
    if empty or is_owned(path, kind, is_own) or overwrite:
        return
    others = [k for k in markers_in(path) if k != kind]
    what = f"holds t2igan's {others[0]} output, not a {kind}" if others else f"is not empty and is not a t2igan {kind}"
    hint = "choose a new or empty folder" + (", or pass --overwrite to replace it" if overwrite is False else "")
    raise T2IError(f"{what}; refusing to replace it", path=path, hint=hint)


def claim_folder(path: str | Path, kind: str, *, is_own: OwnTest | None = None, **extra: Any) -> Path:
    """For a folder t2igan fills in place (a demo folder): check it is new, empty or already ours, create it and mark
    it. Raises ``T2IError`` for anything else (never replaced)."""
    path = Path(path)
    check_replaceable(path, kind, is_own=is_own)
    path.mkdir(parents=True, exist_ok=True)
    if read_marker(path, kind) is None:
        write_marker(path, kind, **extra)
    return path


@contextlib.contextmanager
def atomic_dir(
    path: str | Path, *, kind: str, overwrite: bool | None = None, is_own: OwnTest | None = None
) -> Iterator[Path]:
    """Yield a temporary folder next to ``path`` (already holding the ``kind`` marker); on success it replaces
    ``path``. ``path`` must pass :func:`check_replaceable` first (a symbolic link is followed to its target)."""
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    check_replaceable(path, kind, overwrite=overwrite, is_own=is_own)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_partials(path, kind)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        (tmp / PARTIAL).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
        write_marker(tmp, kind)
        yield tmp
        (tmp / PARTIAL).unlink()
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes 0700
        if os.path.lexists(path):
            trash = _trash(path)
            if trash.exists():
                shutil.rmtree(trash)
            os.replace(path, trash)
            os.replace(tmp, path)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as e:
        raise_if_disk_problem(e, path)
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def clean_stale_partials(path: str | Path, kind: str) -> list[Path]:
    """Remove what killed writers of ``path`` left: temporary folders ``.<name>.*.tmp`` whose partial marker names a
    process of this host that is gone, and a ``.<name>.old`` holding the ``kind`` marker (put back if ``path`` is
    missing: a writer was killed between its two renames). Returns the folders removed."""
    path = Path(path)
    removed: list[Path] = []
    host = socket.gethostname()
    with contextlib.suppress(OSError):
        for cand in path.parent.glob(f".{_glob_escape(path.name)}.*.tmp"):
            try:
                info = json.loads((cand / PARTIAL).read_text())
            except (OSError, ValueError):
                continue  # not provably ours: leave it
            if isinstance(info, dict) and info.get("host") == host and not _alive(info.get("pid")):
                shutil.rmtree(cand, ignore_errors=True)
                removed.append(cand)
    trash = _trash(path)
    if trash.is_dir() and not trash.is_symlink() and read_marker(trash, kind) is not None:
        if os.path.lexists(path):
            shutil.rmtree(trash, ignore_errors=True)
            removed.append(trash)
        else:
            os.replace(trash, path)
    return removed


def _trash(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return True  # cannot tell: assume it is running
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    return True
