"""The image side θ(v) of the DS-SJE joint embedding (Reed et al., CVPR 2016, §3.1).

The paper uses fixed 1024-d GoogLeNet features (averaged over 10 crops) and learns only the text side. Pretrained
ImageNet networks cannot be downloaded here, so by default a small CNN over the prepared images is learned jointly
(``SjeImageEncoder``); users who have features of their own pass them to ``SjeFeatureEncoder`` (a linear map, the
paper's setting). Both are saved next to the text encoder (``<dir>/image_encoder/``) because the joint space is what
R-precision needs: ``cos(θ(image), φ(caption))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from t2igan.utils.errors import T2IError
from t2igan.utils.pretrained import (
    WEIGHTS_NAME,
    Pretrained,
    config_from_dict,
    load_pretrained,
    load_weights,
    read_config,
    read_weights,
    register_pretrained,
)

IMAGE_ENCODER_DIR = "image_encoder"


@dataclass
class SjeImageConfig:
    """A small convolutional θ(v). ``feature_dim > 0`` means a linear map of user-supplied features instead."""

    embed_dim: int = 1024  # must equal the text encoder's embed_dim
    image_size: int = 32  # images are resized to this before the CNN
    channels: tuple[int, ...] = (32, 64, 128)  # one stride-2 stage per width
    feature_dim: int = 0  # > 0: SjeFeatureEncoder over precomputed features of this size
    extra_conv: bool = True  # a 3×3 conv before each stride-2 conv (False: DCGAN-discriminator-like, ~5× cheaper)

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)


@register_pretrained(SjeImageConfig)
class SjeImageEncoder(Pretrained, nn.Module):
    """θ(v): images → joint-space vectors. Each stage: [Conv3×3 + BN + ReLU], Conv4×4 stride 2 + BN + ReLU."""

    def __init__(self, config: SjeImageConfig | None = None) -> None:
        super().__init__()
        self.config = config or SjeImageConfig()
        layers: list[nn.Module] = []
        c_in = 3
        for c in self.config.channels:
            if self.config.extra_conv:
                layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
                c_in = c
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            c_in = c
        self.body = nn.Sequential(*layers)
        self.proj = nn.Linear(c_in, self.config.embed_dim)

    @property
    def dim(self) -> int:
        return self.config.embed_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Float images ``[B, 3, H, W]`` in [-1, 1] (any size; resized to ``image_size``) → ``[B, embed_dim]``."""
        s = self.config.image_size
        if x.shape[-1] != s or x.shape[-2] != s:
            mode = "area" if x.shape[-1] > s else "bilinear"
            x = F.interpolate(x, size=(s, s), mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
        h = self.body(x)
        return self.proj(h.mean(dim=(2, 3)))  # global average pool

    @staticmethod
    def to_float(images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 ``[N, H, W, 3]`` → float ``[N, 3, H, W]`` in [-1, 1] (float tensors pass through)."""
        if isinstance(images, torch.Tensor) and images.is_floating_point():
            if images.dim() != 4 or images.shape[1] != 3:
                raise ValueError(f"float images must be [N, 3, H, W], got {tuple(images.shape)}")
            return images
        arr = torch.from_numpy(np.array(images, dtype=np.uint8))  # a copy: memmaps are read-only
        if arr.dim() != 4 or arr.shape[-1] != 3:
            raise ValueError(f"uint8 images must be [N, H, W, 3], got {tuple(arr.shape)}")
        return arr.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)

    def encode_images(self, images: np.ndarray | torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """uint8 ``[N, H, W, 3]`` (or float ``[N, 3, H, W]`` in [-1, 1]) → θ(v) ``[N, embed_dim]``, eval mode."""
        was = self.training
        self.eval()
        out = []
        try:
            with torch.no_grad():
                for i in range(0, len(images), batch_size):
                    x = self.to_float(images[i : i + batch_size]).to(self.proj.weight.device)
                    out.append(self(x).float().cpu())
        finally:
            self.train(was)
        return torch.cat(out) if out else torch.zeros(0, self.dim)


@register_pretrained(SjeImageConfig)
class SjeFeatureEncoder(SjeImageEncoder):
    """θ(v) = W·f(v): a linear map of precomputed image features (the paper's setting with GoogLeNet features)."""

    def __init__(self, config: SjeImageConfig | None = None) -> None:
        nn.Module.__init__(self)
        self.config = config or SjeImageConfig(feature_dim=1024)
        if self.config.feature_dim <= 0:
            raise T2IError("SjeFeatureEncoder needs feature_dim > 0")
        self.proj = nn.Linear(self.config.feature_dim, self.config.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)

    def encode_features(self, features: np.ndarray | torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(features, dtype=np.float32))
        with torch.no_grad():
            return torch.cat([self.proj(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])

    def encode_images(self, images: np.ndarray | torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        raise T2IError(
            "this joint embedding was trained on precomputed image features, so it cannot embed raw images",
            hint="compute the same features for your images and call encode_features, or train with the image CNN",
        )


def load_image_features(path: str | Path, n_images: int) -> np.ndarray:
    """A ``.npy`` float array ``[n_images, F]`` of image features (the paper used GoogLeNet's) for
    ``SjeFeatureEncoder``, or a one-line error saying what is wrong with the file."""
    try:
        feats = np.load(path, allow_pickle=False)
    except (ValueError, OSError):
        raise T2IError("is not a numeric .npy array", path=path, hint="save a float array with np.save") from None
    if feats.ndim != 2 or len(feats) != n_images or not np.issubdtype(feats.dtype, np.number):
        raise T2IError(f"features have shape {feats.shape}, expected [{n_images}, F]", path=path)
    return feats


def load_sje_image_encoder(folder: str | Path) -> SjeImageEncoder:
    """Load the image side saved with a DS-SJE text encoder: ``<text_encoder_dir>`` or its ``image_encoder/``."""
    folder = Path(folder)
    if (folder / IMAGE_ENCODER_DIR / "config.json").exists():
        folder = folder / IMAGE_ENCODER_DIR
    cfg_path = folder / "config.json"
    if not cfg_path.exists():
        raise T2IError(
            "has no DS-SJE image encoder (image_encoder/config.json missing)",
            path=folder,
            hint="only char-CNN-RNN encoders trained with `t2igan encode train` carry the image side",
        )
    hint = "re-train it with `t2igan encode train`"
    meta = read_config(folder, hint=hint)
    if "_class_name" in meta:  # t2igan.utils.pretrained
        return load_pretrained(folder, expected=SjeImageEncoder)
    # written before t2igan.utils.pretrained: {"type": "sje-image" | "sje-features", "config": {...}}
    if meta.get("type") not in ("sje-image", "sje-features"):
        raise T2IError(f"is a {meta.get('type')!r} folder, not a DS-SJE image encoder", path=folder)
    cfg = config_from_dict(SjeImageConfig, dict(meta.get("config") or {}), cfg_path)
    enc = SjeFeatureEncoder(cfg) if meta["type"] == "sje-features" else SjeImageEncoder(cfg)
    load_weights(
        enc, read_weights(folder, hint=hint, what="DS-SJE image encoder weights"), folder / WEIGHTS_NAME, hint=hint
    )
    return enc.eval()
