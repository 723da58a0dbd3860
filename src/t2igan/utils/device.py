"""``--device`` for every command: a name check and an availability check with one-line errors, before any work.

Names: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` (Apple-silicon GPUs) and ``auto`` (CUDA if present, else MPS, else
CPU).
"""

from __future__ import annotations

import torch

from t2igan.utils.errors import T2IError

DEVICE_HELP = "cpu, cuda, cuda:N, mps or auto"


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(spec: str, option: str = "--device") -> str:
    """The device string to use for ``spec`` (``auto`` resolved), or a `T2IError` naming ``option``."""
    spec = spec.strip().lower()
    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    kind, _, index = spec.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and (kind != "cuda" or not index.isdigit())):
        raise T2IError(f"{option} {spec!r} is not a device", hint=f"use {DEVICE_HELP}")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise T2IError(f"{option} {spec}: PyTorch sees no GPU", hint="use --device cpu")
        if index and int(index) >= torch.cuda.device_count():
            raise T2IError(
                f"{option} {spec}: this machine has {torch.cuda.device_count()} GPU(s)",
                hint=f"use cuda:0 … cuda:{torch.cuda.device_count() - 1}",
            )
    if kind == "mps" and not mps_available():
        raise T2IError(
            f"{option} mps: PyTorch has no MPS (Apple-silicon GPU) device on this machine", hint="use --device cpu"
        )
    return spec


__all__ = ["DEVICE_HELP", "mps_available", "resolve_device"]
