"""Training GAN / GAN-CLS / GAN-INT / GAN-INT-CLS (Reed et al. 2016, Algorithm 1) with a lean step.

One step = one D update then one G update, as in the paper. What makes it lean (issue 4), without changing the maths:

1. The real/right and real/wrong pairs share D's image trunk: ``D.features(x)`` runs once and only the small
   text-joint head runs twice (the trunk's output does not depend on the text).
2. ``loss.reuse_d_fake`` (default, as the released Lua code: ``local output = netD.output``): the G loss uses the fake
   logits D computed in its own step, so D runs once on the fake batch. D's loss backpropagates into D's weights
   only and G's loss into G's weights only (``backward(inputs=…)``: no weight gradients of D are computed for G,
   no gradients reach G from the D loss). The alternative (``false``) detaches the fake for D, updates D, then
   runs the frozen D again for G.
3. GAN-INT's extra half batch (midpoints of two samples' embeddings, fresh z) goes through G and the D trunk for
   G's loss only, with D's weights excluded from the backward.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch
from torch import nn

from t2igan.losses.gan import (
    GanClsLoss,
    HingeLoss,
    contrastive_loss,
    interpolate_embeddings,
    matching_aware_gp,
    mode_seeking_loss,
    r1_penalty,
    same_class_mask,
)
from t2igan.models.reed import ReedConfig, ReedDiscriminator, ReedGenerator, reed_config
from t2igan.training.augment import translate
from t2igan.training.config import TrainConfig
from t2igan.training.ema import ema_decay_at, update_ema
from t2igan.training.system import GanSystem, update_is_finite
from t2igan.utils.errors import T2IError

REED_CONTRASTIVE_TAU = 0.1  # loss.contrastive_tau's default here: XMC-GAN's temperature for cosine scores


class ReedSystem(GanSystem):
    config_class = ReedConfig
    honoured_keys = frozenset(
        {
            "loss.variant", "loss.kind", "loss.cls_weight", "loss.int_beta", "loss.int_weight", "loss.int_fraction",
            "loss.ma_gp", "loss.ma_gp_power", "loss.reuse_d_fake", "loss.r1", "loss.r1_every", "loss.ms_weight",
            "loss.contrastive", "loss.contrastive_tau",
            "optim.lr", "optim.lr_d", "optim.beta1", "optim.beta2", "optim.ema", "optim.ema_start",
            "train.precision", "train.channels_last", "train.compile",
        }
    )  # fmt: skip

    def __init__(self, cfg: TrainConfig, text_dim: int, device: torch.device) -> None:
        super().__init__(cfg, text_dim, device)
        params = dict(cfg.model.params)
        params.setdefault("image_size", cfg.data.size)
        params["text_dim"] = text_dim
        self.model_config = reed_config(cfg.model.preset, **params)
        if cfg.loss.contrastive > 0 and self.model_config.d_text != "projection":
            raise T2IError("loss.contrastive needs the projection discriminator", hint="set model.d_text=projection")
        with self.seeded_init():
            self.G = ReedGenerator(self.model_config).to(self.device)
            self.D = ReedDiscriminator(self.model_config).to(self.device)
        self.memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
        self.G.to(memory_format=self.memory_format)
        self.D.to(memory_format=self.memory_format)
        o = cfg.optim  # Adam as in the paper; fused=True: one kernel per step (CPU and GPU), same update rule
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=o.lr, betas=(o.beta1, o.beta2), fused=True)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=o.lr_d or o.lr, betas=(o.beta1, o.beta2), fused=True)
        self.G_ema: ReedGenerator | None = None
        if o.ema > 0:
            self.G_ema = copy.deepcopy(self.G).requires_grad_(False).eval()
        lc = cfg.loss
        cls_weight = lc.cls_weight if lc.uses_cls else 0.0
        self.loss = HingeLoss(cls_weight) if lc.kind == "hinge" else GanClsLoss(cls_weight)
        self._g_params = list(self.G.parameters())
        self._d_params = list(self.D.parameters())
        if cfg.train.compile:  # in place: state_dict keys stay the same
            import torch._functorch.config as functorch_config

            functorch_config.donated_buffer = False  # the D graph is backpropagated twice (retain_graph)
            self.G.compile()
            self.D.trunk.compile()

    # -- GanSystem ------------------------------------------------------------------------------------------------
    @property
    def z_dim(self) -> int:
        return self.model_config.z_dim

    def nets(self) -> dict[str, nn.Module]:
        nets: dict[str, nn.Module] = {"G": self.G, "D": self.D}
        if self.G_ema is not None:
            nets["G_ema"] = self.G_ema
        return nets

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    def generator_for_export(self) -> nn.Module:
        return self.G_ema if self.G_ema is not None else self.G

    @torch.inference_mode()
    def sample(self, z: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
        """Images from the EMA generator if enabled, else G, in eval mode (BatchNorm running statistics)."""
        g = self.generator_for_export()
        was_training = g.training
        g.eval()
        try:
            with self.autocast():
                out = g(z.to(self.device), text_emb.to(self.device))
        finally:
            g.train(was_training)
        return out.float().contiguous()

    # -- the step -------------------------------------------------------------------------------------------------
    def _buffers(self) -> Iterator[torch.Tensor]:
        yield from self.G.buffers()
        yield from self.D.buffers()

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        lc = self.cfg.loss
        gen = self.step_generator(step)
        x = batch["image"].to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        h = batch["text_emb"].to(self.device, non_blocking=True).float()
        b = x.shape[0]
        z = torch.randn(b, self.z_dim, generator=gen).to(self.device)
        if lc.uses_int:
            n_int = max(1, round(b * lc.int_fraction))
            h_int = interpolate_embeddings(h, n_int, beta=lc.int_beta, generator=gen)
            z_int = torch.randn(n_int, self.z_dim, generator=gen).to(self.device)
        saved = [t.clone() for t in self._buffers()]  # BatchNorm statistics, restored if the step is skipped
        aug = self.cfg.data.translate
        d_view = (lambda im: translate(im, aug, gen)) if aug > 0 else (lambda im: im)  # DiffAugment for D only
        gp = lc.ma_gp > 0
        r1 = lc.r1 > 0 and step % lc.r1_every == 0
        x = d_view(x)
        if gp or r1:
            x = x.detach().requires_grad_(True)  # never flag the caller's batch tensor
        if gp:
            h = h.detach().requires_grad_(True)
        reuse = lc.reuse_d_fake

        self.opt_d.zero_grad(set_to_none=True)
        self.opt_g.zero_grad(set_to_none=True)
        with self.autocast():
            fake = self.G(z, h.detach())  # [B, 3, S, S]
            feats = self.D.features(x)  # one trunk pass serves real/right and real/wrong
            real_logits = self.D.head(feats, h)
            wrong_logits = None
            if lc.uses_cls:
                wrong_logits = self.D.head(feats, batch["wrong_emb"].to(self.device).float())
            fake_feats = self.D.features(d_view(fake if reuse else fake.detach()))
            fake_logits = self.D.head(fake_feats, h.detach())
        loss_d, parts = self.loss.d_loss(real_logits, wrong_logits, fake_logits)
        contrast = lc.contrastive > 0
        tau = lc.contrastive_temperature(REED_CONTRASTIVE_TAU)
        same = None
        if contrast:
            same = same_class_mask(batch.get("class_id"), self.device)
            c_real = contrastive_loss(self.D.match_logits(feats, h.detach(), tau), same)
            parts["d_contrastive"] = c_real
            loss_d = loss_d + lc.contrastive * c_real
        if gp:
            gp_term = matching_aware_gp(real_logits, x, h, weight=lc.ma_gp, power=lc.ma_gp_power)
            parts["d_ma_gp"] = gp_term
            loss_d = loss_d + gp_term
        if r1:
            r1_term = r1_penalty(real_logits, x, gamma=lc.r1 * lc.r1_every)
            parts["d_r1"] = r1_term
            loss_d = loss_d + r1_term
        torch.autograd.backward(self.scaled(loss_d), inputs=self._d_params, retain_graph=reuse)

        if not reuse:  # update D first, then G sees the updated (frozen) D
            self.sync_grads(self._d_params)
            ok_d = self._finite(loss_d, self._d_params, self.opt_d)
            if ok_d:
                self.opt_d.step()
            self.D.requires_grad_(False)
            try:
                with self.autocast():
                    fake_feats = self.D.features(d_view(fake))
                    fake_logits = self.D.head(fake_feats, h.detach())
            finally:
                self.D.requires_grad_(True)

        loss_g = self.loss.g_loss(fake_logits)
        parts["g_adv"] = loss_g
        if contrast:  # G: each fake must match its own caption (D's weights get no gradient from this)
            c_fake = contrastive_loss(self.D.match_logits(fake_feats, h.detach(), tau), same)
            parts["g_contrastive"] = c_fake
            loss_g = loss_g + lc.contrastive * c_fake
        if lc.uses_int:
            with self.autocast():
                fake_int = self.G(z_int, h_int.detach())
                int_logits = self.D(d_view(fake_int), h_int.detach())
            loss_int = self.loss.g_loss(int_logits)
            parts["g_int"] = loss_int
            loss_g = loss_g + lc.int_weight * loss_int
        if lc.ms_weight > 0:  # a second z for the first half of the batch's captions
            k = max(1, b // 2)
            z2 = torch.randn(k, self.z_dim, generator=gen).to(self.device)
            with self.autocast():
                fake2 = self.G(z2, h[:k].detach())
            loss_ms = mode_seeking_loss(fake[:k], fake2, z[:k], z2)
            parts["g_ms"] = loss_ms
            loss_g = loss_g + lc.ms_weight * loss_ms
        torch.autograd.backward(self.scaled(loss_g), inputs=self._g_params)
        self.sync_grads(self._g_params)

        if reuse:
            self.sync_grads(self._d_params)
            ok_d = self._finite(loss_d, self._d_params, self.opt_d)
        ok_g = self._finite(loss_g, self._g_params, self.opt_g)
        if ok_d and ok_g:
            if reuse:
                self.opt_d.step()
            self.opt_g.step()
            self._update_ema(step)
        else:  # skip: no optimiser step, BatchNorm statistics as before this step
            with torch.no_grad():
                for t, s in zip(self._buffers(), saved, strict=True):
                    t.copy_(s)  # (with reuse_d_fake=false a finite D update has already happened)
        overflow = not (ok_d and ok_g) and self.loss_scale_overflow(loss_d, loss_g)
        self.update_scale()
        out = {k: float(v.detach()) for k, v in parts.items()}
        out.update(loss_d=float(loss_d.detach()), loss_g=float(loss_g.detach()))
        if overflow:  # fp16: the loss scale was too high; it is halved and this update skipped (not a bad step)
            out["amp_overflow"] = 1.0
        elif not (ok_d and ok_g):
            out["nonfinite"] = 1.0
        return out

    def _update_ema(self, step: int) -> None:
        """EMA of G's weights with the decay warm-up of :func:`t2igan.training.ema.ema_decay_at` (G is copied for
        the first ``optim.ema_start`` steps)."""
        if self.G_ema is None:
            return
        decay = ema_decay_at(step, self.cfg.optim.ema, self.cfg.optim.ema_start)
        update_ema(self.G_ema, self.G, decay, self._g_params)

    def _finite(self, loss: torch.Tensor, params: list[nn.Parameter], opt: torch.optim.Optimizer) -> bool:
        """The loss and the (unscaled, under fp16) gradients are finite (one fused norm over the gradients). Under
        DDP only the averaged gradients decide — they are the same on every rank, so all ranks skip or step
        together."""
        self.unscale(opt)
        return update_is_finite(loss, params, synced=self.grad_sync is not None)
