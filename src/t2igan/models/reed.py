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
from torch import nn

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

    def __post_init__(self) -> None:
        if self.image_size not in SUPPORTED_SIZES:
            raise T2IError(f"model.image_size={self.image_size} is not supported", hint=f"use one of {SUPPORTED_SIZES}")
        for name in ("z_dim", "text_dim", "proj_dim", "ngf", "ndf"):
            if int(getattr(self, name)) <= 0:
                raise T2IError(f"model.{name} must be a positive integer, got {getattr(self, name)!r}")

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
        for i in range(c.n_stages):  # 4×4, 8×8, … up to S/2: each stage = conv into r×r + BN [+ res] + ReLU
            cout = _width(c.ngf, c.image_size, res)
            conv = ConvTranspose1x1To4x4(cin, cout) if i == 0 else nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)
            layers = [conv, nn.BatchNorm2d(cout)]
            if c.residual and i < 2:  # residual blocks at 4×4 and 8×8 only, as in the released code
                layers.append(ResidualBottleneck(cout, "relu"))
            layers.append(activation("relu"))
            stages.append(nn.Sequential(*layers))
            cin, res = cout, res * 2
        self.stages = nn.Sequential(*stages)
        self.to_rgb = nn.Sequential(nn.ConvTranspose2d(cin, 3, 4, 2, 1, bias=False), nn.Tanh())
        self.apply(dcgan_init)

    @property
    def z_dim(self) -> int:
        return self.config.z_dim

    @property
    def text_dim(self) -> int:
        return self.config.text_dim

    def forward(self, z: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        h = torch.cat([z, self.project(text_emb)], dim=1)  # [B, z + 128]
        x = self.stages(h[:, :, None, None])
        return self.to_rgb(x)


@register_pretrained(ReedConfig)
class ReedDiscriminator(Pretrained, nn.Module):
    """D(x, φ(t)) → one logit per pair (the probability that x is real AND matches the text, for GAN-CLS)."""

    def __init__(self, config: ReedConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        layers: list[nn.Module] = []
        cin, res = 3, c.image_size // 2
        while res >= 4:  # stride-2 4×4 convs down to 4×4; no BN on the first one (DCGAN)
            cout = _width(c.ndf, c.image_size, res)
            layers.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=False))
            if cin != 3:
                layers.append(nn.BatchNorm2d(cout))
            if res == 4 and c.residual:
                layers.append(ResidualBottleneck(cout, "lrelu"))
            layers.append(activation("lrelu"))
            cin, res = cout, res // 2
        self.trunk = nn.Sequential(*layers)
        self.feature_dim = cin
        # D's text projection has BatchNorm (unlike G's), then is replicated over the 4×4 grid.
        self.project = nn.Sequential(
            nn.Linear(c.text_dim, c.proj_dim), nn.BatchNorm1d(c.proj_dim), nn.LeakyReLU(0.2, inplace=True)
        )
        self.joint = nn.Sequential(
            nn.Conv2d(cin + c.proj_dim, cin, 1, bias=False), nn.BatchNorm2d(cin), activation("lrelu")
        )
        self.to_logit = Conv4x4ToLogit(cin)
        self.apply(dcgan_init)

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
        t = self.replicate_text(text_emb).to(features.dtype)
        h = self.joint(torch.cat([features, t.contiguous(memory_format=_format_of(features))], dim=1))
        return self.to_logit(h).flatten()

    def forward(self, x: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x), text_emb)


def _format_of(x: torch.Tensor) -> torch.memory_format:
    return (
        torch.channels_last
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        else torch.contiguous_format
    )
