"""StackGAN (v1): Conditioning Augmentation, Stage-I and Stage-II generators and discriminators.

Zhang et al., "StackGAN: Text to Photo-realistic Image Synthesis with Stacked Generative Adversarial Networks",
ICCV 2017 (arXiv:1612.03242). Layer for layer this follows the authors' PyTorch release (`code/model.py`):

- **Conditioning Augmentation** (§3.2): a text embedding φ_t gives μ(φ_t), log σ²(φ_t) through FC + ReLU, and the
  condition is sampled by reparameterisation ĉ = μ + σ ⊙ ε, ε ~ N(0, I). The KL term
  D_KL(N(μ(φ_t), Σ(φ_t)) ‖ N(0, I)) of Eq. (2), weighted by λ in the generator losses Eqs. (4) and (6), is
  `t2igan.losses.stackgan.kl_loss`. The noise ε is an input (``eps`` or a seeded ``torch.Generator``): the pipeline
  and the training system supply it.
- **Stage-I** (§3.3): concat(z, ĉ₀) → FC to 4×4×(8·GF_DIM) → up-blocks (nearest ×2, conv3×3, BN, ReLU) → conv3×3
  → tanh at 64×64; trained by Eqs. (3) (D) and (4) (G). D: strided convs down to 4×4, μ (detached) replicated 4×4
  and concatenated, conv3×3 + BN + LeakyReLU, conv4×4 → logit.
- **Stage-II** (§3.4): Stage-I frozen; its image is encoded (conv3×3, two strided convs) to 16×16×(4·GF_DIM), its own
  CA code ĉ is replicated and concatenated, conv3×3 + BN + ReLU, R_NUM residual blocks, up-blocks to 256×256;
  trained by Eqs. (5) and (6). ``stage2_residual=True`` (beyond the paper; the CPU preset) makes the last conv a
  residual on the Stage-I image: x₂ = tanh(atanh(up(x₁)) + conv(h)), with that conv zero at init, so Stage-II starts
  as Stage-I upsampled and learns only what to add. ``stage2_skip=True`` (beyond the paper) also hands the upsampled
  Stage-I image itself to the last 128/256-px layers (conv3×3 + BN + ReLU on [h, up(x₁)]): the 16×16 bottleneck
  keeps the content but not where an edge lies to the pixel, so without it Stage-II cannot sharpen.
  ``stage2_condition="stage1"`` (beyond the paper) replaces Stage-II's own CA by the code ĉ₀ that drew the Stage-I
  image. ``stage2_upsample="bilinear"`` (beyond the paper) resizes bilinearly instead of nearest in Stage-II's
  up-blocks (Odena et al. 2016: the resize before the conv sets which upsampling artefacts G can draw).
  D: strided convs to 4×4×(32·DF_DIM), conv3×3 back to 8·DF_DIM, conditional logit and (as in the PyTorch
  release) an unconditional logit. ``d_text="projection"`` (beyond the paper) gives D the projection head of Miyato &
  Koyama (ICLR 2018, Eq. (3)) instead of the concatenation: D(x, μ) = ψ(φ(x)) + μᵀVφ(x), φ(x) the sum-pooled 4×4
  features.

Sizes are configurable (`stage1_size`, `stage2_size`, powers of two) so that CPU presets (e.g. 64 → 128) and tests
(16 → 32, widths 8) use the very same classes; `PRESETS` names them (``paper`` = the release's birds settings).
Discriminators return *logits*; the losses use BCE-with-logits, which equals the release's Sigmoid + BCELoss but is
numerically stable.

Speed: ``fused_upsample`` computes "nearest ×2 then conv3×3" as one stride-2 transposed 4×4 convolution whose kernel
is folded from the same 3×3 weights at every call (`UpsampleConv3x3`). The function and the parameters are exactly
the paper's; the arithmetic is 16/36 of the naive form. Turn it off to run the literal form.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from t2igan.models.blocks import dcgan_init
from t2igan.utils.errors import T2IError
from t2igan.utils.pretrained import Pretrained, register_pretrained

__all__ = [
    "ConditioningAugmentation",
    "ResBlock",
    "StackGanConfig",
    "StackGanDiscriminator",
    "StackGanGenerator",
    "StageIGenerator",
    "StageIIGenerator",
    "UpBlock",
    "UpsampleConv3x3",
    "init_weights",
    "stackgan_config",
    "stackgan_discriminator",
]


# --------------------------------------------------------------------------------------------------- config
@dataclass
class StackGanConfig:
    """Everything that shapes the StackGAN v1 networks (the constructor signature is the config)."""

    stage: int = 1  # 1: Stage-I only; 2: Stage-I (frozen) + Stage-II
    text_dim: int = 1024  # φ_t: char-CNN-RNN 1024-d (or 384 for MiniLM)
    z_dim: int = 100  # noise
    condition_dim: int = 128  # ĉ (Ng in the paper)
    gf_dim: int = 128  # GF_DIM; Stage-I starts at 8·GF_DIM channels at 4×4
    df_dim: int = 64  # DF_DIM
    r_num: int = 4  # residual blocks in Stage-II G
    stage1_size: int = 64
    stage2_size: int = 256
    uncond_head: bool = True  # Stage-II D's extra unconditional logit (PyTorch release)
    d_norm: str = "batch"  # batch: BatchNorm in D (paper) | spectral: spectral norm on every D weight, no BN
    d_text: str = "concat"  # concat: μ tiled 4×4 + conv3×3 + conv4×4 (paper) | projection: ψ(φ(x)) + μᵀVφ(x)
    d_condition: str = "ca"  # ca: D reads G's CA mean μ (paper) | text: D compresses φ_t itself (Reed et al. 2016)
    stage2_residual: bool = False  # Stage-II draws a residual on its upsampled Stage-I image (starts as Stage-I)
    stage2_skip: bool = False  # Stage-II's last layers also see the upsampled Stage-I image (to sharpen its edges)
    stage2_condition: str = "own"  # own: Stage-II's own CA (paper) | stage1: the code ĉ₀ that drew the Stage-I image
    fused_upsample: bool = True  # same function, fewer FLOPs (see module docstring)
    stage2_upsample: str = "nearest"  # nearest (paper) | bilinear: Stage-II's up-blocks resize bilinearly, then conv
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes carried with saved configs

    def __post_init__(self) -> None:
        if self.stage not in (1, 2):
            raise T2IError(f"model.stage must be 1 or 2, got {self.stage}", hint="use model.stage=1 or model.stage=2")
        for name in ("stage1_size", "stage2_size"):
            s = getattr(self, name)
            if s < 8 or s & (s - 1):
                raise T2IError(f"model.{name} must be a power of two ≥ 8, got {s}")
        if self.stage2_size < self.stage1_size:
            raise T2IError(
                f"model.stage2_size ({self.stage2_size}) is smaller than model.stage1_size ({self.stage1_size})",
                hint="Stage-II refines Stage-I: use e.g. 64 → 256 (paper) or 64 → 128 (CPU)",
            )
        if self.stage1_size < 16:
            raise T2IError("model.stage1_size must be ≥ 16 (Stage-II encodes it ÷4)")
        if self.gf_dim < 4 or self.df_dim < 1:
            raise T2IError(f"model.gf_dim must be ≥ 4 and df_dim ≥ 1 (got {self.gf_dim}, {self.df_dim})")
        check_d_norm(self.d_norm)
        check_d_text(self.d_text)
        if self.d_condition not in D_CONDITIONS:
            raise T2IError(
                f"model.d_condition must be one of {D_CONDITIONS}, got {self.d_condition!r}",
                hint="ca: D reads the CA mean μ (the paper); text: D compresses the caption embedding itself",
            )
        if self.stage2_upsample not in UPSAMPLE_MODES:
            raise T2IError(
                f"model.stage2_upsample must be one of {UPSAMPLE_MODES}, got {self.stage2_upsample!r}",
                hint="nearest: the paper's up-blocks; bilinear: smoother ×2 resize before each conv3×3",
            )
        if self.stage2_condition not in STAGE2_CONDITIONS:
            raise T2IError(
                f"model.stage2_condition must be one of {STAGE2_CONDITIONS}, got {self.stage2_condition!r}",
                hint="own: Stage-II's own CA (the paper); stage1: Stage-I's code ĉ₀",
            )

    @property
    def image_size(self) -> int:
        """The size of the last stage's images."""
        return self.stage2_size if self.stage == 2 else self.stage1_size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StackGanConfig:
        """From saved JSON; training settings that older exports carried (``kl_weight``, ``stage1``) are dropped."""
        d = {k: v for k, v in d.items() if k not in RETIRED_KEYS}
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise T2IError(f"unknown StackGAN config keys {unknown}", hint=f"known keys: {sorted(known)}")
        return cls(**d)


STAGE2_CONDITIONS = ("own", "stage1")
UPSAMPLE_MODES = ("nearest", "bilinear")
D_CONDITIONS = ("ca", "text")

# Training settings that older versions kept in the model config, and where they are now.
RETIRED_KEYS = {"kl_weight": "loss.kl_weight", "stage1": "model.stage1"}

# model.preset → architecture overrides; the dataclass defaults are the release's birds/flowers settings.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},  # GF_DIM 128, DF_DIM 64, Ng 128, z 100, R_NUM 4, 64 → 256
    "cpu": {"gf_dim": 32, "df_dim": 32, "r_num": 2, "condition_dim": 64, "stage1_size": 64, "stage2_size": 128},
    "tiny": {"gf_dim": 8, "df_dim": 8, "r_num": 1, "condition_dim": 8, "z_dim": 16, "stage1_size": 16,
             "stage2_size": 32},
}  # fmt: skip


def stackgan_config(preset: str | None = "paper", **params: Any) -> StackGanConfig:
    """A `StackGanConfig` from a named preset plus overrides (unknown keys or presets → `T2IError`)."""
    return StackGanConfig.from_dict({**_preset(PRESETS, preset, "StackGAN"), **params})


D_NORMS = ("batch", "spectral")


D_TEXTS = ("concat", "projection")


def check_d_text(d_text: str) -> None:
    if d_text not in D_TEXTS:
        raise T2IError(f"model.d_text={d_text!r} is unknown", hint=f"choose from {list(D_TEXTS)}")


def check_d_norm(d_norm: str) -> None:
    if d_norm not in D_NORMS:
        raise T2IError(f"model.d_norm={d_norm!r} is unknown", hint=f"choose from {list(D_NORMS)}")


def _preset(presets: dict[str, dict[str, Any]], name: str | None, family: str) -> dict[str, Any]:
    if name is None:
        return {}
    if name not in presets:
        raise T2IError(f"unknown {family} preset {name!r}", hint=f"choose from {sorted(presets)}")
    return dict(presets[name])


# --------------------------------------------------------------------------------------------------- blocks
def init_weights(module: nn.Module) -> None:
    """The release's `weights_init` (= DCGAN's `dcgan_init`), also for the fused up-sampling convolutions."""
    module.apply(dcgan_init)
    for m in module.modules():
        if isinstance(m, UpsampleConv3x3):
            nn.init.normal_(m.weight, 0.0, 0.02)


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, 1, 1, bias=False)


# Row r of _FOLD gives the 4 taps of the stride-2 transposed kernel from the 3 taps (w0, w1, w2) of the 3×3 conv
# applied after nearest ×2 upsampling: even outputs see (x[m-1]·w0 + x[m]·(w1+w2)), odd outputs
# (x[m]·(w0+w1) + x[m+1]·w2); in conv_transpose2d(stride 2, padding 1) output o = 2i − 1 + k.
_FOLD = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


class UpsampleConv3x3(nn.Module):
    """Nearest-neighbour ×2 upsampling followed by a bias-free conv3×3 (the paper's up-block convolution).

    ``mode="bilinear"`` resizes bilinearly instead (never fused).

    With ``fused=True`` the same function is evaluated as ``conv_transpose2d(x, K, stride=2, padding=1)`` with the
    4×4 kernel ``K`` folded from the 3×3 weight (linear, differentiable, exact): 4 taps per output pixel instead of 9.
    """

    def __init__(self, cin: int, cout: int, fused: bool = True, mode: str = "nearest") -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, 3, 3))
        self.fused = fused and mode == "nearest"  # only nearest folds into a transposed conv
        self.mode = mode
        nn.init.normal_(self.weight, 0.0, 0.02)

    def folded_weight(self) -> torch.Tensor:
        f = _FOLD.to(device=self.weight.device, dtype=self.weight.dtype)
        # [cout, cin, 3, 3] → conv_transpose layout [cin, cout, 4, 4]
        return torch.einsum("ka,lb,oiab->iokl", f, f, self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            return F.conv_transpose2d(x, self.folded_weight().to(x.dtype), stride=2, padding=1)
        if self.mode == "bilinear":
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        else:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return F.conv2d(x, self.weight.to(x.dtype), padding=1)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, fused={self.fused}, mode={self.mode}"


class UpBlock(nn.Sequential):
    """Up-block: nearest ×2, conv3×3, BN, ReLU (StackGAN) — or GLU over 2·cout channels (StackGAN++)."""

    def __init__(self, cin: int, cout: int, *, glu: bool = False, fused: bool = True, mode: str = "nearest") -> None:
        width = 2 * cout if glu else cout
        super().__init__(
            UpsampleConv3x3(cin, width, fused, mode),
            nn.BatchNorm2d(width),
            nn.GLU(dim=1) if glu else nn.ReLU(inplace=True),
        )


class ResBlock(nn.Module):
    """Residual block x + BN(conv3×3(act(BN(conv3×3(x))))): ReLU act and after the sum (StackGAN), GLU (StackGAN++)."""

    def __init__(self, channels: int, *, glu: bool = False) -> None:
        super().__init__()
        mid = 2 * channels if glu else channels
        self.body = nn.Sequential(
            conv3x3(channels, mid),
            nn.BatchNorm2d(mid),
            nn.GLU(dim=1) if glu else nn.ReLU(inplace=True),
            conv3x3(channels, channels),
            nn.BatchNorm2d(channels),
        )
        self.glu = glu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x + self.body(x)
        return out if self.glu else F.relu(out)


class ConditioningAugmentation(nn.Module):
    """Conditioning Augmentation (StackGAN §3.2): φ_t → (μ, log σ²) by FC + ReLU; ĉ = μ + σ ⊙ ε, ε ~ N(0, I).

    ``glu=True`` is StackGAN++'s variant: FC to 4·Ng, GLU (halving to 2·Ng), then the same split into (μ, log σ²).
    ``sample=False`` (or ``module.sample = False`` at test time) returns ĉ = μ: fixed caption + fixed z → fixed
    image. Noise comes from ``eps`` or ``generator`` so that training and sampling are reproducible.
    """

    def __init__(self, text_dim: int, condition_dim: int, *, glu: bool = False) -> None:
        super().__init__()
        self.fc = nn.Linear(text_dim, (4 if glu else 2) * condition_dim)
        self.act: nn.Module = nn.GLU(dim=1) if glu else nn.ReLU()
        self.condition_dim = condition_dim
        self.sample = True

    def forward(
        self,
        text_emb: torch.Tensor,
        eps: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(ĉ, μ, log σ²)``, each ``[B, condition_dim]``."""
        h = self.act(self.fc(text_emb))
        mu, logvar = h[:, : self.condition_dim], h[:, self.condition_dim :]
        if not self.sample:
            return mu, mu, logvar
        if eps is None:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + eps * torch.exp(0.5 * logvar), mu, logvar


RESIDUAL_CLAMP = 0.995  # |x| bound before atanh in the residual Stage-II output (atanh(0.995) ≈ 3.0)


def _log2(n: int) -> int:
    return round(math.log2(n))


# --------------------------------------------------------------------------------------------------- discriminator
class StackGanDiscriminator(nn.Module):
    """Image encoder down to 4×4, then a conditional logit (and optionally an unconditional one).

    Strided conv4×4 blocks halve the size from ``image_size`` to 4 with ``df_dim·2^i`` channels (LeakyReLU 0.2, BN
    after the first); if more than 8·DF_DIM channels remain, conv3×3 blocks halve them back to 8·DF_DIM. This is
    Stage-I D at 64, Stage-II D at 256, and each of StackGAN++'s D_NET64/128/256.
    Heads: conditional = conv3×3(C + Ng → C) + BN + LeakyReLU, conv4×4 stride 4 → 1 on concat(features, μ tiled);
    unconditional = conv4×4 stride 4 → 1. ``condition_dim=0`` makes an unconditional-only D.
    ``d_text="projection"``: the conditional logit is Miyato & Koyama's projection (ICLR 2018, Eq. (3)),
    ψ(φ(x)) + μᵀVφ(x) with φ(x) the features summed over the 4×4 grid, ψ and V linear (beyond the papers).

    ``text_dim > 0`` (``model.d_condition=text``): D compresses the caption embedding itself, FC + LeakyReLU(0.2) to
    ``condition_dim`` (Reed et al., ICML 2016, §4), and ``condition(φ_t)`` replaces the CA mean μ as the head's input.

    ``d_norm="spectral"``: every convolution is spectrally normalised (Miyato et al., ICLR 2018, Eq. (8):
    W / σ(W), σ by one power iteration per step), with a bias and without BatchNorm, and keeps PyTorch's default init
    (as SAGAN/BigGAN do). The layer shapes are the release's otherwise; only the BN layers are gone.
    """

    def __init__(
        self,
        image_size: int,
        df_dim: int,
        condition_dim: int,
        *,
        uncond_head: bool,
        d_norm: str = "batch",
        d_text: str = "concat",
        text_dim: int = 0,
    ) -> None:
        super().__init__()
        if image_size < 8 or image_size & (image_size - 1):
            raise T2IError(f"discriminator image size must be a power of two ≥ 8, got {image_size}")
        check_d_norm(d_norm)
        check_d_text(d_text)
        sn = d_norm == "spectral"
        wrap = spectral_norm if sn else (lambda m: m)

        def conv(cin: int, cout: int, k: int, stride: int, pad: int) -> nn.Module:
            return wrap(nn.Conv2d(cin, cout, k, stride, pad, bias=sn))  # the release's convs have no bias

        def norm(ch: int) -> list[nn.Module]:
            return [] if sn else [nn.BatchNorm2d(ch)]

        n_down = _log2(image_size // 4)
        layers: list[nn.Module] = [conv(3, df_dim, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        ch = df_dim
        for _ in range(n_down - 1):
            layers += [conv(ch, ch * 2, 4, 2, 1), *norm(ch * 2), nn.LeakyReLU(0.2, True)]
            ch *= 2
        while ch > 8 * df_dim:
            layers += [conv(ch, ch // 2, 3, 1, 1), *norm(ch // 2), nn.LeakyReLU(0.2, inplace=True)]
            ch //= 2
        self.encode = nn.Sequential(*layers)
        self.feature_dim = ch
        self.condition_dim = condition_dim
        self.image_size = image_size
        self.d_norm = d_norm
        self.d_text = d_text
        self.cond_head: nn.Module | None = None
        self.psi: nn.Module | None = None  # projection head: ψ (image only) and V (condition → feature space)
        self.embed: nn.Module | None = None
        if condition_dim > 0 and d_text == "projection":
            self.psi = wrap(nn.Linear(ch, 1))
            self.embed = wrap(nn.Linear(condition_dim, ch, bias=False))
        elif condition_dim > 0:
            self.cond_head = nn.Sequential(
                conv(ch + condition_dim, ch, 3, 1, 1),
                *norm(ch),
                nn.LeakyReLU(0.2, inplace=True),
                wrap(nn.Conv2d(ch, 1, 4, 4)),
            )
        # D's own text compression (Reed et al. 2016, §4: FC + leaky ReLU to the condition width), or None: D reads μ
        self.text_fc: nn.Module | None = None
        if condition_dim > 0 and text_dim > 0:
            self.text_fc = nn.Sequential(wrap(nn.Linear(text_dim, condition_dim)), nn.LeakyReLU(0.2))
        self.uncond_head: nn.Module | None = None
        if uncond_head or condition_dim == 0:
            self.uncond_head = wrap(nn.Conv2d(ch, 1, 4, 4))
        if not sn:
            init_weights(self)

    def condition(self, text_emb: torch.Tensor) -> torch.Tensor:
        """D's own code of the caption embedding φ_t ``[B, text_dim]`` → ``[B, condition_dim]`` (``text_dim > 0``):
        the input of ``cond_logits`` in place of the CA mean μ. Trained by D's loss, so no KL term can empty it."""
        if self.text_fc is None:
            raise RuntimeError("this discriminator reads the CA mean μ (built without text_dim)")
        return self.text_fc(text_emb.float())

    def cond_logits(self, features: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        """Matching logit ``[B]`` of image features ``[B, C, 4, 4]`` with condition μ ``[B, Ng]`` (pass μ detached)."""
        if self.condition_dim == 0:
            raise RuntimeError("this discriminator has no conditional head (condition_dim=0)")
        if self.psi is not None and self.embed is not None:  # projection: ψ(φ(x)) + μᵀVφ(x)
            pooled = features.float().sum(dim=(2, 3))
            return self.psi(pooled).flatten() + (self.embed(mu.float()) * pooled).sum(dim=1)
        assert self.cond_head is not None
        c = mu.to(features.dtype)[:, :, None, None].expand(-1, -1, features.shape[2], features.shape[3])
        return self.cond_head(torch.cat([features, c], dim=1)).flatten()

    def pair_logits(self, features: torch.Tensor, mus: torch.Tensor) -> torch.Tensor:
        """``cond_logits`` of every (image i, condition j) pair: ``[B_img, B_cond]``, the diagonal being the usual
        matching logits when the two batches line up. For the image-text contrastive term (XMC-GAN, Zhang et al.,
        CVPR 2021, Eq. (2), with D's own matching logit as the score).

        The head's first conv is linear in its input, so ``conv([f_i; c_j]) = conv([f_i; 0]) + conv([0; c_j]) − b``:
        both halves are computed once (one conv call on B_img + B_cond inputs) and only the LeakyReLU and the last
        4×4 conv run per pair. Exact for the spectral-norm D; BatchNorm (``d_norm="batch"``) would couple the pairs
        through the batch statistics, so it is refused. The projection head is linear in μ: ψ(φ_i) + φ_i·Vμ_j, one
        matrix product, with either norm.
        """
        if self.condition_dim == 0:
            raise RuntimeError("this discriminator has no conditional head (condition_dim=0)")
        if self.psi is not None and self.embed is not None:
            pooled = features.float().sum(dim=(2, 3))
            return self.psi(pooled) + pooled @ self.embed(mus.float()).t()
        assert self.cond_head is not None
        if self.d_norm != "spectral":
            raise ValueError("pair logits need the spectral-norm D (model.d_norm=spectral): BatchNorm couples pairs")
        first, act, last = self.cond_head
        bi, bt = features.shape[0], mus.shape[0]
        c, h, w = features.shape[1:]
        tiled = mus.to(features.dtype)[:, :, None, None].expand(-1, -1, h, w)
        img_half = torch.cat([features, features.new_zeros(bi, self.condition_dim, h, w)], dim=1)
        txt_half = torch.cat([features.new_zeros(bt, c, h, w), tiled], dim=1)
        both = first(torch.cat([img_half, txt_half], dim=0))
        a, t = both[:bi], both[bi:] - first.bias.to(both.dtype)[:, None, None]
        pre = (a[:, None] + t[None]).reshape(bi * bt, c, h, w)  # [B_img · B_cond, C, h, w]
        return last(act(pre)).view(bi, bt)

    def uncond_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Real/fake logit ``[B]`` regardless of text."""
        if self.uncond_head is None:
            raise RuntimeError("this discriminator has no unconditional head (uncond_head=False)")
        return self.uncond_head(features).flatten()

    def forward(self, x: torch.Tensor, mu: torch.Tensor | None = None) -> torch.Tensor:
        """``D(x, μ)`` conditional logit, or the unconditional one when ``mu`` is None."""
        if x.shape[-1] != self.image_size:
            raise ValueError(f"discriminator expects {self.image_size}px images, got {tuple(x.shape)}")
        features = self.encode(x)
        return self.uncond_logits(features) if mu is None else self.cond_logits(features, mu)


def stackgan_discriminator(config: StackGanConfig) -> StackGanDiscriminator:
    """The discriminator of ``config``'s last stage: Stage-I D (conditional logit only) at ``stage1_size``, or
    Stage-II D at ``stage2_size`` (plus the unconditional logit with ``uncond_head``, as the PyTorch release)."""
    size = config.stage2_size if config.stage == 2 else config.stage1_size
    uncond = config.uncond_head and config.stage == 2
    return StackGanDiscriminator(
        size,
        config.df_dim,
        config.condition_dim,
        uncond_head=uncond,
        d_norm=config.d_norm,
        d_text=config.d_text,
        text_dim=config.text_dim if config.d_condition == "text" else 0,
    )


# --------------------------------------------------------------------------------------------------- generators
class StageIGenerator(nn.Module):
    """Stage-I G (StackGAN §3.3): sketch shape and colours at ``stage1_size`` from z and ĉ₀."""

    def __init__(self, config: StackGanConfig) -> None:
        super().__init__()
        self.config = config
        ngf = config.gf_dim * 8
        self.ngf = ngf
        self.ca = ConditioningAugmentation(config.text_dim, config.condition_dim)
        self.fc = nn.Sequential(
            nn.Linear(config.z_dim + config.condition_dim, ngf * 16, bias=False),
            nn.BatchNorm1d(ngf * 16),
            nn.ReLU(inplace=True),
        )
        ups, ch = [], ngf
        for _ in range(_log2(config.stage1_size // 4)):
            ups.append(UpBlock(ch, ch // 2, fused=config.fused_upsample))
            ch //= 2
        self.upsample = nn.Sequential(*ups)
        self.to_image = nn.Sequential(conv3x3(ch, 3), nn.Tanh())
        init_weights(self)

    def forward(
        self,
        z: torch.Tensor,
        text_emb: torch.Tensor,
        eps: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(image [B,3,S1,S1], μ₀, log σ₀²)``."""
        image, _, mu, logvar = self.draw(z, text_emb, eps, generator)
        return image, mu, logvar

    def draw(
        self,
        z: torch.Tensor,
        text_emb: torch.Tensor,
        eps: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(image, ĉ₀, μ₀, log σ₀²)``: also the code the image was drawn from."""
        c, mu, logvar = self.ca(text_emb, eps, generator)
        h = self.fc(torch.cat([z, c.to(z.dtype)], dim=1)).view(-1, self.ngf, 4, 4)
        return self.to_image(self.upsample(h)), c, mu, logvar


class StageIIGenerator(nn.Module):
    """Stage-II G (StackGAN §3.4): refine a Stage-I image with the text, adding detail up to ``stage2_size``.

    Takes the (detached) Stage-I image and φ_t; has its own CA (ĉ, not ĉ₀), or with ``stage2_condition="stage1"``
    none: it is handed the code ĉ₀ that drew the Stage-I image (beyond the paper: under the KL term Stage-II's own μ
    collapses to 0 for every caption, and a G that cannot read the text cannot repair what Stage-I drew wrong).
    """

    def __init__(self, config: StackGanConfig) -> None:
        super().__init__()
        self.config = config
        ngf = config.gf_dim
        self.ca: ConditioningAugmentation | None = None
        if config.stage2_condition == "own":
            self.ca = ConditioningAugmentation(config.text_dim, config.condition_dim)
        self.encoder = nn.Sequential(
            conv3x3(3, ngf),
            nn.ReLU(inplace=True),
            nn.Conv2d(ngf, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(ngf * 2, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(inplace=True),
        )
        self.joint = nn.Sequential(
            conv3x3(config.condition_dim + ngf * 4, ngf * 4), nn.BatchNorm2d(ngf * 4), nn.ReLU(inplace=True)
        )
        self.residual = nn.Sequential(*[ResBlock(ngf * 4) for _ in range(config.r_num)])
        ups, ch = [], ngf * 4
        for _ in range(_log2(config.stage2_size // (config.stage1_size // 4))):
            if ch < 2:
                raise T2IError("model.gf_dim is too small for this Stage-II size", hint="raise model.gf_dim")
            ups.append(UpBlock(ch, ch // 2, fused=config.fused_upsample, mode=config.stage2_upsample))
            ch //= 2
        self.upsample = nn.Sequential(*ups)
        self.skip: nn.Sequential | None = None
        if config.stage2_skip:  # [h, up(x₁)] → h at full size: the pixel-exact edges of the Stage-I image
            self.skip = nn.Sequential(conv3x3(ch + 3, ch), nn.BatchNorm2d(ch), nn.ReLU(inplace=True))
        self.to_image = nn.Sequential(conv3x3(ch, 3), nn.Tanh())
        init_weights(self)
        self.residual_output = config.stage2_residual
        if self.residual_output:
            nn.init.zeros_(self.to_image[0].weight)

    def forward(
        self,
        stage1_image: torch.Tensor,
        text_emb: torch.Tensor,
        eps: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        condition: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Return ``(image [B,3,S2,S2], μ, log σ²)``; μ and log σ² are None without an own CA, which takes
        ``condition`` (Stage-I's ĉ₀) instead."""
        h = self.encoder(stage1_image)
        if self.ca is not None:
            c, mu, logvar = self.ca(text_emb, eps, generator)
        elif condition is None:
            raise ValueError("this Stage-II (stage2_condition='stage1') needs Stage-I's code ĉ₀ as `condition`")
        else:
            c, mu, logvar = condition, None, None
        c = c.to(h.dtype)[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        h = self.upsample(self.residual(self.joint(torch.cat([c, h], dim=1))))
        up = None
        if self.residual_output or self.skip is not None:
            up = F.interpolate(stage1_image.float(), size=self.config.stage2_size, mode="bilinear", align_corners=False)
        if self.skip is not None:
            h = self.skip(torch.cat([h, up.to(h.dtype)], dim=1))
        if not self.residual_output:
            return self.to_image(h), mu, logvar
        base = torch.atanh(up.clamp(-RESIDUAL_CLAMP, RESIDUAL_CLAMP))  # tanh⁻¹ of Stage-I's (tanh) output
        return torch.tanh(base + self.to_image[0](h).float()), mu, logvar


@dataclass
class StackGanGeneratorOutput:
    images: list[torch.Tensor]  # coarse → fine
    mus: list[torch.Tensor]  # one per CA (Stage-I, then Stage-II's own if it has one)
    logvars: list[torch.Tensor]


@register_pretrained(StackGanConfig)
class StackGanGenerator(Pretrained, nn.Module):
    """The StackGAN generator the pipeline sees: Stage-I alone (``stage=1``) or Stage-I + Stage-II (``stage=2``).

    ``forward(z, text_emb) -> [stage1_image]`` or ``[stage1_image, stage2_image]`` (coarse → fine). With
    ``stage=2`` the Stage-I part is frozen (no gradients, eval-mode BN) as in the paper.
    ``use_ca_mean = True`` turns CA sampling off (ĉ = μ) in every stage.
    """

    def __init__(self, config: StackGanConfig) -> None:
        super().__init__()
        self.config = config
        self.text_dim = config.text_dim
        self.z_dim = config.z_dim
        self.stage1 = StageIGenerator(config)
        self.stage2: StageIIGenerator | None = StageIIGenerator(config) if config.stage == 2 else None
        if self.stage2 is not None:
            self.stage1.requires_grad_(False)
        self.train()

    @property
    def use_ca_mean(self) -> bool:
        return not self.stage1.ca.sample

    @use_ca_mean.setter
    def use_ca_mean(self, value: bool) -> None:
        for m in self.modules():
            if isinstance(m, ConditioningAugmentation):
                m.sample = not value

    def train(self, mode: bool = True) -> StackGanGenerator:
        super().train(mode)
        if self.stage2 is not None:
            self.stage1.eval()  # frozen Stage-I keeps its running BN statistics
        return self

    @property
    def image_sizes(self) -> list[int]:
        sizes = [self.config.stage1_size]
        return [*sizes, self.config.stage2_size] if self.stage2 is not None else sizes

    @property
    def ca_noise_dims(self) -> list[int]:
        """Sizes of the ε each call draws, one per sampling CA (Stage-I, then Stage-II); [] with ``use_ca_mean``."""
        cas = [self.stage1.ca, self.stage2.ca if self.stage2 is not None else None]
        return [ca.condition_dim for ca in cas if ca is not None and ca.sample]

    def generate(
        self,
        z: torch.Tensor,
        text_emb: torch.Tensor,
        eps: list[torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> StackGanGeneratorOutput:
        """All stages with their CA statistics.

        ε of each CA comes from ``eps`` (one ``[B, Ng]`` tensor per CA, Stage-I first), else from ``generator``,
        else from the global RNG (as the release does).
        """
        if z.shape[1] != self.z_dim or text_emb.shape[1] != self.text_dim:
            raise ValueError(
                f"StackGAN generator wants z [B,{self.z_dim}] and text [B,{self.text_dim}], "
                f"got {tuple(z.shape)} and {tuple(text_emb.shape)}"
            )
        e: list[torch.Tensor | None] = [*(eps or []), None, None]
        if self.stage2 is None:
            img, mu, logvar = self.stage1(z, text_emb, e[0], generator)
            return StackGanGeneratorOutput([img], [mu], [logvar])
        with torch.no_grad():
            img1, c1, mu1, lv1 = self.stage1.draw(z, text_emb, e[0], generator)
        if self.stage2.ca is None:  # Stage-II reads the code that drew its Stage-I image: one CA in all
            img2 = self.stage2(img1.detach(), text_emb, condition=c1.detach())[0]
            return StackGanGeneratorOutput([img1, img2], [mu1], [lv1])
        img2, mu2, lv2 = self.stage2(img1.detach(), text_emb, e[1], generator)
        return StackGanGeneratorOutput([img1, img2], [mu1, mu2], [lv1, lv2])

    def forward(
        self,
        z: torch.Tensor,
        text_emb: torch.Tensor,
        generator: torch.Generator | None = None,
        eps: list[torch.Tensor] | None = None,
    ) -> list[torch.Tensor]:
        return self.generate(z, text_emb, eps, generator).images
