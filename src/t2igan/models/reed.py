"""GAN-INT-CLS: the generator and discriminator of Reed et al., "Generative Adversarial Text to Image Synthesis"
(ICML 2016), as in the authors' released Lua Torch code (``icml2016/main_cls.lua``).

Generator (paper §3.1, Fig. 2):   φ(t) → Linear → LeakyReLU(0.2) → 128-d; concat with z ~ N(0, I) (100-d);
    ConvT 4×4 to ngf·8 @4×4 + BN [+ residual block] + ReLU → ngf·4 @8×8 + BN [+ residual] + ReLU → ngf·2 @16 →
    ngf @32 → 3 @64 → tanh.
Discriminator:   conv 4×4/2 stride to ndf @32 (LeakyReLU, no BN) → ndf·2 @16 → ndf·4 @8 → ndf·8 @4 (BN, LeakyReLU)
    [+ residual block at 4×4]; φ(t) → Linear → BN → LeakyReLU → 128-d, replicated spatially 4×4 and
    depth-concatenated; 1×1 conv + BN + LeakyReLU; 4×4 conv → one logit.

Other image sizes (16, 32, 128) add or remove 2× stages; the widths at resolution r are ``ngf·min(8, S/2r)``
(G) and ``ndf·min(8, S/2r)`` (D), which gives the paper's widths at S = 64.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from t2igan.models.blocks import (
    Conv4x4ToLogit,
    ConvTranspose1x1To4x4,
    ResidualBottleneck,
    activation,
    dcgan_init,
)
from t2igan.utils.errors import T2IError
from t2igan.utils.pretrained import Pretrained, register_pretrained

SUPPORTED_SIZES = (16, 32, 64, 128)
CHOICES: dict[str, tuple[str, ...]] = {
    "g_upsample": ("deconv", "nearest"),
    "g_fusion": ("concat", "affine"),
    "d_norm": ("batch", "spectral"),
    "d_text": ("concat", "projection"),
}


@dataclass
class ReedConfig:
    """Architecture of GAN-INT-CLS. The defaults are the paper's (char-CNN-RNN 1024-d text, 64×64 images)."""

    image_size: int = 64  # 16/32/64/128: the number of 2× up/down stages is log2(S) − 2
    z_dim: int = 100  # noise z ~ N(0, I), paper: 100
    text_dim: int = 1024  # φ(t): char-CNN-RNN gives 1024; set from the embeddings used
    proj_dim: int = 128  # text projection before concatenation, paper: 128
    ngf: int = 128  # generator width at the last hidden stage (paper: 128)
    ndf: int = 64  # discriminator width at the first stage (paper: 64)
    residual: bool = True  # the residual bottlenecks at 4×4/8×8 (G) and 4×4 (D) of the released code
    # Later GAN practice (defaults = the paper; see docs/quality.md for what each buys on the synthetic flowers):
    g_upsample: str = "deconv"  # deconv: ConvTranspose 4×4/2 (paper) | nearest: nearest ×2 + conv 3×3 (no checkerboard)
    g_fusion: str = "concat"  # concat: [z, φ'] enters at 4×4 only (paper) | affine: every stage also gets a per-channel
    #                           scale and shift predicted from [z, φ'] (DF-GAN's affine fusion / conditional BN)
    d_norm: str = "batch"  # batch: BatchNorm (paper) | spectral: spectral norm on every D weight, no BN (Miyato 2018)
    d_text: str = "concat"  # concat: φ' replicated 4×4, 1×1 conv, 4×4 conv (paper) | projection: unconditional logit
    #                         + ⟨V·φ(t), pooled features⟩ (Miyato & Koyama 2018)

    def __post_init__(self) -> None:
        if self.image_size not in SUPPORTED_SIZES:
            raise T2IError(f"model.image_size={self.image_size} is not supported", hint=f"use one of {SUPPORTED_SIZES}")
        for name in ("z_dim", "text_dim", "proj_dim", "ngf", "ndf"):
            if int(getattr(self, name)) <= 0:
                raise T2IError(f"model.{name} must be a positive integer, got {getattr(self, name)!r}")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise T2IError(f"model.{name}={getattr(self, name)!r} is unknown", hint=f"choose from {list(allowed)}")

    @property
    def n_stages(self) -> int:
        """Number of 2× stages between 4×4 and the image (4 at 64×64)."""
        return self.image_size.bit_length() - 3


# Named presets. `paper` for real data (Oxford-102/CUB); `port` is the architecture of the most used PyTorch port
# (widths 64, no residual blocks) — the speed reference point of issue 4; `cpu` is small enough to train the
# synthetic flowers on two CPU cores in minutes; `tiny` is for tests.
PRESETS: dict[str, dict[str, object]] = {
    "paper": {},
    "port": {"ngf": 64, "ndf": 64, "residual": False},
    "cpu": {"ngf": 32, "ndf": 32, "residual": True},
    "tiny": {"image_size": 16, "ngf": 8, "ndf": 8, "z_dim": 8, "proj_dim": 8},
}


def reed_config(preset: str | None = None, **overrides: object) -> ReedConfig:
    """A ``ReedConfig`` from a named preset plus overrides (unknown keys → ``T2IError``)."""
    values: dict[str, object] = {}
    if preset is not None:
        if preset not in PRESETS:
            raise T2IError(f"unknown Reed preset {preset!r}", hint=f"choose from {sorted(PRESETS)}")
        values.update(PRESETS[preset])
    known = {f.name for f in dataclasses.fields(ReedConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise T2IError(f"unknown Reed model option(s) {unknown}", hint=f"valid: {sorted(known)}")
    values.update(overrides)
    return ReedConfig(**values)  # type: ignore[arg-type]


def _width(base: int, image_size: int, resolution: int) -> int:
    return base * min(8, image_size // (2 * resolution))


@register_pretrained(ReedConfig)
class ReedGenerator(Pretrained, nn.Module):
    """G(z, φ(t)) → image in [-1, 1], shape [B, 3, S, S]."""

    def __init__(self, config: ReedConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        # φ(t) is compressed to 128-d "to make it more tractable" (paper §4); no BatchNorm in G's projection.
        self.project = nn.Sequential(nn.Linear(c.text_dim, c.proj_dim), nn.LeakyReLU(0.2, inplace=True))
        stages: list[nn.Module] = []
        cin, res = c.z_dim + c.proj_dim, 4
        for i in range(c.n_stages):  # 4×4, 8×8, … up to S/2: each stage = conv into r×r + BN [+ res] [+ affine] + ReLU
            cout = _width(c.ngf, c.image_size, res)
            stages.append(
                GeneratorStage(
                    _first_conv(cin, cout) if i == 0 else _up_conv(cin, cout, c.g_upsample),
                    cout,
                    residual=c.residual and i < 2,  # residual blocks at 4×4 and 8×8 only, as in the released code
                    cond_dim=c.z_dim + c.proj_dim if c.g_fusion == "affine" else 0,
                )
            )
            cin, res = cout, res * 2
        self.stages = nn.ModuleList(stages)
        self.to_rgb = nn.Sequential(_up_conv(cin, 3, c.g_upsample), nn.Tanh())
        self.apply(dcgan_init)
        for stage in self.stages:
            stage.reset_affine()

    @property
    def z_dim(self) -> int:
        return self.config.z_dim

    @property
    def text_dim(self) -> int:
        return self.config.text_dim

    def forward(self, z: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        h = torch.cat([z, self.project(text_emb)], dim=1)  # [B, z + 128]
        x = h[:, :, None, None]
        for stage in self.stages:
            x = stage(x, h)
        return self.to_rgb(x)


class GeneratorStage(nn.Module):
    """One G stage: conv (into r×r) → BN [→ residual bottleneck] [→ affine fusion] → ReLU.

    The affine fusion (``cond_dim > 0``) is DF-GAN's (Tao et al. 2022, §3.3): per-channel γ, β predicted from the
    condition [z, φ'] scale and shift the normalised features, x ← (1 + γ)·x + β; γ, β start at 0 (identity).
    """

    def __init__(self, conv: nn.Module, channels: int, *, residual: bool, cond_dim: int) -> None:
        super().__init__()
        self.conv = conv
        self.norm = nn.BatchNorm2d(channels)
        self.residual = ResidualBottleneck(channels, "relu") if residual else None
        self.affine = nn.Linear(cond_dim, 2 * channels) if cond_dim else None
        self.act = activation("relu")

    def reset_affine(self) -> None:
        if self.affine is not None:
            nn.init.zeros_(self.affine.weight)
            nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x))
        if self.residual is not None:
            x = self.residual(x)
        if self.affine is not None:
            gamma, beta = self.affine(cond).to(x.dtype)[:, :, None, None].chunk(2, dim=1)
            x = x * (1 + gamma) + beta
        return self.act(x)


def _first_conv(cin: int, cout: int) -> nn.Module:
    return ConvTranspose1x1To4x4(cin, cout)


def _up_conv(cin: int, cout: int, kind: str) -> nn.Module:
    """×2 upsampling conv: ConvTranspose 4×4/2 (DCGAN, the paper) or nearest ×2 then conv 3×3 (Odena et al. 2016)."""
    if kind == "nearest":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1, bias=False))
    return nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)


@register_pretrained(ReedConfig)
class ReedDiscriminator(Pretrained, nn.Module):
    """D(x, φ(t)) → one logit per pair (the probability that x is real AND matches the text, for GAN-CLS)."""

    def __init__(self, config: ReedConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        sn = c.d_norm == "spectral"
        wrap = spectral_norm if sn else (lambda m: m)
        layers: list[nn.Module] = []
        cin, res = 3, c.image_size // 2
        while res >= 4:  # stride-2 4×4 convs down to 4×4; no BN on the first one (DCGAN)
            cout = _width(c.ndf, c.image_size, res)
            layers.append(wrap(nn.Conv2d(cin, cout, 4, 2, 1, bias=sn)))
            if cin != 3 and not sn:
                layers.append(nn.BatchNorm2d(cout))
            if res == 4 and c.residual and not sn:
                layers.append(ResidualBottleneck(cout, "lrelu"))
            layers.append(activation("lrelu"))
            cin, res = cout, res // 2
        self.trunk = nn.Sequential(*layers)
        self.feature_dim = cin
        if not sn:  # spectral norm keeps PyTorch's default init (as SAGAN/BigGAN keep theirs)
            self.trunk.apply(dcgan_init)
        if c.d_text == "projection":
            # Miyato & Koyama 2018, Eq. (3): D(x, y) = ψ(φ(x)) + yᵀ V φ(x), φ(x) = sum-pooled features.
            self.unconditional = wrap(nn.Linear(cin, 1))
            self.embed = wrap(nn.Linear(c.text_dim, cin))
        else:
            # D's text projection has BatchNorm (unlike G's), then is replicated over the 4×4 grid.
            self.project = nn.Sequential(
                wrap(nn.Linear(c.text_dim, c.proj_dim)),
                nn.BatchNorm1d(c.proj_dim) if not sn else nn.Identity(),
                nn.LeakyReLU(0.2, inplace=True),
            )
            joint: list[nn.Module] = [wrap(nn.Conv2d(cin + c.proj_dim, cin, 1, bias=sn))]
            if not sn:
                joint.append(nn.BatchNorm2d(cin))
            self.joint = nn.Sequential(*joint, activation("lrelu"))
            self.to_logit = wrap(Conv4x4ToLogit(cin)) if sn else Conv4x4ToLogit(cin)
            if not sn:
                self.project.apply(dcgan_init)
                self.joint.apply(dcgan_init)
                self.to_logit.apply(dcgan_init)

    @property
    def text_dim(self) -> int:
        return self.config.text_dim

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Image-only features at 4×4, [B, ndf·8, 4, 4] (used for the nearest-neighbour check)."""
        return self.trunk(x)

    def replicate_text(self, text_emb: torch.Tensor) -> torch.Tensor:
        """The projected text, replicated spatially to 4×4: [B, proj_dim, 4, 4]."""
        return self.project(text_emb)[:, :, None, None].expand(-1, -1, 4, 4)

    def head(self, features: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        """Logits from image features and text: the real/right and real/wrong pairs share ``features(x)``."""
        if self.config.d_text == "projection":
            pooled = features.float().sum(dim=(2, 3))
            return self.unconditional(pooled).flatten() + (self.embed(text_emb.float()) * pooled).sum(dim=1)
        t = self.replicate_text(text_emb).to(features.dtype)
        h = self.joint(torch.cat([features, t.contiguous(memory_format=_format_of(features))], dim=1))
        return self.to_logit(h).flatten()

    def forward(self, x: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x), text_emb)

    def match_logits(self, features: torch.Tensor, text_emb: torch.Tensor, temperature: float) -> torch.Tensor:
        """[B_img, B_txt] cosine similarities / τ between pooled image features and projected texts (the projection
        head's V·φ(t)): the image-sentence contrastive score of XMC-GAN (Zhang et al., CVPR 2021, Eq. (2))."""
        if self.config.d_text != "projection":
            raise ValueError("the contrastive score needs the projection discriminator (model.d_text=projection)")
        img = F.normalize(features.float().sum(dim=(2, 3)), dim=1)
        txt = F.normalize(self.embed(text_emb.float()), dim=1)
        return img @ txt.t() / temperature


def _format_of(x: torch.Tensor) -> torch.memory_format:
    return (
        torch.channels_last
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        else torch.contiguous_format
    )
