"""Reading weight files with one-line errors: safetensors (what t2igan writes) and ``torch.load(weights_only=True)``.

A truncated file, a pickle renamed to ``.safetensors`` or a zip archive from ``torch.save`` becomes a `T2IError` that
names the file and says what it actually is, instead of a safetensors/pickle traceback.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import torch

from t2igan.utils.errors import T2IError


def sniff_kind(path: Path) -> str:
    """A short description of what a weights file looks like from its first bytes (for error messages)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return "unreadable"
    if not head:
        return "empty"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle"
    if head[:4] == b"PK\x03\x04":
        return "a zip archive (torch.save)"
    if head[:4] == b"\x89HDF":
        return "an HDF5 file"
    return "not a safetensors file"


def _check_file(path: Path, what: str, hint: str | None) -> None:
    if not path.exists():
        raise T2IError(f"{what} not found", path=path, hint=hint)
    if not path.is_file():
        raise T2IError(f"{what} is not a regular file", path=path, hint=hint)


def read_safetensors(
    path: str | Path, *, what: str = "weights", hint: str | None = None, device: str = "cpu"
) -> dict[str, torch.Tensor]:
    """``safetensors.torch.load_file`` with every failure (truncated, not safetensors, unreadable) as a `T2IError`."""
    from safetensors.torch import load_file

    path = Path(path)
    _check_file(path, what, hint)
    try:
        return load_file(str(path), device=device)
    except Exception as e:  # SafetensorError, OSError, …: the library's own types vary by version
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        kind = sniff_kind(path)
        reason = f"it is {kind}" if kind != "not a safetensors file" else f"truncated or damaged: {first}"
        raise T2IError(
            f"cannot read {what} ({reason})", path=path, hint=hint or "re-export or re-download it"
        ) from None


def read_torch_state(path: str | Path, *, what: str = "weights", hint: str | None = None) -> Any:
    """``torch.load(weights_only=True)`` (tensors and plain containers only) with failures as a `T2IError`."""
    import pickle
    import warnings

    path = Path(path)
    _check_file(path, what, hint)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols; the error below says enough
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # weights_only refuses code: say so, without the long torch text
        skip = ("Weights only load failed", "Please file an issue", "Check the documentation")
        paragraphs = [" ".join(p.split()) for p in str(e).split("\n\n")]
        reason = next((p for p in paragraphs if p and not p.startswith(skip)), "")
        if sniff_kind(path) == "a Python pickle":
            problem = "it is a plain Python pickle, not a PyTorch state dict"
        else:
            problem = f"it holds more than tensors ({reason[:100] or 'refused'})"
        raise T2IError(
            f"refusing to load {what}: {problem}",
            path=path,
            hint=hint or "use a plain state dict (.pth) or a .safetensors file",
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise T2IError(
            f"cannot read {what} (truncated or not a PyTorch file: {first})",
            path=path,
            hint=hint or "re-download it",
        ) from None


__all__ = ["read_safetensors", "read_torch_state", "sniff_kind"]
