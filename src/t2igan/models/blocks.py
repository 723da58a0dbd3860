"""Building blocks shared by the GAN models: DCGAN initialisation and the residual bottleneck of Reed et al. 2016.

Everything here is a plain ``nn.Module`` or function; the models compose them so their ``forward`` reads like the
paper's figure.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al. 2016), used by Reed et al.: conv/linear weights ~ N(0, 0.02),
    BatchNorm weights ~ N(1, 0.02), biases 0. Apply with ``model.apply(dcgan_init)``."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def activation(kind: str) -> nn.Module:
    """``"relu"`` for generators, ``"lrelu"`` (slope 0.2) for discriminators, as in DCGAN and Reed et al."""
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "lrelu":
        return nn.LeakyReLU(0.2, inplace=True)
    raise ValueError(f"unknown activation {kind!r}")


class ResidualBottleneck(nn.Module):
    """Reed et al. 2016's residual block at 4×4/8×8: x + BN(conv3(act(BN(conv3(act(BN(conv1(x)))))))).

    The 1×1 conv squeezes to a quarter of the channels, two 3×3 convs follow (the last back to ``channels``), as in
    the original Lua code (``ngf*8 → ngf*2 → ngf*8``). The activation after the sum belongs to the caller's stage.
    Convs have no bias: each is followed by BatchNorm (the original zeroes conv biases every step).
    """

    def __init__(self, channels: int, act: str) -> None:
        super().__init__()
        mid = max(1, channels // 4)
        self.branch = nn.Sequential(
            nn.Conv2d(channels, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            activation(act),
            nn.Conv2d(mid, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            activation(act),
            nn.Conv2d(mid, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


class ConvTranspose1x1To4x4(nn.ConvTranspose2d):
    """A 4×4 transposed conv from a 1×1 input (DCGAN's first G layer), computed as the matmul it is.

    Same parameters and maths as ``nn.ConvTranspose2d(cin, cout, 4)`` on a ``[B, cin, 1, 1]`` input; the matmul is
    several times faster than the convolution kernels on CPU (and exact in any precision).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 4, 1, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = F.linear(x.flatten(1), self.weight.flatten(1).t())  # weight [cin, cout, 4, 4]
        return y.view(x.shape[0], self.out_channels, 4, 4)


class Conv4x4ToLogit(nn.Conv2d):
    """The last D layer: a 4×4 valid conv on a 4×4 map to one logit, computed as the dot product it is."""

    def __init__(self, in_channels: int) -> None:
        super().__init__(in_channels, 1, 4, 1, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return F.linear(x.flatten(1), self.weight.flatten(1)).view(x.shape[0], 1, 1, 1)
