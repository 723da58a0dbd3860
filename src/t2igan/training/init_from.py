"""``model.init``: start a run from a pretrained folder's weights (a converted official checkpoint, or an export).

    t2igan convert stackgan netG_epoch_600.pth --netd netD_epoch_600.pth --out models/sg1_birds
    t2igan train --config stackgan_stage1_cub --data CACHE --set model.init=models/sg1_birds

The generator (and the EMA copy, if the run keeps one) takes the folder's generator weights; the discriminator takes
``discriminator/model.safetensors`` when the folder has one (``t2igan convert --netd``), else it starts fresh. The
optimisers start fresh, as the official code's own resume does (its files hold no optimiser state). ``--resume``
of a run started this way continues from the run's checkpoints as usual.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from torch import nn

from t2igan.training.convert import load_discriminator_state
from t2igan.utils.errors import T2IError

_NOT_ARCHITECTURE = {"extra", "stage1", "fused_upsample", "kl_weight", "uncond_weight", "color_lambda"}


def init_from_pretrained(
    folder: str | Path, generator: nn.Module, discriminator: nn.Module | None, *, copies: tuple[nn.Module, ...] = ()
) -> bool:
    """Load the folder's generator into ``generator`` (and ``copies``), its discriminator (if any) into
    ``discriminator``; returns whether a discriminator was loaded. A mismatch is a one-line `T2IError`."""
    from t2igan.training.export import load_generator

    folder = Path(folder)
    if (folder / "pretrained" / "model_index.json").is_file():
        folder = folder / "pretrained"  # a run folder: its export
    src = load_generator(folder)
    if type(src) is not type(generator):
        raise T2IError(
            f"model.init holds a {type(src).__name__}, this run trains a {type(generator).__name__}", path=folder
        )
    problem = _first_mismatch(src.state_dict(), generator.state_dict())
    if problem:
        a, b = getattr(src, "config", None), getattr(generator, "config", None)
        diff = _config_diff(a, b) if a is not None and b is not None else ""
        raise T2IError(
            f"model.init does not fit this model config ({problem}{'; ' + diff if diff else ''})",
            path=folder,
            hint="train with the architecture it was made with (e.g. the paper preset, or --set model.KEY=VALUE)",
        )
    state = src.state_dict()
    for m in (generator, *copies):
        m.load_state_dict(state)
    d_state = load_discriminator_state(folder)
    if d_state is None or discriminator is None:
        return False
    problem = _first_mismatch(d_state, discriminator.state_dict())
    if problem:
        raise T2IError(
            f"model.init's discriminator does not fit this model config ({problem})",
            path=folder / "discriminator",
            hint="set model.df_dim (and the other widths) to those it was made with",
        )
    discriminator.load_state_dict(d_state)
    return True


def _first_mismatch(theirs: dict, mine: dict) -> str:
    for k in sorted(set(theirs) | set(mine)):
        if k not in mine:
            return f"unexpected weight {k!r}"
        if k not in theirs:
            return f"missing weight {k!r}"
        if tuple(theirs[k].shape) != tuple(mine[k].shape):
            return f"{k!r} is {tuple(theirs[k].shape)} there, {tuple(mine[k].shape)} here"
    return ""


def _config_diff(theirs: object, mine: object) -> str:
    if not (dataclasses.is_dataclass(theirs) and dataclasses.is_dataclass(mine)):
        return ""
    diffs = [
        f"{f.name} {getattr(theirs, f.name)} there, {getattr(mine, f.name, None)} here"
        for f in dataclasses.fields(theirs)
        if f.name not in _NOT_ARCHITECTURE and getattr(theirs, f.name) != getattr(mine, f.name, None)
    ]
    return "model." + ", model.".join(diffs) if diffs else ""
