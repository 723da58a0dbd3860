"""The `GanSystem` interface: what the Trainer needs from a model family, and the registry of families.

A system owns its networks, optimisers and EMA and knows its losses; the Trainer owns everything else (data order,
logging, checkpoints, signals, DDP). Families register lazily by ``"module:Class"`` (like the CLI's subcommands), so
one family's import problem never breaks another:

    SYSTEMS["stackgan"] = "t2igan.training.stackgan_system:StackGanSystem"

Contract for implementers (see ``ReedSystem`` or ``StackGanSystem`` for complete ones):

- ``config_class``: the family's architecture dataclass; ``model:`` keys of the YAML are validated against it.
- ``honoured_keys``: the dotted config keys of the family-specific sections (``loss.*``, ``optim.*`` but the lr
  schedule, ``train.precision`` / ``channels_last`` / ``compile``, ``model.init`` / ``stage1``) the family uses.
  Any other of those keys set to a non-default value is refused when the system is built (`check_config`), so a
  setting is never silently ignored. ``data.*``, ``train.*`` and ``debug.*`` belong to the Trainer and are used by
  every family.
- ``__init__(cfg, text_dim, device)``; ``train_step(batch, step) -> dict[str, float]`` — performs one D and one G
  update; must include ``"nonfinite": 1.0`` in its result if it skipped the update because of NaN/Inf.
- ``sample(z, text_emb)`` under ``torch.inference_mode`` without changing any state (EMA G if enabled).
- ``nets()`` → the ``nn.Module`` s that are saved (state_dict keys ``<name>.<param>``), ``optimizers()`` likewise.
- ``generator_for_export()`` → the module written to ``pretrained/generator`` (must have a dataclass ``.config``).
- ``grad_sync``: set by the Trainer under DDP to all-reduce gradient lists before each optimiser step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from t2igan.utils.errors import T2IError
from t2igan.utils.precision import native_bf16
from t2igan.utils.seed import derive_seed, torch_generator

if TYPE_CHECKING:
    from t2igan.training.config import TrainConfig

# model.name → "module:Class". Other families add one line each.
SYSTEMS: dict[str, str] = {
    "reed": "t2igan.training.reed_system:ReedSystem",
    "stackgan": "t2igan.training.stackgan_system:StackGanSystem",
    "stackgan++": "t2igan.training.stackganpp_system:StackGanPPSystem",
}


# Devices where ``train.precision=fp16`` (autocast + a loss-scaling GradScaler) is offered: GPUs. CPUs use bf16.
FP16_DEVICE_TYPES = frozenset({"cuda"})


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → ``bf16`` where bf16 is native (CPUs with AVX512-BF16 or AMX, GPUs that support it), else ``fp32``.

    On CPUs without it bf16 is emulated and slower than fp32. ``fp16`` (for GPUs without bf16) is kept on a CUDA
    device and is a one-line error elsewhere."""
    if precision == "fp16" and device.type not in FP16_DEVICE_TYPES:
        raise T2IError(
            f"train.precision=fp16 needs a CUDA GPU (this run is on {device.type})",
            hint="use train.precision=bf16 or auto on a CPU (fp16 is for GPUs without bf16)",
        )
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``train.precision`` on ``device``: bfloat16, float16 or None (fp32)."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(resolve_precision(precision, device))


def get_system_class(name: str) -> type[GanSystem]:
    target = SYSTEMS.get(name)
    if target is None:
        raise T2IError(f"unknown model.name {name!r}", hint=f"choose from {sorted(SYSTEMS)}")
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


# Keys the Trainer (or `GanSystem.set_epoch`) uses for every family; everything else is family-specific.
_TRAINER_SECTIONS = ("data.", "train.", "debug.")
_FAMILY_KEYS_IN_TRAINER_SECTIONS = frozenset({"train.precision", "train.channels_last", "train.compile"})
_COMMON_KEYS = frozenset(
    {
        "seed",
        "run_dir",
        "model.name",
        "model.preset",
        "optim.decay_every_epochs",
        "optim.decay_factor",
        "optim.g_warmup_steps",
    }
)


def check_config(cfg: TrainConfig, honoured: frozenset[str] | set[str]) -> None:
    """Refuse a family-specific key set to a non-default value that the family does not use (one-line error).

    ``model.params`` (architecture options) are checked by the family's config dataclass instead.
    """
    from t2igan.training.config import TrainConfig

    default = _flatten(TrainConfig())
    for key, value in _flatten(cfg).items():
        if key in honoured or key in _COMMON_KEYS or value == default.get(key, value):
            continue
        if key.startswith(_TRAINER_SECTIONS) and key not in _FAMILY_KEYS_IN_TRAINER_SECTIONS:
            continue
        raise T2IError(f"{key} is not used by model {cfg.model.name}", hint="remove it from the config")


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            out.update(_flatten(value, f"{key}."))
        elif key != "model.params":
            out[key] = value
    return out


class GanSystem(ABC):
    """A GAN family's networks, optimisers and training step."""

    config_class: ClassVar[type]
    # Family-specific config keys this family uses (see the module docstring); others must keep their defaults.
    honoured_keys: ClassVar[frozenset[str]] = frozenset()
    # Image sizes the system needs in a batch; None = just `data.size` (batch["image"]).
    image_sizes: ClassVar[tuple[int, ...] | None] = None
    # The EMA generator that samples and is exported, if the family keeps one (`refresh_generator_statistics`).
    G_ema: nn.Module | None = None

    def __init__(self, cfg: TrainConfig, text_dim: int, device: torch.device) -> None:
        check_config(cfg, self.honoured_keys)
        self.cfg = cfg
        self.text_dim = text_dim
        self.device = torch.device(device)
        self.rank = 0
        self.grad_sync: Callable[[list[torch.Tensor]], None] | None = None
        self.amp_dtype = autocast_dtype(cfg.train.precision, self.device)
        # fp16 needs loss scaling (Micikevicius et al. 2018): gradients are computed for scale·loss, unscaled before
        # the finiteness check and the optimiser step; an overflow skips the update and halves the scale.
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp_dtype == torch.float16 else None

    # -- what each family implements -------------------------------------------------------------------------------
    @abstractmethod
    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]: ...

    @abstractmethod
    def sample(self, z: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor | list[torch.Tensor]: ...

    @abstractmethod
    def nets(self) -> dict[str, nn.Module]: ...

    @abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...

    @abstractmethod
    def generator_for_export(self) -> nn.Module: ...

    @property
    @abstractmethod
    def z_dim(self) -> int: ...

    # -- shared behaviour ------------------------------------------------------------------------------------------
    def seeded_init(self) -> contextlib.AbstractContextManager:
        """Build networks inside this: their initial weights come from ``derive_seed(seed, "init")``, not from
        whatever state the global RNG is in (restored afterwards)."""
        return _seeded(derive_seed(self.cfg.seed, "init"))

    def step_generator(self, step: int, purpose: str = "train-step") -> torch.Generator:
        """The RNG of one training step: a pure function of (seed, step, rank), which makes resume exact."""
        return torch_generator(derive_seed(self.cfg.seed, purpose, step, self.rank))

    def set_epoch(self, epoch: float, step: int | None = None) -> None:
        """Step-wise lr decay (Reed et al.: × 0.5 every 100 epochs), a pure function of the epoch (and step).

        ``optim.g_warmup_steps = N``: G's lr is further scaled by min(1, (step + 1) / N), while D trains at its
        full lr from the start, so that G follows the gradients of a D that has begun to learn (Adam takes steps
        of about lr whatever the gradient's size, so an untrained D's noise moves G as far as a trained D's signal).
        """
        o = self.cfg.optim
        factor = 1.0 if o.decay_every_epochs <= 0 else o.decay_factor ** math.floor(epoch / o.decay_every_epochs)
        warm = 1.0 if o.g_warmup_steps <= 0 or step is None else min(1.0, (step + 1) / o.g_warmup_steps)
        for name, opt in self.optimizers().items():
            is_d = name.startswith("opt_d")
            base = o.lr_d if (is_d and o.lr_d is not None) else o.lr
            for group in opt.param_groups:
                group["lr"] = base * factor * (warm if name.startswith("opt_g") else 1.0)

    def sync_grads(self, params: list[nn.Parameter]) -> None:
        if self.grad_sync is not None:
            self.grad_sync([p.grad for p in params if p.grad is not None])

    def state_dict(self) -> dict[str, Any]:
        state = {
            "nets": {k: m.state_dict() for k, m in self.nets().items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
        }
        if self.scaler is not None:  # fp16: the loss scale and its growth tracker (exact resume)
            state["grad_scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, m in self.nets().items():
            m.load_state_dict(state["nets"][k])
        for k, o in self.optimizers().items():
            o.load_state_dict(state["optimizers"][k])
            _match_param_layout(o)
        if self.scaler is not None and state.get("grad_scaler"):
            self.scaler.load_state_dict(state["grad_scaler"])

    # -- step helpers (used by the families' train_step) --------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 / fp16 autocast when ``train.precision`` resolves to one of them on this device, else nothing."""
        if self.amp_dtype is not None:
            return torch.autocast(self.device.type, dtype=self.amp_dtype)
        return contextlib.nullcontext()

    # -- fp16 loss scaling (no-ops without a scaler) -----------------------------------------------------------
    def scaled(self, loss: torch.Tensor) -> torch.Tensor:
        """What to backpropagate: ``scale·loss`` under fp16, else ``loss``."""
        return self.scaler.scale(loss) if self.scaler is not None else loss

    def unscale(self, opt: torch.optim.Optimizer) -> None:
        """Divide ``opt``'s gradients by the loss scale (before any finiteness check or step)."""
        if self.scaler is not None:
            self.scaler.unscale_(opt)

    def update_scale(self) -> None:
        """After the step: halve the scale if an unscaled gradient was not finite, grow it after a run of good steps."""
        if self.scaler is not None:
            self.scaler.update()

    def loss_scale_overflow(self, *losses: torch.Tensor) -> bool:
        """Whether a skipped fp16 update was a loss-scale overflow (finite losses, non-finite scaled gradients) rather
        than a non-finite step: it costs one update and halves the scale, and does not count as a bad step while the
        scale is above 1. Under DDP only the (identical) gradients decide, as in `update_is_finite`."""
        if self.scaler is None or self.scaler.get_scale() <= 1.0:
            return False
        return self.grad_sync is not None or all(bool(torch.isfinite(v)) for v in losses)

    def optimizer_step(
        self,
        loss: torch.Tensor,
        params: list[nn.Parameter],
        opt: torch.optim.Optimizer,
        modules: Sequence[nn.Module],
        saved: list[torch.Tensor],
    ) -> bool:
        """Backward ``loss`` into ``params`` only, all-reduce them (DDP), and step ``opt`` if the loss and every
        gradient are finite; otherwise put the BatchNorm buffers of ``modules`` back to ``saved`` (`saved_buffers`)
        and return False (the step is skipped). Under fp16 the gradients are scaled and unscaled around this; an
        overflow (`loss_scale_overflow`) skips only this optimiser step and returns True: the rest of the training
        step goes on with its forward pass (whose graph still holds those buffers)."""
        opt.zero_grad(set_to_none=True)
        torch.autograd.backward(self.scaled(loss), inputs=params)
        self.sync_grads(params)
        self.unscale(opt)
        if update_is_finite(loss, params, synced=self.grad_sync is not None):
            opt.step()
            self.update_scale()
            return True
        overflow = self.loss_scale_overflow(loss)
        if not overflow:
            restore_buffers(modules, saved)
        self.update_scale()
        return overflow

    def instance_noise_sigma(self, step: int) -> float:
        """σ of the instance noise at ``step``: ``loss.instance_noise``, falling linearly to 0 over
        ``loss.instance_noise_steps`` (Sønderby et al. 2017; Arjovsky & Bottou 2017)."""
        lc = self.cfg.loss
        if lc.instance_noise <= 0:
            return 0.0
        if lc.instance_noise_steps <= 0:
            return lc.instance_noise
        return lc.instance_noise * max(0.0, 1.0 - step / lc.instance_noise_steps)

    def generator_call(self, g: nn.Module, z: torch.Tensor, text_emb: torch.Tensor, gen: torch.Generator) -> Any:
        """Run the sampling generator ``g`` once for `refresh_generator_statistics`; ``gen`` supplies any noise
        besides z (e.g. StackGAN's CA noise). Default: ``g(z, text_emb)``."""
        return g(z, text_emb)

    @torch.no_grad()
    def refresh_generator_statistics(self, text_emb: torch.Tensor, batch_size: int = 64) -> None:
        """ "Standing statistics" of the EMA generator ``self.G_ema`` (as BigGAN samples, Brock et al. 2019, §4): its
        BatchNorm running mean/var are the live G's, which belong to other weights. Reset those of its layers that
        train (frozen parts in eval mode, e.g. StackGAN's Stage-I, keep theirs) and recompute them as the exact average
        over ``text_emb`` (fixed training captions), with z and any other noise from a fixed seed. Deterministic;
        leaves the EMA generator in eval mode; nothing to do without one. Measured on the synthetic flowers (Reed) it
        lowered FID_eval from 133 to 117 for the same weights (docs/quality.md)."""
        g = self.G_ema
        if g is None:
            return
        g.train()
        norms = [m for m in g.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
        saved = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches below
        gen = torch.Generator().manual_seed(derive_seed(self.cfg.seed, "standing-stats"))
        try:
            if norms:
                with self.autocast():
                    for i in range(0, len(text_emb), batch_size):
                        emb = text_emb[i : i + batch_size].float().to(self.device)
                        z = torch.randn(len(emb), self.z_dim, generator=gen).to(self.device)
                        self.generator_call(g, z, emb, gen)
        finally:
            g.eval()
            for m, mom in zip(norms, saved, strict=True):
                m.momentum = mom

    def all_finite(self) -> bool:
        """True if every parameter and buffer of every net is finite (checked before any checkpoint is written)."""
        for m in self.nets().values():
            for t in list(m.parameters()) + list(m.buffers()):
                if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                    return False
        return True


def update_is_finite(loss: torch.Tensor, params: list[nn.Parameter], *, synced: bool) -> bool:
    """Whether an optimiser step may be taken: the loss and every gradient are finite (one fused norm).

    Under DDP (``synced=True``, gradients already averaged across ranks) only the gradients decide: they are the same
    on every rank, so all ranks skip or step together; a rank-local loss check could make one rank skip while the
    others step, and hang the next all-reduce.
    """
    if not synced and not bool(torch.isfinite(loss)):
        return False
    grads = [p.grad for p in params if p.grad is not None]
    return not grads or bool(torch.isfinite(torch.stack(torch._foreach_norm(grads))).all())


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _match_param_layout(opt: torch.optim.Optimizer) -> None:
    """Give loaded optimiser moments the memory layout of their parameter (e.g. channels_last).

    Checkpoints store tensors contiguous; fused optimiser kernels walk parameter, gradient and moments as flat
    memory, so a channels_last weight with a contiguous moment would be updated with mismatched elements.
    """
    for group in opt.param_groups:
        for p in group["params"]:
            st = opt.state.get(p)
            if not st:
                continue
            for k, v in st.items():
                if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                    st[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


# --------------------------------------------------------------------------------------------------- step helpers
def randn_from(gen: torch.Generator, device: torch.device, *shape: int) -> torch.Tensor:
    """N(0, 1) noise drawn from ``gen`` (on its device) and moved to ``device``."""
    return torch.randn(*shape, generator=gen, device=gen.device).to(device)


def saved_buffers(*modules: nn.Module) -> list[torch.Tensor]:
    """Copies of the modules' buffers (BatchNorm statistics), to restore when a step is skipped."""
    return [b.detach().clone() for m in modules for b in m.buffers()]


def restore_buffers(modules: Sequence[nn.Module], saved: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for b, s in zip((b for m in modules for b in m.buffers()), saved, strict=True):
            b.copy_(s)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No parameter gradients for ``module`` inside the block (gradients still flow through it to its inputs)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(f)


def images_at(batch: dict[str, Any], size: int) -> torch.Tensor:
    """The batch's real images at ``size`` px.

    Looks for ``image_<size>``, then ``images[size]``, then ``image`` (resized with antialiasing when it has another
    size; all scales then come from one crop and flip, as colour consistency and StackGAN's Stage-II need).
    """
    if f"image_{size}" in batch:
        return batch[f"image_{size}"]
    images = batch.get("images")
    if isinstance(images, dict) and size in images:
        return images[size]
    x = batch.get("image")
    if x is None:
        raise KeyError(f"batch has no images at {size}px (keys: {sorted(batch)})")
    return resize_images(x, size)


def resize_images(x: torch.Tensor, size: int) -> torch.Tensor:
    """``x`` [B, C, H, W] at ``size`` px: bilinear with antialiasing (in float32), in ``x``'s dtype; as is if equal."""
    if x.shape[-1] == size:
        return x
    return F.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False).to(x.dtype)
