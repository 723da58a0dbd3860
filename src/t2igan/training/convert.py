"""Convert the authors' StackGAN / StackGAN-v2 checkpoints into a pretrained folder (`t2igan convert`).

    convert_official("stackgan", "netG_epoch_600.pth", "models/stackgan_birds", netd=["netD_epoch_600.pth"])
    pipe = T2IPipeline.from_pretrained("models/stackgan_birds")
    pipe.generator.use_ca_mean = True            # ĉ = μ: the official generator's output for the same φ_t and z
    out = pipe(text_embeddings=E, latents=Z, output_type="pt", denormalize=False)   # [-1, 1] like the release

Files are read with ``torch.load(weights_only=True)`` (tensors only, no code from the file runs); keys and shapes
are mapped by `t2igan.models.stackgan_official`. The folder is written by the trainers' export
(`export_pretrained`), with the text side recorded as precomputed 1024-d char-CNN-RNN embeddings (the release's
``char-CNN-RNN-embeddings.pickle`` load with `t2igan data`). Converted discriminators go to
``discriminator/model.safetensors``; ``t2igan train --set model.init=FOLDER`` starts from both networks, which is
how the official code resumes (its files hold no optimiser state).
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from t2igan.models.stackgan_official import stackgan_from_official, stackganpp_from_official
from t2igan.training.export import export_pretrained
from t2igan.utils.errors import T2IError
from t2igan.utils.io import atomic_path, atomic_write_json, sha256_file

FAMILIES = {"stackgan": "stackgan", "stackgan-v2": "stackgan++"}  # convert source → model.name
DISCRIMINATOR_DIR = "discriminator"


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A ``state_dict`` saved with ``torch.save``, read with ``weights_only=True`` (a one-line error otherwise)."""
    p = Path(path)
    if not p.is_file():
        raise T2IError("no such file", path=p, hint="pass the release's netG…pth (a state_dict)")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if found is None:
            raise T2IError(f"not a readable PyTorch file ({_last_words(e)})", path=p) from None
        raise T2IError(
            f"refused: the file holds pickled Python objects ({found.group(1)}), not only tensors",
            path=p,
            hint="convert a state_dict (torch.save(net.state_dict(), …)); files are read with weights_only=True",
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise T2IError(f"not a readable PyTorch file ({_last_words(e)})", path=p) from None
    if not isinstance(obj, dict) or not obj:
        raise T2IError(f"holds a {type(obj).__name__}, not a state_dict", path=p)
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise T2IError(f"entry {k!r} is a {type(v).__name__}, not a tensor: not a state_dict", path=p)
    return obj


def _last_words(e: Exception) -> str:
    """The informative line of torch.load's multi-line errors."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and not ln.startswith("Check the documentation")]
    detail = re.sub(r"^WeightsUnpickler error:\s*", "", lines[-1]) if lines else type(e).__name__
    return detail[:160]


def convert_official(source: str, netg: str | Path, out: str | Path, *, netd: list[str | Path] | None = None) -> Path:
    """Write the pretrained folder ``out`` from an official generator file (and discriminator files).

    ``source``: ``stackgan`` (StackGAN-Pytorch ``STAGE1_G``/``STAGE2_G``; one ``netd``: the matching ``STAGE*_D``)
    or ``stackgan-v2`` (``G_NET``; ``netd``: ``netD0.pth``, ``netD1.pth``, … one per branch, coarse → fine).
    ``out`` must not exist yet (or be an empty folder): nothing of the user's is replaced.
    """
    if source not in FAMILIES:
        raise T2IError(f"unknown checkpoint source {source!r}", hint=f"choose from {sorted(FAMILIES)}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise T2IError("already exists", path=out, hint="choose a new --out folder (nothing is overwritten)")
    netd = [Path(p) for p in netd or []]
    g_state = read_state_dict(netg)
    d_states = [read_state_dict(p) for p in netd]
    generator: nn.Module
    discriminator: nn.Module | None
    if source == "stackgan":
        if len(d_states) > 1:
            raise T2IError(f"StackGAN-Pytorch has one discriminator per stage; got {len(d_states)} --netd files")
        generator, discriminator = stackgan_from_official(g_state, d_states[0] if d_states else None)
    else:
        generator, discriminator = stackganpp_from_official(g_state, d_states)
    sources = [{"file": Path(p).name, "sha256": sha256_file(p)} for p in [Path(netg), *netd]]
    text = {"type": "precomputed", "dim": int(generator.text_dim), "meta": {"encoder": "char-CNN-RNN"}}
    if int(generator.text_dim) == 0:
        text = {"type": "unconditional", "dim": 0}
    export_pretrained(
        generator,
        out,
        model_name=FAMILIES[source],
        text_encoder=None,
        embeddings=text,
        extra={"converted_from": {"source": source, "files": sources}, "ema": source == "stackgan-v2"},
    )
    if discriminator is not None:
        save_discriminator(discriminator, out / DISCRIMINATOR_DIR, source=source)
    return out


def save_discriminator(d: nn.Module, folder: Path, *, source: str) -> None:
    """``folder/model.safetensors`` (our key names) + ``config.json`` naming the class, written atomically."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous().clone() for k, v in d.state_dict().items()}
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    atomic_write_json(folder / "config.json", {"_class_name": type(d).__name__, "converted_from": source})


def load_discriminator_state(folder: str | Path) -> dict[str, Any] | None:
    """The discriminator weights of a pretrained folder (``None`` if it has none)."""
    from safetensors.torch import load_file

    path = Path(folder) / DISCRIMINATOR_DIR / "model.safetensors"
    if not path.is_file():
        return None
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors' own error types for truncated/corrupt files
        raise T2IError(f"cannot read discriminator weights ({e})", path=path) from None
