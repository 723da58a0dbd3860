"""StackGAN++ (StackGAN-v2): a tree of generators at 64 → 128 → 256 sharing one trunk, one D per scale.

Zhang et al., "StackGAN++: Realistic Image Synthesis with Stacked Generative Adversarial Networks", TPAMI 2018
(arXiv:1710.10916), following the authors' release (`StackGAN-v2/code/model.py`):

- Conditioning Augmentation (StackGAN §3.2): FC(φ_t → 4·Ng) + GLU → (μ, log σ²), ĉ = μ + σ ⊙ ε, with the KL term
  of StackGAN Eq. (2) in the G loss.
- h₀ = F₀(ĉ, z): FC to 4×4×(16·GF_DIM) + BN + GLU, then up-blocks (nearest ×2, conv3×3 → 2C, BN, GLU) to the
  base size (64). Branch i > 0: hᵢ = Fᵢ(hᵢ₋₁, ĉ): concat ĉ replicated spatially, conv3×3 → 2C + BN + GLU,
  R_NUM (2) residual blocks, one up-block (C → C/2). Each branch has its own conv3×3 + tanh to an image sᵢ (§4.1).
- Text-conditioned: ĉ is the CA code. Unconditional mode (``conditional=False``): no text at all, and the later
  branches concatenate z where ĉ would be (as the release).
- Dᵢ (one per scale): `StackGanDiscriminator` with a conditional head on μ (detached) and an unconditional head;
  unconditional mode has the unconditional head only. The joint conditional + unconditional losses (§4.2) and
  the colour-consistency regulariser L_C = λ₁‖μ_sᵢ − μ_sᵢ₋₁‖² + λ₂‖Σ_sᵢ − Σ_sᵢ₋₁‖²_F (§4.3) are in
  `t2igan.losses.stackgan`; the training system also keeps the EMA generator the release samples from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from t2igan.models.stackgan import (
    ConditioningAugmentation,
    ResBlock,
    StackGanDiscriminator,
    UpBlock,
    _log2,
    _preset,
    check_d_norm,
    conv3x3,
    init_weights,
)
from t2igan.utils.errors import T2IError
from t2igan.utils.pretrained import Pretrained, register_pretrained

__all__ = [
    "PRESETS",
    "StackGanPPConfig",
    "StackGanPPDiscriminators",
    "StackGanPPGenerator",
    "StackGanPPOutput",
    "stackganpp_config",
]

TRUNK_START = 4  # h₀ starts as a 4×4 map …
TRUNK_WIDTH = 16  # … of 16·GF_DIM channels (the release's INIT_STAGE_G(GF_DIM · 16))
GLU_GATES = 2  # a GLU layer computes twice the channels it passes on (value and gate halves)


@dataclass
class StackGanPPConfig:
    """Everything that shapes the StackGAN++ tree (the constructor signature is the config)."""

    text_dim: int = 1024
    z_dim: int = 100
    condition_dim: int = 128  # Ng (EMBEDDING_DIM in the release)
    gf_dim: int = 64  # GF_DIM; the trunk starts at 16·GF_DIM channels at 4×4
    df_dim: int = 64  # DF_DIM
    r_num: int = 2  # residual blocks per later branch
    branch_num: int = 3  # 64, 128, 256
    base_size: int = 64  # size of branch 0; branch i is base_size·2^i
    conditional: bool = True  # False: unconditional mode (no text)
    d_norm: str = "batch"  # batch: BatchNorm in every D (release) | spectral: spectral norm, no BN
    fused_upsample: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.base_size < 8 or self.base_size & (self.base_size - 1):
            raise T2IError(f"model.base_size must be a power of two ≥ 8, got {self.base_size}")
        if not 1 <= self.branch_num <= 4:
            raise T2IError(f"model.branch_num must be 1…4, got {self.branch_num}")
        if self.gf_dim < 2:
            raise T2IError(f"model.gf_dim must be ≥ 2, got {self.gf_dim}")
        check_d_norm(self.d_norm)

    @property
    def image_size(self) -> int:
        """The finest branch's size."""
        return self.sizes[-1]

    @property
    def sizes(self) -> list[int]:
        return [self.base_size * 2**i for i in range(self.branch_num)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StackGanPPConfig:
        """From saved JSON; training settings that older exports carried (see `RETIRED_KEYS`) are dropped."""
        d = {k: v for k, v in d.items() if k not in RETIRED_KEYS}
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise T2IError(f"unknown StackGAN++ config keys {unknown}", hint=f"known keys: {sorted(known)}")
        return cls(**d)


# Training settings that older versions kept in the model config, and where they are now.
RETIRED_KEYS = {
    "kl_weight": "loss.kl_weight",
    "uncond_weight": "loss.uncond_weight",
    "color_lambda": "loss.color_lambda",
}

# model.preset → architecture overrides; the dataclass defaults are the release's birds_3stages settings.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},  # GF_DIM = DF_DIM = 64, Ng 128, z 100, R_NUM 2, 64/128/256
    "cpu": {"gf_dim": 16, "df_dim": 16, "condition_dim": 64, "base_size": 64, "branch_num": 2},
    "tiny": {"gf_dim": 4, "df_dim": 8, "r_num": 1, "condition_dim": 8, "z_dim": 16, "base_size": 16,
             "branch_num": 2},
}  # fmt: skip


def stackganpp_config(preset: str | None = "paper", **params: Any) -> StackGanPPConfig:
    """A `StackGanPPConfig` from a named preset plus overrides (unknown keys or presets → `T2IError`)."""
    return StackGanPPConfig.from_dict({**_preset(PRESETS, preset, "StackGAN++"), **params})


@dataclass
class StackGanPPOutput:
    images: list[torch.Tensor]  # s₀ … s_{m−1}, coarse → fine
    mu: torch.Tensor | None
    logvar: torch.Tensor | None


class _NextStage(nn.Module):
    """Fᵢ for i > 0: joint conv on concat(h, code), R_NUM residual blocks, up-block C → C/2 (all GLU)."""

    def __init__(self, channels: int, code_dim: int, r_num: int, fused: bool) -> None:
        super().__init__()
        self.joint = nn.Sequential(conv3x3(channels + code_dim, channels * 2), nn.BatchNorm2d(channels * 2), nn.GLU(1))
        self.residual = nn.Sequential(*[ResBlock(channels, glu=True) for _ in range(r_num)])
        self.upsample = UpBlock(channels, channels // 2, glu=True, fused=fused)

    def forward(self, h: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        c = code.to(h.dtype)[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        return self.upsample(self.residual(self.joint(torch.cat([c, h], dim=1))))


@register_pretrained(StackGanPPConfig)
class StackGanPPGenerator(Pretrained, nn.Module):
    """The StackGAN++ tree generator. ``forward(z, text_emb) -> [s₀, s₁, …]`` (coarse → fine).

    ``text_emb`` is ignored (may be None) in unconditional mode. ``use_ca_mean = True`` turns CA sampling off.
    """

    def __init__(self, config: StackGanPPConfig) -> None:
        super().__init__()
        self.config = config
        self.text_dim = config.text_dim if config.conditional else 0
        self.z_dim = config.z_dim
        ngf = config.gf_dim * TRUNK_WIDTH
        self.ngf = ngf
        self.ca = (
            ConditioningAugmentation(config.text_dim, config.condition_dim, glu=True) if config.conditional else None
        )
        code_dim = config.condition_dim if config.conditional else config.z_dim
        fc_out = ngf * TRUNK_START * TRUNK_START * GLU_GATES  # GLU halves it to a ngf × 4 × 4 map
        self.fc = nn.Sequential(
            nn.Linear(config.z_dim + (code_dim if config.conditional else 0), fc_out, bias=False),
            nn.BatchNorm1d(fc_out),
            nn.GLU(1),
        )
        ups, ch = [], ngf
        for _ in range(_log2(config.base_size // TRUNK_START)):
            ups.append(UpBlock(ch, max(ch // 2, 1), glu=True, fused=config.fused_upsample))
            ch = max(ch // 2, 1)
        self.trunk = nn.Sequential(*ups)
        stages, to_images = [], [nn.Sequential(conv3x3(ch, 3), nn.Tanh())]
        for _ in range(1, config.branch_num):
            if ch < 2:
                raise T2IError("model.gf_dim too small for this many branches", hint="raise model.gf_dim")
            stages.append(_NextStage(ch, code_dim, config.r_num, config.fused_upsample))
            ch //= 2
            to_images.append(nn.Sequential(conv3x3(ch, 3), nn.Tanh()))
        self.stages = nn.ModuleList(stages)
        self.to_images = nn.ModuleList(to_images)
        init_weights(self)

    @property
    def use_ca_mean(self) -> bool:
        return self.ca is not None and not self.ca.sample

    @use_ca_mean.setter
    def use_ca_mean(self, value: bool) -> None:
        if self.ca is not None:
            self.ca.sample = not value

    @property
    def image_sizes(self) -> list[int]:
        return self.config.sizes

    @property
    def ca_noise_dims(self) -> list[int]:
        """Sizes of the ε each call draws: [Ng] while CA samples, [] with ``use_ca_mean`` or unconditional."""
        return [self.ca.condition_dim] if self.ca is not None and self.ca.sample else []

    def generate(
        self,
        z: torch.Tensor,
        text_emb: torch.Tensor | None = None,
        eps: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> StackGanPPOutput:
        """All branches' images and the CA statistics (None in unconditional mode).

        ε comes from ``eps`` ``[B, Ng]``, else from ``generator``, else from the global RNG (as the release does).
        """
        if z.shape[1] != self.z_dim:
            raise ValueError(f"StackGAN++ generator wants z [B,{self.z_dim}], got {tuple(z.shape)}")
        if self.ca is not None:
            if text_emb is None or text_emb.shape[1] != self.config.text_dim:
                got = None if text_emb is None else tuple(text_emb.shape)
                raise ValueError(f"StackGAN++ generator wants text [B,{self.config.text_dim}], got {got}")
            code, mu, logvar = self.ca(text_emb, eps, generator)
            h = self.fc(torch.cat([z, code.to(z.dtype)], dim=1))
        else:
            code, mu, logvar = z, None, None
            h = self.fc(z)
        h = self.trunk(h.view(-1, self.ngf, TRUNK_START, TRUNK_START))
        images = [self.to_images[0](h)]
        for stage, to_image in zip(self.stages, self.to_images[1:], strict=True):
            h = stage(h, code)
            images.append(to_image(h))
        return StackGanPPOutput(images, mu, logvar)

    def forward(
        self,
        z: torch.Tensor,
        text_emb: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        eps: list[torch.Tensor] | None = None,
    ) -> list[torch.Tensor]:
        """Images coarse → fine; ``eps``: the CA noise as a one-element list (see `ca_noise_dims`)."""
        return self.generate(z, text_emb, eps[0] if eps else None, generator).images


class StackGanPPDiscriminators(nn.ModuleList):
    """One `StackGanDiscriminator` per branch scale (conditional + unconditional heads, or unconditional only)."""

    def __init__(self, config: StackGanPPConfig) -> None:
        cond = config.condition_dim if config.conditional else 0
        super().__init__(
            [
                StackGanDiscriminator(s, config.df_dim, cond, uncond_head=True, d_norm=config.d_norm)
                for s in config.sizes
            ]
        )
