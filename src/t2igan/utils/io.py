"""Atomic file writes and content fingerprints.

Every file t2igan writes that another run reads (caches, checkpoints, metrics) is written to a temporary file in the
same folder, flushed, fsynced and renamed over the target, so a crash leaves either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from t2igan.utils.errors import T2IError


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path`` atomically.

    Only a regular file is ever replaced: a ``path`` that is a folder, a device, a FIFO or a socket is a one-line
    ``T2IError`` before anything is written. A symbolic link is followed: its target is written (as ``open`` would).
    """
    path = writable_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~umask())  # mkstemp makes 0600; give the mode a plain open() would
        os.replace(tmp_path, path)
        fsync_dir(path.parent)
    except OSError as e:
        raise_if_disk_problem(e, path)
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


# Write failures that say nothing about the program: the disk or file system refused the data.
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO}


def raise_if_disk_problem(e: OSError, path: Path) -> None:
    """Turn a full disk, an exceeded quota, a read-only file system or an I/O error while writing ``path`` into a
    one-line ``T2IError`` (what was there before is unchanged: writes go to a temporary name first)."""
    if e.errno in _DISK_ERRNOS:
        raise T2IError(
            f"could not write ({e.strerror or os.strerror(e.errno)}); the previous version, if any, is unchanged",
            path=path,
            hint="free some space (or fix the disk) and run again",
        ) from None


def writable_file(path: str | Path) -> Path:
    """``path`` (a symbolic link resolved to its target) if writing it can only create or replace a regular file;
    otherwise a one-line ``T2IError`` naming what is there."""
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return path
    except OSError as e:  # a symlink loop, a permission problem
        raise T2IError(f"cannot write here ({e.strerror})", path=path) from None
    if stat.S_ISREG(mode):
        return path
    kind = (
        "a folder"
        if stat.S_ISDIR(mode)
        else "a FIFO"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a device"
    )
    raise T2IError(
        f"is {kind}, not a regular file; t2igan only replaces regular files",
        path=path,
        hint="write to a file path instead",
    )


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_safetensors(path: str | Path, tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> Path:
    """Save tensors as a safetensors file, atomically. A full disk is a one-line ``T2IError`` (safetensors reports it
    as its own error type; it is mapped back to the ``OSError`` it was)."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            save_file(state, str(tmp), metadata=metadata)
        except SafetensorError as e:
            code = re.search(r"os error (\d+)", str(e))
            if code is None:
                raise
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1)))) from None
    return path


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def umask() -> int:
    """The process's file-mode creation mask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (after a rename into it); best effort."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_json(path: str | Path, *, hint: str | None = None) -> Any:
    """Read a JSON file; a missing or unreadable one is a one-line ``T2IError`` naming the file."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise T2IError("file is missing", path=path, hint=hint) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise T2IError(f"not readable JSON ({e})", path=path, hint=hint) from None


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fingerprint(parts: Iterable[Any]) -> str:
    """A short stable hash of JSON-serialisable parts (options, file stats, versions)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def fingerprint_tree(root: str | Path, files: Iterable[str | Path]) -> str:
    """Fingerprint files by relative path, size and mtime (cheap; content changes update mtime)."""
    root = Path(root)
    parts = []
    for f in sorted(str(x) for x in files):
        st = (root / f).stat()
        parts.append((f, st.st_size, st.st_mtime_ns))
    return fingerprint(parts)
