"""The authors' StackGAN checkpoints as t2igan models: key names, shapes and concatenation orders.

Both releases save plain ``state_dict()`` s:

- StackGAN-Pytorch: ``STAGE1_G`` (groups ``ca_net``, ``fc``, ``upsample1…4``, ``img``) or ``STAGE2_G`` (its whole
  Stage-I under ``STAGE1_G.``, then ``ca_net``, ``encoder``, ``hr_joint``, ``residual``, ``upsample1…4``, ``img``);
  ``STAGE1_D`` / ``STAGE2_D`` (``encode_img``, ``get_cond_logits``, Stage-II also ``get_uncond_logits``).
- StackGAN-v2: ``G_NET`` (``ca_net``, ``h_net1`` + ``img_net1``, and per further branch ``h_netK`` + ``img_netK``)
  and one ``D_NET64/128/256`` per branch (``img_code_s16``, ``img_code_s32…``, ``jointConv``, ``logits``,
  ``uncond_logits``), usually saved through ``nn.DataParallel`` (every key prefixed ``module.``: accepted).

Every width is read from the shapes (GF_DIM, DF_DIM, Ng, z, text size, R_NUM, number of branches), so a file of any
official configuration converts to the `StackGanConfig` / `StackGanPPConfig` that builds the same network. Each key
of the file must map onto one tensor of ours with the same shape: a missing, extra or mis-shaped key is a one-line
`T2IError` naming it. BatchNorm ``num_batches_tracked`` counters (absent from files written by PyTorch < 0.4.1, and
unused in evaluation) may be missing.

Concatenation orders. The functions are the same, but where a concatenation is ordered differently the weight's
input slices are swapped on conversion (exact, no arithmetic):

=========================  ================================  ==============================
place                      official                          t2igan
=========================  ================================  ==============================
Stage-I G input            (z, ĉ₀)                           (z, ĉ₀)
Stage-II G joint conv      (encoded image, ĉ)                (ĉ, encoded image) — swapped
StackGAN-v1 D joint conv   (image features, μ)               (image features, μ)
StackGAN-v2 first stage    (ĉ, z)                            (z, ĉ) — swapped
StackGAN-v2 next stages    (ĉ, h)                            (ĉ, h)
StackGAN-v2 D joint conv   (μ, image features)               (image features, μ) — swapped
=========================  ================================  ==============================
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from t2igan.models.stackgan import StackGanConfig, StackGanDiscriminator, StackGanGenerator, stackgan_discriminator
from t2igan.models.stackganpp import StackGanPPConfig, StackGanPPDiscriminators, StackGanPPGenerator
from t2igan.utils.errors import T2IError

__all__ = [
    "Rename",
    "convert_state",
    "stackgan_from_official",
    "stackganpp_from_official",
    "strip_data_parallel",
]

BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


@dataclass(frozen=True)
class Rename:
    """One tensor: the official key, ours, and optionally the input split to swap (``[a | b] → [b | a]`` along
    dimension 1 at index ``swap_at``: the official concatenation order differs from ours there)."""

    official: str
    ours: str
    swap_at: int | None = None


def _bn(official: str, ours: str) -> list[Rename]:
    return [Rename(f"{official}.{k}", f"{ours}.{k}") for k in BN_KEYS]


def _w(official: str, ours: str, *, bias: bool = False, swap_at: int | None = None) -> list[Rename]:
    out = [Rename(f"{official}.weight", f"{ours}.weight", swap_at)]
    return [*out, Rename(f"{official}.bias", f"{ours}.bias")] if bias else out


def _up(official: str, ours: str) -> list[Rename]:
    """Up-block: official ``Sequential(Upsample, conv3x3, BN, act)`` → ours ``UpBlock(UpsampleConv3x3, BN, act)``."""
    return [Rename(f"{official}.1.weight", f"{ours}.0.weight"), *_bn(f"{official}.2", f"{ours}.1")]


def _res(official: str, ours: str) -> list[Rename]:
    """Residual block: official ``block = Sequential(conv, BN, act, conv, BN)`` → ours ``body`` (same indices)."""
    return [
        Rename(f"{official}.block.0.weight", f"{ours}.body.0.weight"),
        *_bn(f"{official}.block.1", f"{ours}.body.1"),
        Rename(f"{official}.block.3.weight", f"{ours}.body.3.weight"),
        *_bn(f"{official}.block.4", f"{ours}.body.4"),
    ]


# ------------------------------------------------------------------------------------------------------ reading
def strip_data_parallel(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop ``nn.DataParallel``'s ``module.`` prefix when every key carries it."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def _shape(state: dict[str, torch.Tensor], key: str, what: str, dims: int) -> tuple[int, ...]:
    if key not in state:
        raise T2IError(f"missing key {key!r}: not a {what} state dict")
    shape = tuple(state[key].shape)
    if len(shape) != dims:
        raise T2IError(f"key {key!r} has shape {shape}: a {what} has a {dims}-d tensor there")
    return shape


def _count(state: Iterable[str], pattern: str) -> int:
    """How many consecutive groups ``pattern.format(i)`` (i = 1, 2, …) have keys."""
    keys = list(state)
    n = 0
    while any(k.startswith(pattern.format(n + 1) + ".") for k in keys):
        n += 1
    return n


def _divide(total: int, by: int, key: str, shape: tuple[int, ...]) -> int:
    if total <= 0 or total % by:
        raise T2IError(f"key {key!r} has shape {shape}, which no official configuration makes")
    return total // by


# ------------------------------------------------------------------------------------------- StackGAN-Pytorch
def stackgan_g_config(state: dict[str, torch.Tensor]) -> StackGanConfig:
    """The `StackGanConfig` of a ``STAGE1_G`` / ``STAGE2_G`` state dict (stage told by the ``STAGE1_G.`` keys)."""
    what = "StackGAN-Pytorch STAGE1_G/STAGE2_G"
    if "h_net1.fc.0.weight" in state:
        raise T2IError("this is a StackGAN-v2 G_NET state dict", hint="use: t2igan convert stackgan-v2 …")
    stage = 2 if any(k.startswith("STAGE1_G.") for k in state) else 1
    s1 = "STAGE1_G." if stage == 2 else ""
    ca = _shape(state, f"{s1}ca_net.fc.weight", what, 2)
    fc = _shape(state, f"{s1}fc.0.weight", what, 2)
    cond = _divide(ca[0], 2, f"{s1}ca_net.fc.weight", ca)
    gf = _divide(fc[0], 8 * 16, f"{s1}fc.0.weight", fc)
    stage1_size = 4 * 2 ** _count(state, s1 + "upsample{}")
    params = {"stage": stage, "text_dim": ca[1], "condition_dim": cond, "gf_dim": gf, "stage1_size": stage1_size}
    params["z_dim"] = _divide(fc[1] - cond, 1, f"{s1}fc.0.weight", fc)
    if stage == 2:
        enc = _shape(state, "encoder.0.weight", what, 4)
        if enc[0] != gf:
            raise T2IError(f"key 'encoder.0.weight' has shape {enc}: Stage-II GF_DIM {enc[0]} ≠ Stage-I's {gf}")
        params["r_num"] = _groups(state, "residual.{}.block.0.weight")
        params["stage2_size"] = stage1_size // 4 * 2 ** _count(state, "upsample{}")
    try:
        return StackGanConfig(**params)
    except T2IError as e:
        raise T2IError(f"the {what} state dict makes no valid StackGAN ({e})") from None


def stackgan_g_renames(g: StackGanGenerator) -> list[Rename]:
    """Official → ours for the StackGAN generator ``g`` (Stage-I alone, or Stage-I under ``STAGE1_G.`` + Stage-II)."""

    def stage1(prefix: str) -> list[Rename]:
        out = [*_w(f"{prefix}ca_net.fc", "stage1.ca.fc", bias=True), *_w(f"{prefix}fc.0", "stage1.fc.0")]
        out += _bn(f"{prefix}fc.1", "stage1.fc.1")
        for i in range(len(g.stage1.upsample)):
            out += _up(f"{prefix}upsample{i + 1}", f"stage1.upsample.{i}")
        return out + _w(f"{prefix}img.0", "stage1.to_image.0")

    if g.stage2 is None:
        return stage1("")
    out = stage1("STAGE1_G.") + _w("ca_net.fc", "stage2.ca.fc", bias=True)
    out += [*_w("encoder.0", "stage2.encoder.0"), *_w("encoder.2", "stage2.encoder.2")]
    out += [*_bn("encoder.3", "stage2.encoder.3"), *_w("encoder.5", "stage2.encoder.5")]
    out += _bn("encoder.6", "stage2.encoder.6")
    out += _w("hr_joint.0", "stage2.joint.0", swap_at=4 * g.config.gf_dim)  # (encoded, ĉ) → (ĉ, encoded)
    out += _bn("hr_joint.1", "stage2.joint.1")
    for r in range(len(g.stage2.residual)):
        out += _res(f"residual.{r}", f"stage2.residual.{r}")
    for i in range(len(g.stage2.upsample)):
        out += _up(f"upsample{i + 1}", f"stage2.upsample.{i}")
    return out + _w("img.0", "stage2.to_image.0")


def stackgan_d_renames(d: StackGanDiscriminator) -> list[Rename]:
    """Official ``STAGE1_D`` / ``STAGE2_D`` → ours: ``encode_img`` has our ``encode`` indices; the heads are
    ``get_cond_logits.outlogits`` (conv3×3, BN, LeakyReLU, conv4×4) and ``get_uncond_logits.outlogits`` (conv4×4)."""
    out: list[Rename] = []
    for i, m in enumerate(d.encode):
        if isinstance(m, nn.Conv2d):
            out += _w(f"encode_img.{i}", f"encode.{i}")
        elif isinstance(m, nn.BatchNorm2d):
            out += _bn(f"encode_img.{i}", f"encode.{i}")
    out += [*_w("get_cond_logits.outlogits.0", "cond_head.0"), *_bn("get_cond_logits.outlogits.1", "cond_head.1")]
    out += _w("get_cond_logits.outlogits.3", "cond_head.3", bias=True)
    if d.uncond_head is not None:
        out += _w("get_uncond_logits.outlogits.0", "uncond_head", bias=True)
    return out


def stackgan_df_dim(state: dict[str, torch.Tensor]) -> int:
    """DF_DIM of a ``STAGE1_D`` / ``STAGE2_D`` state dict."""
    return _shape(state, "encode_img.0.weight", "StackGAN-Pytorch STAGE1_D/STAGE2_D", 4)[0]


# ------------------------------------------------------------------------------------------------ StackGAN-v2
def stackganpp_g_config(state: dict[str, torch.Tensor]) -> StackGanPPConfig:
    """The `StackGanPPConfig` of a ``G_NET`` state dict (``module.`` already stripped); no ``ca_net`` keys means
    the unconditional mode (B_CONDITION False)."""
    what = "StackGAN-v2 G_NET"
    if "fc.0.weight" in state or any(k.startswith("STAGE1_G.") for k in state):
        raise T2IError("this is a StackGAN-Pytorch STAGE1_G/STAGE2_G state dict", hint="use: t2igan convert stackgan …")
    fc = _shape(state, "h_net1.fc.0.weight", what, 2)
    params = {"gf_dim": _divide(fc[0], 16 * 4 * 4 * 2, "h_net1.fc.0.weight", fc), "conditional": False}
    if "ca_net.fc.weight" in state:
        ca = _shape(state, "ca_net.fc.weight", what, 2)
        cond = _divide(ca[0], 4, "ca_net.fc.weight", ca)
        params.update(conditional=True, text_dim=ca[1], condition_dim=cond)
        params["z_dim"] = _divide(fc[1] - cond, 1, "h_net1.fc.0.weight", fc)
    else:
        params["z_dim"] = fc[1]
    branches = max(_count(state, "h_net{}"), _count(state, "img_net{}"), 1)
    if branches > 3:
        raise T2IError(f"the {what} has {branches} branches; 1–3 convert (the release leaves h_net4 untested)")
    params["branch_num"] = branches
    params["base_size"] = 4 * 2 ** _count(state, "h_net1.upsample{}")
    if branches > 1:
        params["r_num"] = _groups(state, "h_net2.residual.{}.block.0.weight")
    try:
        return StackGanPPConfig(**params)
    except T2IError as e:
        raise T2IError(f"the {what} state dict makes no valid StackGAN++ ({e})") from None


def stackganpp_g_renames(g: StackGanPPGenerator) -> list[Rename]:
    """Official ``G_NET`` → ours (``ca``, ``fc``, ``trunk``, ``stages``, ``to_images``)."""
    cfg = g.config
    out: list[Rename] = []
    if cfg.conditional:
        out += _w("ca_net.fc", "ca.fc", bias=True)
    out += _w("h_net1.fc.0", "fc.0", swap_at=cfg.condition_dim if cfg.conditional else None)  # (ĉ, z) → (z, ĉ)
    out += _bn("h_net1.fc.1", "fc.1")
    for i in range(len(g.trunk)):
        out += _up(f"h_net1.upsample{i + 1}", f"trunk.{i}")
    out += _w("img_net1.img.0", "to_images.0.0")
    for k, stage in enumerate(g.stages):
        h = f"h_net{k + 2}"
        out += [*_w(f"{h}.jointConv.0", f"stages.{k}.joint.0"), *_bn(f"{h}.jointConv.1", f"stages.{k}.joint.1")]
        for r in range(len(stage.residual)):
            out += _res(f"{h}.residual.{r}", f"stages.{k}.residual.{r}")
        out += _up(f"{h}.upsample", f"stages.{k}.upsample")
        out += _w(f"img_net{k + 2}.img.0", f"to_images.{k + 1}.0")
    return out


def stackganpp_d_renames(d: StackGanDiscriminator) -> list[Rename]:
    """Official ``D_NET64/128/256`` → ours: ``img_code_s16`` (our ``encode`` 0–10), then the further down-blocks
    ``img_code_s32``, ``img_code_s64`` … and the conv3×3 blocks ``img_code_s<last>_1, _2 …`` (ours 11, 14, …);
    ``jointConv`` + ``logits`` form our conditional head, ``uncond_logits`` our unconditional one (in the
    unconditional mode ``logits`` is the unconditional head)."""
    out: list[Rename] = []
    for i in (0, 2, 5, 8):
        out += _w(f"img_code_s16.{i}", f"encode.{i}")
    for i in (3, 6, 9):
        out += _bn(f"img_code_s16.{i}", f"encode.{i}")
    n_down = round(math.log2(d.image_size // 4))  # strided convs; the first four are img_code_s16
    names = [f"img_code_s{16 * 2**j}" for j in range(1, n_down - 3)]
    n_3x3 = (len(d.encode) - 11) // 3 - len(names)
    names += [f"{names[-1]}_{j + 1}" for j in range(n_3x3)]
    for j, name in enumerate(names):
        out += [*_w(f"{name}.0", f"encode.{11 + 3 * j}"), *_bn(f"{name}.1", f"encode.{12 + 3 * j}")]
    if d.cond_head is not None:
        out += _w("jointConv.0", "cond_head.0", swap_at=d.condition_dim)  # (μ, features) → (features, μ)
        out += [*_bn("jointConv.1", "cond_head.1"), *_w("logits.0", "cond_head.3", bias=True)]
        out += _w("uncond_logits.0", "uncond_head", bias=True)
    else:
        out += _w("logits.0", "uncond_head", bias=True)
    return out


def stackganpp_df_dim(state: dict[str, torch.Tensor]) -> int:
    """DF_DIM of a ``D_NET64/128/256`` state dict."""
    return _shape(state, "img_code_s16.0.weight", "StackGAN-v2 D_NET", 4)[0]


# --------------------------------------------------------------------------------------------------- applying
def convert_state(
    state: dict[str, torch.Tensor], renames: list[Rename], target: dict[str, torch.Tensor], what: str
) -> dict[str, torch.Tensor]:
    """Map an official state dict onto ``target`` (our module's ``state_dict()``) by ``renames``.

    Every official key must be renamed (else: extra key), every renamed key present (else: missing key, except
    BatchNorm counters, set to 0) and of our shape (else: mis-shaped key) — each a one-line `T2IError` naming it.
    """
    by_official = {r.official: r for r in renames}
    extra = sorted(set(state) - set(by_official))
    if extra:
        raise T2IError(f"unexpected key {extra[0]!r} in the {what} ({len(extra)} unexpected in all)")
    out: dict[str, torch.Tensor] = {}
    for r in renames:
        want = target[r.ours]
        if r.official not in state:
            if r.official.endswith(".num_batches_tracked"):
                out[r.ours] = torch.zeros_like(want)
                continue
            raise T2IError(f"missing key {r.official!r} in the {what}")
        t = state[r.official]
        if not isinstance(t, torch.Tensor):
            raise T2IError(f"key {r.official!r} of the {what} is a {type(t).__name__}, not a tensor")
        if tuple(t.shape) != tuple(want.shape):
            raise T2IError(
                f"key {r.official!r} of the {what} has shape {tuple(t.shape)}, expected {tuple(want.shape)}",
                hint="its layers disagree with each other (a file of another model?)",
            )
        if r.swap_at is not None:
            t = torch.cat([t[:, r.swap_at :], t[:, : r.swap_at]], dim=1)
        out[r.ours] = t.detach().to(dtype=want.dtype).clone()
    uncovered = sorted(set(target) - set(out))
    if uncovered:  # a rename table that misses part of our module is a bug, not bad input
        raise RuntimeError(f"internal: no official key maps to {uncovered[:3]}")
    return out


def _groups(state: dict[str, torch.Tensor], pattern: str) -> int:
    """How many consecutive indices i = 0, 1, … have the key ``pattern.format(i)``."""
    n = 0
    while pattern.format(n) in state:
        n += 1
    return n


# ----------------------------------------------------------------------------------------------- whole models
def stackgan_from_official(
    g_state: dict[str, torch.Tensor], d_state: dict[str, torch.Tensor] | None = None
) -> tuple[StackGanGenerator, StackGanDiscriminator | None]:
    """Our StackGAN generator (and discriminator) from the release's ``STAGE{1,2}_G`` (and ``STAGE{1,2}_D``)."""
    g_state = strip_data_parallel(g_state)
    cfg = stackgan_g_config(g_state)
    if d_state is not None:
        d_state = strip_data_parallel(d_state)
        cfg = dataclasses.replace(cfg, df_dim=stackgan_df_dim(d_state))
    g = StackGanGenerator(cfg)
    what = f"StackGAN-Pytorch STAGE{cfg.stage}_G"
    g.load_state_dict(convert_state(g_state, stackgan_g_renames(g), g.state_dict(), what))
    d = None
    if d_state is not None:
        d = stackgan_discriminator(cfg)
        what = f"StackGAN-Pytorch STAGE{cfg.stage}_D"
        d.load_state_dict(convert_state(d_state, stackgan_d_renames(d), d.state_dict(), what))
    return g.eval(), d


def stackganpp_from_official(
    g_state: dict[str, torch.Tensor], d_states: list[dict[str, torch.Tensor]] | None = None
) -> tuple[StackGanPPGenerator, StackGanPPDiscriminators | None]:
    """Our StackGAN++ generator (and discriminators) from the release's ``G_NET`` (and ``netD0…`` files, coarse →
    fine: ``D_NET64``, ``D_NET128``, ``D_NET256``)."""
    g_state = strip_data_parallel(g_state)
    cfg = stackganpp_g_config(g_state)
    d_states = [strip_data_parallel(s) for s in d_states or []]
    if d_states:
        if len(d_states) != cfg.branch_num:
            raise T2IError(f"the G_NET has {cfg.branch_num} branches but {len(d_states)} discriminators were given")
        cfg = dataclasses.replace(cfg, df_dim=stackganpp_df_dim(d_states[0]))
    g = StackGanPPGenerator(cfg)
    g.load_state_dict(convert_state(g_state, stackganpp_g_renames(g), g.state_dict(), "StackGAN-v2 G_NET"))
    if not d_states:
        return g.eval(), None
    ds = StackGanPPDiscriminators(cfg)
    for i, (d, s) in enumerate(zip(ds, d_states, strict=True)):
        what = f"StackGAN-v2 D_NET{d.image_size} (netD{i})"
        d.load_state_dict(convert_state(s, stackganpp_d_renames(d), d.state_dict(), what))
    return g.eval(), ds
