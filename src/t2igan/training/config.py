"""The training configuration: a tree of typed dataclasses, loaded from YAML or a named preset plus overrides.

    cfg = load_config("reed_cpu", overrides=["optim.lr=1e-4", "train.steps=200"])

A preset name ``NAME`` is the file ``t2igan/configs/NAME.yaml`` shipped with the package. Unknown keys are an error
that names the key and lists the valid ones. The ``model`` section is special: besides ``name`` (the model family,
see ``training.system.SYSTEMS``) and ``preset``, any key is an architecture option that is validated against the
family's config dataclass (e.g. ``ReedConfig``) when the system is built.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from t2igan.utils.config import EXTRA_KEYS, build_config
from t2igan.utils.errors import T2IError
from t2igan.utils.io import atomic_write_text

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
VARIANTS = ("gan", "gan-cls", "gan-int", "gan-int-cls")


@dataclass
class DataConfig:
    cache: str | None = None  # prepared cache folder (`prepare_cache`), or --data on the command line
    size: int = 64  # image size served to the model (must be one of the cache's sizes)
    split: str = "train"  # Reed: train+val classes; the test classes stay unseen
    embeddings: str | None = None  # embedding key in the cache; None = the only one there
    k_avg: int = 4  # Reed et al.: the embeddings of 4 random captions of the image are averaged
    flip: bool = True  # random horizontal flip (the paper also random-crops 76 → 64)
    translate: float = 0.0  # DiffAugment translation (Zhao et al. 2020) of real and fake images for D: max shift / side
    text_encoder: str | None = None  # encoder folder/name exported with the model (else: "precomputed" marker)


@dataclass
class ModelConfig:
    name: str = "reed"  # model family: a key of training.system.SYSTEMS
    preset: str | None = "paper"  # architecture preset of the family (reed: paper | port | cpu | tiny)
    init: str | None = None  # pretrained folder whose weights start the run (`t2igan convert` output, an export)
    stage1: str | None = None  # StackGAN Stage-II: the Stage-I run / pretrained folder to load and freeze
    # other keys of the `model:` section (validated against the family's config when the system is built)
    params: dict[str, Any] = field(default_factory=dict, metadata={EXTRA_KEYS: True})


@dataclass
class LossConfig:
    variant: str = "gan-int-cls"  # gan | gan-cls | gan-int | gan-int-cls (Reed et al. 2016)
    kind: str = "bce"  # bce (Reed: non-saturating BCE) | hinge (DF-GAN)
    cls_weight: float = 0.5  # λ in real + λ·wrong + (1−λ)·fake for the -cls variants (released code: 0.5)
    int_beta: float = 0.5  # GAN-INT: β·t1 + (1−β)·t2; the released code uses midpoints
    int_weight: float = 1.0  # GAN-INT: weight of the interpolated half batch in the G loss (released code: 1)
    int_fraction: float = 0.5  # GAN-INT: interpolated samples per real sample (released code: half a batch)
    ma_gp: float = 0.0  # DF-GAN matching-aware gradient penalty weight k (DF-GAN: 2); 0 = off
    ma_gp_power: float = 6.0  # DF-GAN: p = 6
    ms_weight: float = 0.0  # mode-seeking term weight (MSGAN, Mao et al. 2019): z must change the image; 0 = off
    contrastive: float = 0.0  # image-text contrastive weight in D (real) and G (fake) (XMC-GAN 2021); 0 = off
    # its temperature; None = the family's: 0.1 for Reed's cosine scores, 1.0 for StackGAN's D logits
    contrastive_tau: float | None = None
    reuse_d_fake: bool = True  # G's loss uses D's fake logits of the D step (as the released Lua code does)
    kl_weight: float = 2.0  # StackGAN: λ of the CA KL term in the G losses (Eqs. (4), (6)); release 2.0
    uncond_weight: float = 1.0  # StackGAN++: weight of the unconditional D/G terms (release COEFF.UNCOND_LOSS)
    color_lambda: float = 0.0  # StackGAN++ colour consistency λ₁ (λ₂ = 5λ₁); 0 = off; 50 in the uncond. configs
    r1: float = 0.0  # R1 (Mescheder et al. 2018): γ/2·E‖∇_x D(x, μ)‖² on real matching pairs; γ, 0 = off
    r1_every: int = 1  # lazy R1 (StyleGAN2): applied every k D steps, scaled by k
    instance_noise: float = 0.0  # σ of N(0, σ²) added to every image D sees (real and fake); 0 = off
    instance_noise_steps: int = 0  # σ falls linearly to 0 over this many steps; 0 = constant
    d_on_stage1_mu: bool = False  # StackGAN Stage-II: D conditions on the frozen Stage-I CA's μ₀, not Stage-II's μ
    # StackGAN Stage-II: weight of an L1 term that refines half the batch's *real* images from their Stage-I size back
    # to the real image (paired super-resolution next to the adversarial terms; beyond the papers); 0 = off
    real_sr: float = 0.0
    # StackGAN: weight of AttnGAN's sentence-level matching loss (DAMSM, Xu et al. 2018, Eqs. (10)–(11)) on G's images,
    # scored by the DS-SJE image encoder saved with the caption encoder (``loss.sje_encoder``); 0 = off
    sje_match: float = 0.0
    sje_encoder: str | None = None  # the text-encoder folder (with image_encoder/) that made data.embeddings
    sje_gamma: float = 10.0  # AttnGAN's γ₃: the cosine scores are multiplied by it before the softmax
    # StackGAN Stage-II: weight of G's term from a second critic, Stage-I's trained D (read from model.stage1's run),
    # which judges Stage-II's image resized to Stage-I's size and trains on beside Stage-II's own D; 0 = off
    stage1_d: float = 0.0
    # StackGAN: weight of Durall et al. 2020's spectral regularisation on G's last-stage images, 2-D (losses/spectral):
    # mean |log P_fake − log P_real| of the batch-mean power spectra; 0 = off
    spectral: float = 0.0

    def contrastive_temperature(self, family_default: float) -> float:
        """``contrastive_tau``, or the model family's default when it is None (its scores set the scale)."""
        return family_default if self.contrastive_tau is None else self.contrastive_tau

    @property
    def uses_cls(self) -> bool:
        return self.variant.endswith("cls")

    @property
    def uses_int(self) -> bool:
        return self.variant.startswith("gan-int")


@dataclass
class OptimConfig:
    lr: float = 2e-4  # Adam, Reed et al.: 2e-4 for G and D
    lr_d: float | None = None  # D's lr if different (DF-GAN: G 1e-4, D 4e-4)
    beta1: float = 0.5
    beta2: float = 0.999
    decay_every_epochs: float = 100.0  # Reed: lr × 0.5 every 100 epochs; 0 = constant lr
    decay_factor: float = 0.5
    ema: float = 0.0  # EMA decay of G's weights for sampling (StackGAN++: 0.999); 0 = off
    ema_start: int = 0  # steps before the EMA starts averaging (it copies G until then)
    g_warmup_steps: int = 0  # G's lr rises linearly to `lr` over the first N steps (D at full lr); 0 = off


@dataclass
class TrainLoopConfig:
    batch_size: int = 64  # GLOBAL batch (split over ranks under DDP)
    epochs: float | None = 600.0  # Reed: 600 epochs; ignored when `steps` is set
    steps: int | None = None
    max_minutes: float | None = None  # wall-clock budget: stop cleanly (checkpoint, samples, export) when reached
    max_cpu_minutes: float | None = None  # the same in CPU time of this process (all threads): other load cannot
    #                                       shorten it — for comparing runs on a shared machine; the training-time
    #                                       evaluation (callbacks) is not counted, as in train_seconds
    precision: str = (
        "fp32"  # fp32 | bf16 (autocast) | fp16 (autocast + GradScaler; CUDA) | auto (native bf16, else fp32)
    )
    channels_last: bool = True
    compile: bool = False  # torch.compile the nets (measure first; see docs/training.md)
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps (checked by `t2igan train` before it starts)
    threads: int | None = None  # torch intra-op threads; None = torch's default
    log_every: int = 10  # metrics.jsonl + TensorBoard scalars
    sample_every: int = 500  # fixed-z sample grid (samples/ and TensorBoard)
    sample_n: int = 8  # captions in the grid (rows); 8 z per caption (columns)
    ckpt_every: int = 1000
    keep_ckpts: int = 3
    max_bad_steps: int = 20  # consecutive non-finite steps before training stops with an error
    max_skipped_share: float = 0.5  # stop if more of the last 20 steps were skipped as non-finite (divergence.py)
    max_weight_growth: float = 1000.0  # stop if a network's weight RMS grows more than this many times (divergence.py)
    progress: bool = True  # tqdm bar
    tensorboard: bool = True
    export: bool = True  # write run/pretrained/ at the end
    eval_every: int = 0  # evaluate (attribute accuracy, FID_eval on the validation subset) every N steps; 0 = off
    eval_minutes: list[float] = field(default_factory=list)  # … and when training time passes these minutes
    eval_n: int = 500  # captions per split for the training-time evaluation
    eval_evaluator: str | None = None  # evaluator folder for it (default: <cache>/evaluator)
    eval_select: str = "attr_acc"  # what "best" means: attr_acc (higher) | fid_evaluator (lower)
    export_best: bool = True  # export the best evaluated checkpoint (else the last), when evaluation is on


@dataclass
class DebugConfig:
    nan_steps: list[int] = field(default_factory=list)  # steps whose batch is poisoned with NaN (fault tests)


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainLoopConfig = field(default_factory=TrainLoopConfig)
    debug: DebugConfig = field(default_factory=DebugConfig)
    seed: int = 0  # every random source derives from it
    run_dir: str = "runs/reed"  # checkpoints/, samples/, logs/, pretrained/ go here

    def validate(self) -> TrainConfig:
        """Check values that dataclass types cannot express (ranges, names, finiteness); return self.

        Every problem is a one-line `T2IError` naming the key, e.g. ``train.steps=-5 must be ≥ 1``.
        """
        _check_finite(self, "")
        _check_ranges(self)
        if self.loss.variant not in VARIANTS:
            raise T2IError(f"loss.variant={self.loss.variant!r} is unknown", hint=f"choose from {list(VARIANTS)}")
        if self.loss.kind not in ("bce", "hinge"):
            raise T2IError(f"loss.kind={self.loss.kind!r} is unknown", hint="choose bce (Reed) or hinge (DF-GAN)")
        if self.train.precision not in ("fp32", "bf16", "fp16", "auto"):
            raise T2IError(
                f"train.precision={self.train.precision!r} is unknown", hint="choose fp32, bf16, fp16 (GPU) or auto"
            )
        if self.train.batch_size < 2:
            raise T2IError("train.batch_size must be at least 2 (BatchNorm, GAN-INT pairs)")
        if self.train.steps is None and self.train.epochs is None:
            raise T2IError("set train.steps or train.epochs")
        if not 0.0 <= self.optim.ema < 1.0:
            raise T2IError(f"optim.ema={self.optim.ema} must be in [0, 1)")
        if self.train.eval_select not in ("attr_acc", "fid_evaluator"):
            raise T2IError(
                f"train.eval_select={self.train.eval_select!r} is unknown", hint="choose attr_acc or fid_evaluator"
            )
        if self.train.eval_every < 0 or self.train.eval_n < 2:
            raise T2IError("train.eval_every must be ≥ 0 and train.eval_n ≥ 2")
        if not 0.0 < self.train.max_skipped_share <= 1.0:
            raise T2IError(f"train.max_skipped_share={self.train.max_skipped_share} must be in (0, 1]")
        if not self.train.max_weight_growth > 1.0:
            raise T2IError(f"train.max_weight_growth={self.train.max_weight_growth} must be > 1")
        nonneg = (
            "kl_weight", "uncond_weight", "color_lambda", "r1", "instance_noise", "ma_gp", "real_sr", "sje_match",
            "stage1_d", "spectral",
        )  # fmt: skip
        for name in nonneg:
            if getattr(self.loss, name) < 0:
                raise T2IError(f"loss.{name}={getattr(self.loss, name)} must be ≥ 0")
        if self.loss.r1_every < 1 or self.loss.instance_noise_steps < 0:
            raise T2IError("loss.r1_every must be ≥ 1 and loss.instance_noise_steps ≥ 0")
        for name in ("log_every", "sample_every", "ckpt_every", "keep_ckpts", "max_bad_steps"):
            if getattr(self.train, name) < 1:
                raise T2IError(f"train.{name} must be ≥ 1")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        params = d["model"].pop("params")
        d["model"].update(params)  # written back flat, as users write it
        return d

    def save_yaml(self, path: str | Path) -> None:
        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))


DEVICE_NAMES = ("auto", "cpu", "cuda", "mps")  # plus cuda:N


def is_device_name(spec: str) -> bool:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (availability is checked where the device is used)."""
    if spec in DEVICE_NAMES:
        return True
    return spec.startswith("cuda:") and spec[5:].isdigit()


def _check_finite(node: Any, where: str) -> None:
    """Every float of the config tree is finite (``.inf``/``.nan`` from YAML or --set are never meant)."""
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        key = f"{where}.{f.name}" if where else f.name
        if dataclasses.is_dataclass(value):
            _check_finite(value, key)
        elif isinstance(value, float) and not math.isfinite(value):
            raise T2IError(f"{key}={value} must be a finite number")


# (section, key) → (lowest allowed, whether the lowest is allowed itself, highest or None); None values pass.
_RANGES: dict[tuple[str, str], tuple[float, bool, float | None]] = {
    ("data", "size"): (4, True, None),
    ("data", "k_avg"): (1, True, None),
    ("optim", "lr"): (0, False, None),
    ("optim", "lr_d"): (0, False, None),
    ("optim", "beta1"): (0, True, 1),
    ("optim", "beta2"): (0, True, 1),
    ("optim", "decay_every_epochs"): (0, True, None),
    ("optim", "decay_factor"): (0, False, None),
    ("optim", "ema_start"): (0, True, None),
    ("optim", "g_warmup_steps"): (0, True, None),
    ("loss", "cls_weight"): (0, True, 1),
    ("loss", "int_beta"): (0, True, 1),
    ("loss", "int_weight"): (0, True, None),
    ("loss", "int_fraction"): (0, True, None),
    ("loss", "ma_gp"): (0, True, None),
    ("loss", "ma_gp_power"): (0, False, None),
    ("loss", "contrastive"): (0, True, None),
    ("loss", "contrastive_tau"): (0, False, None),
    ("loss", "sje_gamma"): (0, False, None),
    ("train", "steps"): (1, True, None),
    ("train", "epochs"): (0, False, None),
    ("train", "max_minutes"): (0, False, None),
    ("train", "max_cpu_minutes"): (0, False, None),
    ("train", "threads"): (1, True, None),
    ("train", "sample_n"): (1, True, None),
}


def _check_ranges(cfg: TrainConfig) -> None:
    for (section, key), (lo, lo_ok, hi) in _RANGES.items():
        value = getattr(getattr(cfg, section), key)
        if value is None:
            continue
        if value < lo or (value == lo and not lo_ok) or (hi is not None and value > hi):
            lower = f"≥ {lo}" if lo_ok else f"> {lo}"
            bound = f"{lower} and ≤ {hi}" if hi is not None else lower
            raise T2IError(f"{section}.{key}={value} is out of range: it must be {bound}")
    if cfg.optim.beta2 >= 1 or cfg.optim.beta1 >= 1:
        raise T2IError("optim.beta1 and optim.beta2 must be < 1 (Adam's moment decays)")
    if not 0 <= cfg.seed < 2**64:
        raise T2IError(f"seed={cfg.seed} must be in 0 … 2^64-1")
    if not is_device_name(cfg.train.device):
        raise T2IError(f"train.device={cfg.train.device!r} is unknown", hint="choose auto, cpu, cuda, cuda:N or mps")


# ---------------------------------------------------------------------------------------------------------------
# Loading: YAML/preset → dict → dataclasses, with overrides "a.b=value" parsed as YAML scalars.


def preset_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def _read_yaml(path_or_preset: str | Path) -> tuple[dict[str, Any], Path]:
    p = Path(path_or_preset)
    if not p.is_file():
        candidate = CONFIG_DIR / f"{path_or_preset}.yaml"
        if candidate.is_file():
            p = candidate
        else:
            raise T2IError(
                "no such config file or preset",
                path=path_or_preset,
                hint=f"presets: {', '.join(preset_names()) or 'none'}",
            )
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise T2IError(f"not valid YAML ({str(e).splitlines()[0]})", path=p) from None
    except UnicodeDecodeError:  # a binary file passed as the config: one line, not a traceback
        raise T2IError("not a text file (a config is UTF-8 YAML)", path=p) from None
    if not isinstance(raw, dict):
        raise T2IError("a config file must be a mapping of sections", path=p)
    return raw, p


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        nxt = node.setdefault(k, {})
        if not isinstance(nxt, dict):
            raise T2IError(f"cannot set {dotted!r}: {k!r} is not a section")
        node = nxt
    node[keys[-1]] = value


def parse_override(item: str) -> tuple[str, Any]:
    """``"optim.lr=1e-4"`` → ``("optim.lr", 0.0001)``; the value is parsed as YAML (numbers, bools, lists, null)."""
    if "=" not in item:
        raise T2IError(f"bad override {item!r}", hint="write key=value, e.g. optim.lr=1e-4")
    key, text = item.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # YAML 1.1 reads "1e-4" as a string; accept it as a number
            value = float(value) if any(c in value for c in ".eE") and not value.isalpha() else value
    return key, value


def config_from_dict(raw: dict[str, Any]) -> TrainConfig:
    return build_config(TrainConfig, raw).validate()


def load_config(path_or_preset: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Load a config from a YAML file or a preset name (``t2igan/configs/<name>.yaml``), apply ``key=value``
    overrides, validate. ``None`` starts from the defaults (the paper's GAN-INT-CLS)."""
    raw: dict[str, Any] = {}
    if path_or_preset is not None:
        raw, _ = _read_yaml(path_or_preset)
    for item in overrides:
        key, value = parse_override(item)
        _set_path(raw, key, value)
    return config_from_dict(raw)
