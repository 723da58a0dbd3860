"""The StackGAN and StackGAN++ training steps, independent of the Trainer (the GanSystems and the benchmark use them).

One step = one D update then one G update on the same batch, written *lean*:

- G runs once; D sees the fake detached (no backward through G in the D update);
- in the G update D's parameters are frozen (``requires_grad_(False)``): backward computes only the input gradient
  through D, not D's weight gradients;
- a mismatched pair is (real image, text of a *different class*) — the real image's D features are reused for it,
  so D encodes real and fake images once each (the release's PyTorch code also reuses real features);
- optional bf16 autocast and channels_last memory format.

Randomness (z, CA ε) comes from the ``generator`` passed to ``train_step`` (the GanSystems pass one derived from
(seed, step), so resume is exact) or else from the step object's own seeded generator, whose state is part of
``state_dict()``. A step whose losses or gradients are not finite is skipped (BatchNorm statistics restored) and
reports ``nonfinite: 1.0``.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from t2igan.losses.stackgan import (
    color_consistency_loss,
    generator_adv_loss,
    kl_loss,
    stackgan_d_loss,
    stackganpp_d_loss,
)
from t2igan.models.stackgan import StackGanConfig, StackGanDiscriminator, StackGanGenerator
from t2igan.models.stackganpp import StackGanPPConfig, StackGanPPDiscriminators, StackGanPPGenerator
from t2igan.training.ema import ema_decay_at, update_ema
from t2igan.training.system import update_is_finite
from t2igan.utils.errors import T2IError

__all__ = ["OptimSettings", "StackGanPPSteps", "StackGanSteps", "images_at"]


@dataclass
class OptimSettings:
    """Adam settings and the speed knobs of a step."""

    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    precision: str = "fp32"  # "fp32" or "bf16" (CPU/GPU autocast)
    channels_last: bool = False

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "bf16"):
            raise T2IError(f"precision must be fp32 or bf16, got {self.precision!r}")


def images_at(batch: dict[str, Any], size: int) -> torch.Tensor:
    """The batch's real images at ``size`` px.

    Looks for ``image_<size>``, then ``images[size]``, then ``image`` (resized with antialiasing when it has
    another size; all scales then come from one crop and flip, as colour consistency and Stage-II need).
    """
    if f"image_{size}" in batch:
        return batch[f"image_{size}"]
    images = batch.get("images")
    if isinstance(images, dict) and size in images:
        return images[size]
    x = batch.get("image")
    if x is None:
        raise KeyError(f"batch has no images at {size}px (keys: {sorted(batch)})")
    if x.shape[-1] == size:
        return x
    return F.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False).to(x.dtype)


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


class _Steps:
    """Shared machinery: device, autocast, memory format, noise generator, optimiser (de)serialisation."""

    def __init__(self, optim: OptimSettings, seed: int, device: str | torch.device) -> None:
        self.optim = optim
        self.device = torch.device(device)
        self.noise = torch.Generator(device=self.device)
        self.noise.manual_seed(seed)
        self.memory_format = torch.channels_last if optim.channels_last else torch.contiguous_format
        self.grad_sync: Callable[[list[torch.Tensor]], None] | None = None  # DDP all-reduce, set by the Trainer

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.optim.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def adam(self, params: list[nn.Parameter], lr: float) -> torch.optim.Adam:
        return torch.optim.Adam(params, lr=lr, betas=(self.optim.beta1, self.optim.beta2))

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    def randn(self, gen: torch.Generator | None, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen or self.noise, device=gen.device if gen else self.device).to(
            self.device
        )

    def update(
        self,
        loss: torch.Tensor,
        params: list[nn.Parameter],
        opt: torch.optim.Optimizer,
        modules: list[nn.Module],
        saved: list[list[torch.Tensor]],
    ) -> bool:
        """Backward ``loss`` into ``params``, sync (DDP), step ``opt`` if all finite; else restore BN buffers."""
        opt.zero_grad(set_to_none=True)
        torch.autograd.backward(loss, inputs=params)
        if self.grad_sync is not None:
            self.grad_sync([p.grad for p in params if p.grad is not None])
        if update_is_finite(loss, params, synced=self.grad_sync is not None):
            opt.step()
            return True
        with torch.no_grad():
            for m, bufs in zip(modules, saved, strict=True):
                for b, s in zip(m.buffers(), bufs, strict=True):
                    b.copy_(s)
        return False


def _buffers(*modules: nn.Module) -> list[list[torch.Tensor]]:
    return [[b.detach().clone() for b in m.buffers()] for m in modules]


class StackGanSteps(_Steps):
    """StackGAN v1 training step for Stage-I (``cfg.stage == 1``) or Stage-II (``cfg.stage == 2``, Stage-I frozen)."""

    def __init__(
        self, cfg: StackGanConfig, optim: OptimSettings | None = None, *, seed: int = 0, device: str = "cpu"
    ) -> None:
        super().__init__(optim or OptimSettings(), seed, device)
        self.cfg = cfg
        self.G = StackGanGenerator(cfg).to(self.device, memory_format=self.memory_format)
        size = cfg.stage2_size if cfg.stage == 2 else cfg.stage1_size
        self.D = StackGanDiscriminator(
            size, cfg.df_dim, cfg.condition_dim, uncond_head=cfg.uncond_head and cfg.stage == 2
        ).to(self.device, memory_format=self.memory_format)
        self.trained_g = self.G.stage2 if self.G.stage2 is not None else self.G.stage1
        self.g_params = [p for p in self.trained_g.parameters() if p.requires_grad]
        self.d_params = list(self.D.parameters())
        self.opt_g = self.adam(self.g_params, self.optim.lr_g)
        self.opt_d = self.adam(self.d_params, self.optim.lr_d)

    @property
    def ca(self) -> nn.Module:
        return self.trained_g.ca

    def train_step(self, batch: dict[str, Any], generator: torch.Generator | None = None) -> dict[str, float]:
        cfg, G, D = self.cfg, self.G, self.D
        emb = batch["text_emb"].to(self.device).float()
        wrong_emb = batch["wrong_emb"].to(self.device).float()
        real = self.to_input(images_at(batch, D.image_size)).float()
        b = emb.shape[0]
        z = self.randn(generator, b, cfg.z_dim)
        eps = [self.randn(generator, b, cfg.condition_dim) for _ in range(2)]
        G.train()
        D.train()
        saved = _buffers(G, D)
        with self.autocast():
            out = G.generate(z, emb, eps)
            fake, mu, logvar = out.images[-1], out.mus[-1], out.logvars[-1]
            mu_d = mu.detach()
            with torch.no_grad():
                mu_wrong = self.ca(wrong_emb)[1]
            # --- D update: real + ½(wrong + fake) (eqs. 3/5), fake detached
            f_real = D.encode(real)
            f_fake = D.encode(fake.detach())
            uncond = D.uncond_head is not None
            loss_d, parts = stackgan_d_loss(
                D.cond_logits(f_real, mu_d),
                D.cond_logits(f_real, mu_wrong),
                D.cond_logits(f_fake, mu_d),
                real_uncond=D.uncond_logits(f_real) if uncond else None,
                fake_uncond=D.uncond_logits(f_fake) if uncond else None,
            )
        if not self.update(loss_d, self.d_params, self.opt_d, [G, D], saved):
            return {"loss_d": float(loss_d.detach()), "nonfinite": 1.0}
        # --- G update: non-saturating adversarial + λ·KL (eqs. 4/6), D frozen
        saved = _buffers(G, D)
        with frozen(D), self.autocast():
            f = D.encode(fake)
            adv = generator_adv_loss(D.cond_logits(f, mu_d), D.uncond_logits(f) if uncond else None)
            kl = kl_loss(mu, logvar)
            loss_g = adv + cfg.kl_weight * kl
        logs = {"loss_d": float(loss_d.detach()), "loss_g": float(adv.detach()), "kl": float(kl.detach()), **parts}
        if not self.update(loss_g, self.g_params, self.opt_g, [G, D], saved):
            logs["nonfinite"] = 1.0
        return logs

    @torch.no_grad()
    def sample(self, z: torch.Tensor, text_emb: torch.Tensor, generator: torch.Generator | None = None) -> list:
        was = self.G.training
        self.G.eval()
        try:
            with self.autocast():
                return [x.float() for x in self.G(z.to(self.device), text_emb.to(self.device), generator=generator)]
        finally:
            self.G.train(was)

    def state_dict(self) -> dict[str, Any]:
        return {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "noise": self.noise.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.noise.set_state(state["noise"])


class StackGanPPSteps(_Steps):
    """StackGAN++ training step: all branches and discriminators at once, EMA of G for sampling."""

    def __init__(
        self,
        cfg: StackGanPPConfig,
        optim: OptimSettings | None = None,
        *,
        ema_decay: float = 0.999,
        ema_start: int = 0,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        super().__init__(optim or OptimSettings(), seed, device)
        self.cfg = cfg
        self.ema_decay = ema_decay
        self.ema_start = ema_start
        self.G = StackGanPPGenerator(cfg).to(self.device, memory_format=self.memory_format)
        self.Ds = StackGanPPDiscriminators(cfg).to(self.device, memory_format=self.memory_format)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if ema_decay > 0 else None
        self.g_params = list(self.G.parameters())
        self.d_params = list(self.Ds.parameters())
        self.opt_g = self.adam(self.g_params, self.optim.lr_g)
        # one Adam over all Ds equals the release's one Adam per D (Adam is per-parameter)
        self.opt_d = self.adam(self.d_params, self.optim.lr_d)

    def train_step(
        self, batch: dict[str, Any], generator: torch.Generator | None = None, step: int = 0
    ) -> dict[str, float]:
        """One D update and one G update on all branches; ``step`` (0-based) sets the EMA decay's warm-up."""
        cfg, G, Ds = self.cfg, self.G, self.Ds
        conditional = cfg.conditional
        reals = [self.to_input(images_at(batch, s)).float() for s in cfg.sizes]
        b = reals[0].shape[0]
        z = self.randn(generator, b, cfg.z_dim)
        emb = batch["text_emb"].to(self.device).float() if conditional else None
        eps = self.randn(generator, b, cfg.condition_dim) if conditional else None
        G.train()
        Ds.train()
        saved = _buffers(G, Ds)
        with self.autocast():
            out = G.generate(z, emb, eps)
            mu_d = out.mu.detach() if out.mu is not None else None
            mu_wrong = None
            if conditional:
                with torch.no_grad():
                    mu_wrong = G.ca(batch["wrong_emb"].to(self.device).float())[1]
            # --- D update, per branch: conditional real + wrong + fake, unconditional real(+wrong) vs fake
            loss_d = torch.zeros((), device=self.device)
            parts: dict[str, float] = {}
            for i, (D, real, fake) in enumerate(zip(Ds, reals, out.images, strict=True)):
                f_real, f_fake = D.encode(real), D.encode(fake.detach())
                u_real = D.uncond_logits(f_real)
                if conditional:
                    # the mismatched pair's image is a real image: its unconditional label is "real"
                    li, pi = stackganpp_d_loss(
                        D.cond_logits(f_real, mu_d),
                        D.cond_logits(f_real, mu_wrong),
                        D.cond_logits(f_fake, mu_d),
                        real_uncond=u_real,
                        fake_uncond=D.uncond_logits(f_fake),
                        wrong_uncond=u_real,
                        uncond_weight=cfg.uncond_weight,
                    )
                else:
                    li, pi = stackganpp_d_loss(
                        None, None, None, real_uncond=u_real, fake_uncond=D.uncond_logits(f_fake)
                    )
                loss_d = loss_d + li
                parts.update({f"{k}_{i}": v for k, v in pi.items()})
        if not self.update(loss_d, self.d_params, self.opt_d, [G, Ds], saved):
            return {"loss_d": float(loss_d.detach()), "nonfinite": 1.0}
        saved = _buffers(G, Ds)
        # --- G update: Σ branches adversarial (+ λ·KL, + colour consistency), Ds frozen
        with frozen(Ds), self.autocast():
            adv = torch.zeros((), device=self.device)
            for D, fake in zip(Ds, out.images, strict=True):
                f = D.encode(fake)
                cond = D.cond_logits(f, mu_d) if conditional else None
                adv = adv + generator_adv_loss(cond, D.uncond_logits(f), cfg.uncond_weight if conditional else 1.0)
            loss_g = adv
            logs: dict[str, float] = {}
            if conditional:
                kl = kl_loss(out.mu, out.logvar)
                loss_g = loss_g + cfg.kl_weight * kl
                logs["kl"] = float(kl.detach())
            if cfg.color_lambda > 0 and len(out.images) > 1:
                cc = sum(
                    color_consistency_loss(fine, coarse, cfg.color_lambda, 5.0 * cfg.color_lambda)
                    for coarse, fine in zip(out.images[:-1], out.images[1:], strict=True)
                )
                loss_g = loss_g + cc
                logs["color"] = float(cc.detach())
        out_logs = {"loss_d": float(loss_d.detach()), "loss_g": float(adv.detach()), **logs, **parts}
        if self.update(loss_g, self.g_params, self.opt_g, [G, Ds], saved):
            self.update_ema(step)
        else:
            out_logs["nonfinite"] = 1.0
        return out_logs

    def update_ema(self, step: int) -> None:
        """θ_ema ← d·θ_ema + (1 − d)·θ with the warm-up d = min(ema, (1 + n)/(10 + n)) (``training/ema.py``)."""
        if self.G_ema is None:
            return
        update_ema(self.G_ema, self.G, ema_decay_at(step, self.ema_decay, self.ema_start), self.g_params)

    @torch.no_grad()
    def sample(
        self, z: torch.Tensor, text_emb: torch.Tensor | None, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        emb = text_emb.to(self.device) if text_emb is not None else None
        g = self.G_ema if self.G_ema is not None else self.G
        was = g.training
        g.eval()
        try:
            with self.autocast():
                return [x.float() for x in g(z.to(self.device), emb, generator=generator)]
        finally:
            g.train(was)

    def state_dict(self) -> dict[str, Any]:
        return {
            "G": self.G.state_dict(),
            **({"G_ema": self.G_ema.state_dict()} if self.G_ema is not None else {}),
            "Ds": self.Ds.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "noise": self.noise.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        if self.G_ema is not None:
            self.G_ema.load_state_dict(state["G_ema"])
        self.Ds.load_state_dict(state["Ds"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.noise.set_state(state["noise"])
