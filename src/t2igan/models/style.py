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

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from t2igan.utils.errors import T2IError
from t2igan.utils.io import atomic_write_json
from t2igan.utils.weights import read_safetensors


@dataclass
class StyleEncoderConfig:
    """Constructor arguments of :class:`StyleEncoder` (saved as ``config.json``)."""

    image_size: int = 64  # must match the generator's output size
    z_dim: int = 100  # the generator's z size (Reed 2016: 100)
    width: int = 64  # channels of the first conv; doubled at each halving (ndf of the paper's D)
    max_width: int = 512


class StyleEncoder(nn.Module):
    """S: image ``[B, 3, S, S]`` in [-1, 1] → ẑ ``[B, z_dim]`` (Reed 2016 §4.4)."""

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

    # ---------------------------------------------------------------------------------------------- persistence
    def save_pretrained(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(folder / "model.safetensors")
        )
        atomic_write_json(folder / "config.json", {"_class_name": "StyleEncoder", **asdict(self.config)})
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> StyleEncoder:
        folder = Path(folder)
        try:
            cfg = json.loads((folder / "config.json").read_text())
            cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
            model = cls(StyleEncoderConfig(**cfg))
            state = read_safetensors(
                folder / "model.safetensors", what="style encoder weights", hint="retrain it with `t2igan style train`"
            )
            model.load_state_dict(state, strict=True)
        except T2IError:
            raise
        except (OSError, ValueError, TypeError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise T2IError(
                f"cannot load style encoder ({first})", path=folder, hint="retrain it with `t2igan style train`"
            ) from None
        return model.eval()
