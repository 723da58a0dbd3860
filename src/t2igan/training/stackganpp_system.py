"""`StackGanPPSystem`: the StackGAN++ tree as a `GanSystem` (``model.name: stackgan++``).

    t2igan train --config stackganpp_cpu --data CACHE --set run_dir=runs/sgpp
    t2igan train --config stackganpp_cpu --data CACHE --set model.conditional=false   # unconditional mode

All branches and their discriminators train together (StackGAN++ §4). One step = one D update of every branch, then
one G update: per branch the joint conditional + unconditional D loss (§4.2; the mismatched pair's image is real, so
its unconditional label is "real"), Σ branches of the G loss + λ·KL (``loss.kl_weight``) + colour consistency
between consecutive branches (§4.3, ``loss.color_lambda``; 0 = off), then the EMA of G (``optim.ema``, 0.999 in the
release) that is sampled and exported. The D regularisers of `StackGanSystem` (R1, MA-GP, instance noise) apply to
every branch, and so do ``loss.kind=hinge`` and MSGAN's mode seeking (``loss.ms_weight``, summed over branches).
The batch needs images at the finest size (``data.size``); the coarser scales are antialiased resizes of
the same crop. z, ε and the instance noise come from ``step_generator(step)``, so resume is exact.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from t2igan.losses.gan import mode_seeking_loss
from t2igan.losses.stackgan import color_consistency_loss, generator_adv_loss, kl_loss, stackganpp_d_loss
from t2igan.models.stackganpp import (
    RETIRED_KEYS,
    StackGanPPConfig,
    StackGanPPDiscriminators,
    StackGanPPGenerator,
    stackganpp_config,
)
from t2igan.training.config import TrainConfig
from t2igan.training.ema import ema_decay_at, update_ema
from t2igan.training.init_from import init_from_pretrained
from t2igan.training.stackgan_system import COLOR_COV_RATIO, STACKGAN_COMMON_KEYS, architecture, d_penalties
from t2igan.training.system import GanSystem, frozen, images_at, randn_from, saved_buffers
from t2igan.utils.errors import T2IError
from t2igan.utils.seed import derive_seed, torch_generator


class StackGanPPSystem(GanSystem):
    """StackGAN++ (conditional or unconditional): every branch and D per step, EMA generator for sampling."""

    config_class = StackGanPPConfig
    honoured_keys = STACKGAN_COMMON_KEYS | {"loss.uncond_weight", "loss.color_lambda"}

    def __init__(self, cfg: TrainConfig, text_dim: int, device: torch.device) -> None:
        super().__init__(cfg, text_dim, device)
        self.model_config = stackganpp_config(cfg.model.preset, **architecture(cfg, text_dim, RETIRED_KEYS))
        mc = self.model_config
        if mc.image_size != cfg.data.size:
            raise T2IError(
                f"data.size={cfg.data.size} but the finest StackGAN++ branch is {mc.image_size}px",
                hint=f"set data.size={mc.image_size} (coarser branches are resized from it)",
            )
        self.memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
        with self.seeded_init():  # initial weights from derive_seed(seed, "init"), not the global RNG
            self.G = StackGanPPGenerator(mc).to(self.device, memory_format=self.memory_format)
            self.Ds = StackGanPPDiscriminators(mc).to(self.device, memory_format=self.memory_format)
        o = cfg.optim
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if o.ema > 0 else None
        if cfg.model.init:  # a converted official checkpoint or an export: G (and its EMA copy), Ds if present
            init_from_pretrained(cfg.model.init, self.G, self.Ds, copies=(self.G_ema,) if self.G_ema else ())
        self._g_params = list(self.G.parameters())
        self._d_params = list(self.Ds.parameters())
        self.opt_g = torch.optim.Adam(self._g_params, lr=o.lr, betas=(o.beta1, o.beta2))
        # one Adam over all Ds equals the release's one Adam per D (Adam is per-parameter)
        self.opt_d = torch.optim.Adam(self._d_params, lr=o.lr_d or o.lr, betas=(o.beta1, o.beta2))

    # -- GanSystem ------------------------------------------------------------------------------------------------
    @property
    def z_dim(self) -> int:
        return self.model_config.z_dim

    def nets(self) -> dict[str, nn.Module]:
        nets: dict[str, nn.Module] = {"G": self.G, "D": self.Ds}
        if self.G_ema is not None:
            nets["G_ema"] = self.G_ema
        return nets

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    def generator_for_export(self) -> nn.Module:
        return self.G_ema if self.G_ema is not None else self.G

    def generator_call(self, g: nn.Module, z: torch.Tensor, text_emb: torch.Tensor, gen: torch.Generator) -> Any:
        return g(z, text_emb if self.model_config.conditional else None, generator=gen)  # CA noise from ``gen`` too

    @torch.inference_mode()
    def sample(self, z: torch.Tensor, text_emb: torch.Tensor | None) -> list[torch.Tensor]:
        """All branches, coarse → fine, from the EMA generator; text is ignored in unconditional mode."""
        emb = text_emb.to(self.device) if text_emb is not None and self.model_config.conditional else None
        g = self.generator_for_export()
        was = g.training
        g.eval()
        try:
            gen = torch_generator(derive_seed(self.cfg.seed, "sample-ca"))
            with self.autocast():
                return [x.float() for x in g(z.to(self.device), emb, generator=gen)]
        finally:
            g.train(was)

    # -- the step -------------------------------------------------------------------------------------------------
    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        """One D update and one G update on all branches."""
        mc, lc, G, Ds = self.model_config, self.cfg.loss, self.G, self.Ds
        conditional = mc.conditional
        gen = self.step_generator(step)
        fmt = self.memory_format
        reals = [images_at(batch, s).to(self.device).contiguous(memory_format=fmt).float() for s in mc.sizes]
        b = reals[0].shape[0]
        z = randn_from(gen, self.device, b, mc.z_dim)
        emb = batch["text_emb"].to(self.device).float() if conditional else None
        eps = randn_from(gen, self.device, b, mc.condition_dim) if conditional else None
        sigma = self.instance_noise_sigma(step)
        noise = None
        if sigma > 0:  # instance noise: one draw for D's real and one for the fake (D and G steps) per branch
            noise = [[sigma * randn_from(gen, self.device, *r.shape) for _ in range(2)] for r in reals]
        r1_now = lc.r1 > 0 and step % lc.r1_every == 0
        needs_grad = r1_now or (lc.ma_gp > 0 and conditional)
        G.train()
        Ds.train()
        saved = saved_buffers(G, Ds)
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
                x_real = real if noise is None else real + noise[i][0]
                x_fake = fake.detach() if noise is None else fake.detach() + noise[i][1]
                if needs_grad:
                    x_real = x_real.detach().requires_grad_(True)
                f_real, f_fake = D.encode(x_real), D.encode(x_fake)
                u_real = D.uncond_logits(f_real)
                pi: dict[str, float] = {}
                if conditional:
                    mu_real = mu_d.clone().requires_grad_(True) if lc.ma_gp > 0 else mu_d
                    real_logits = D.cond_logits(f_real, mu_real)
                    li, pi = stackganpp_d_loss(
                        real_logits,
                        D.cond_logits(f_real, mu_wrong),
                        D.cond_logits(f_fake, mu_d),
                        real_uncond=u_real,
                        fake_uncond=D.uncond_logits(f_fake),
                        wrong_uncond=u_real,  # the mismatched pair's image is a real image: labelled "real"
                        uncond_weight=lc.uncond_weight,
                        kind=lc.kind,
                    )
                    li = li + d_penalties(self.cfg, real_logits, u_real, x_real, mu_real, r1_now, pi)
                else:
                    li, pi = stackganpp_d_loss(
                        None, None, None, real_uncond=u_real, fake_uncond=D.uncond_logits(f_fake), kind=lc.kind
                    )
                    if r1_now:  # MA-GP needs a condition; R1 acts on the unconditional logit
                        li = li + d_penalties(self.cfg, u_real, None, x_real, x_real, r1_now, pi, ma_gp=False)
                loss_d = loss_d + li
                parts.update({f"{k}_{i}": v for k, v in pi.items()})
        if not self.optimizer_step(loss_d, self._d_params, self.opt_d, [G, Ds], saved):
            return {"loss_d": float(loss_d.detach()), "nonfinite": 1.0}
        # --- G update: Σ branches adversarial (+ λ·KL, + colour consistency), Ds frozen
        saved = saved_buffers(G, Ds)
        with frozen(Ds), self.autocast():
            adv = torch.zeros((), device=self.device)
            for i, (D, fake) in enumerate(zip(Ds, out.images, strict=True)):
                f = D.encode(fake if noise is None else fake + noise[i][1])
                cond = D.cond_logits(f, mu_d) if conditional else None
                w_u = lc.uncond_weight if conditional else 1.0
                adv = adv + generator_adv_loss(cond, D.uncond_logits(f), w_u, kind=lc.kind)
            loss_g = adv
            logs: dict[str, float] = {}
            if conditional:
                kl = kl_loss(out.mu, out.logvar)
                loss_g = loss_g + lc.kl_weight * kl
                logs["kl"] = float(kl.detach())
            if lc.color_lambda > 0 and len(out.images) > 1:
                cc = sum(
                    color_consistency_loss(fine, coarse, lc.color_lambda, COLOR_COV_RATIO * lc.color_lambda)
                    for coarse, fine in zip(out.images[:-1], out.images[1:], strict=True)
                )
                loss_g = loss_g + cc
                logs["color"] = float(cc.detach())
            if lc.ms_weight > 0:  # MSGAN on every branch: a second z for half the batch, same text and ε
                k = max(1, b // 2)
                z2 = randn_from(gen, self.device, k, mc.z_dim)
                out2 = G.generate(z2, emb[:k] if emb is not None else None, eps[:k] if eps is not None else None)
                ms = sum(
                    mode_seeking_loss(f1[:k], f2, z[:k], z2) for f1, f2 in zip(out.images, out2.images, strict=True)
                )
                loss_g = loss_g + lc.ms_weight * ms
                logs["g_ms"] = float(ms.detach())
        out_logs = {"loss_d": float(loss_d.detach()), "loss_g": float(adv.detach()), **logs, **parts}
        if self.optimizer_step(loss_g, self._g_params, self.opt_g, [G, Ds], saved):
            self._update_ema(step)
        else:
            out_logs["nonfinite"] = 1.0
        return out_logs

    def _update_ema(self, step: int) -> None:
        """θ_ema ← d·θ_ema + (1 − d)·θ with the warm-up d = min(ema, (1 + n)/(10 + n)) (``training/ema.py``)."""
        if self.G_ema is not None:
            decay = ema_decay_at(step, self.cfg.optim.ema, self.cfg.optim.ema_start)
            update_ema(self.G_ema, self.G, decay, self._g_params)
