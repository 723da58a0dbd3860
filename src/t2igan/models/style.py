"""The style encoder S of Reed et al. 2016, §4.4 ("Inverting the generator for style transfer").

S is a convolutional network that maps an image back to the noise vector that produced it. It is trained *after* the
generator G, with G frozen, on the squared error between a noise sample and its reconstruction:

    L_style = E_{t, z ~ N(0, 1)} ‖z − S(G(z, φ(t)))‖²₂            (Reed 2016, §4.4)

Style transfer then reads: s ← S(x), x̂ ← G(s, φ(t)) — the pose/background of the query image x ("style") with the
content of the caption t. The paper gives no architecture for S and the authors' code has none; this one mirrors the
DCGAN discriminator of Reed 2016 (stride-2 4×4 convolutions, LeakyReLU 0.2) and ends in a linear map to z-space.
It has no batch norm: with batch statistics S can read z off tiny differences that its eval-mode running
statistics wash out (measured: train loss 0.07 vs held-out 0.99 on a weak G), and S is only ever used in eval mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from t2igan.utils.pretrained import Pretrained, register_pretrained


@dataclass
class StyleEncoderConfig:
    """Constructor arguments of :class:`StyleEncoder` (saved as ``config.json``)."""

    image_size: int = 64  # must match the generator's output size
    z_dim: int = 100  # the generator's z size (Reed 2016: 100)
    width: int = 64  # channels of the first conv; doubled at each halving (ndf of the paper's D)
    max_width: int = 512


@register_pretrained(StyleEncoderConfig)
class StyleEncoder(Pretrained, nn.Module):
    """S: image ``[B, 3, S, S]`` in [-1, 1] → ẑ ``[B, z_dim]`` (Reed 2016 §4.4). Saved and loaded with
    ``save_pretrained`` / ``StyleEncoder.from_pretrained`` (``t2igan.utils.pretrained``)."""

    weights_label = "style encoder"

    def __init__(self, config: StyleEncoderConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or StyleEncoderConfig()
        size = cfg.image_size
        if size < 8 or size & (size - 1):
            raise ValueError(f"image_size must be a power of two ≥ 8, got {size}")
        layers: list[nn.Module] = []
        c_in, c = 3, cfg.width
        while size > 4:  # 64 → 32 → 16 → 8 → 4, as the paper's D
            layers.append(nn.Conv2d(c_in, c, 4, 2, 1))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c_in, c, size = c, min(c * 2, cfg.max_width), size // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in * 4 * 4, cfg.z_dim)  # PyTorch's default init: no BN, so keep unit-scale signals

    @property
    def z_dim(self) -> int:
        return self.config.z_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1:] != (3, self.config.image_size, self.config.image_size):
            s = self.config.image_size
            raise ValueError(f"StyleEncoder expects [B, 3, {s}, {s}], got {tuple(x.shape)}")
        return self.head(self.features(x).flatten(1))
