"""`StackGanSystem`: StackGAN v1 as a `GanSystem` — Stage-I (``model.stage=1``) or Stage-II (``model.stage=2``).

    t2igan train --config stackgan_stage1_cpu --data CACHE --set run_dir=runs/sg1
    t2igan train --config stackgan_stage2_cpu --data CACHE --set run_dir=runs/sg2 --set model.stage1=runs/sg1

Stage-II loads the Stage-I generator named by ``model.stage1`` (a run folder, its ``pretrained/`` folder, or a
``generator/`` folder), freezes it and trains its own CA, encoder, residual blocks, up-sampling and a 256-px D (paper
§3.4). ``model.init`` instead starts from a whole pretrained folder (e.g. a converted official checkpoint). The
exported generator holds both stages, so the pipeline returns ``[stage1, stage2]`` images.

One step = one D update then one G update on the same batch (Eqs. (3)/(5) then (4)/(6)), written lean:

- G runs once; D sees the fake detached; in the G update D's parameters are frozen (backward computes only the
  input gradient through D, not D's weight gradients);
- a mismatched pair is (real image, text of a *different class*): the real image's D features are reused for it;
- optional D regularisers: R1 (``loss.r1``, lazily every ``loss.r1_every`` steps), DF-GAN's MA-GP on (x, μ)
  (``loss.ma_gp``), instance noise on every image D sees (``loss.instance_noise``, annealed);
- ``loss.kind=hinge``: the hinge form of every adversarial term (with ``model.d_norm=spectral``: an SN-GAN D);
- ``loss.color_lambda`` (Stage-II): StackGAN++'s colour consistency (§4.3) between the Stage-II image and the fixed
  Stage-I image (pixel mean and covariance per image, so the 64 px image needs no resize);
- ``loss.d_on_stage1_mu`` (Stage-II): D conditions on the frozen Stage-I CA's μ₀ instead of Stage-II's own μ. When
  Stage-II's G draws everything from the Stage-I image and ignores its own code, the KL term drives that μ to 0 for
  every text (measured: KL → 0.000 within 1,000 steps) and D's conditional head then sees no text at all;
- ``model.d_condition=text``: D compresses the caption embedding φ_t with its own FC + leaky ReLU (Reed et al.,
  ICML 2016, §4) instead of reading the CA mean μ. Under the KL term the release's CA reaches σ ≈ 1 with μ squeezed:
  a linear probe reads petal count and centre colour on unseen captions from μ₀ only about half right, and from the
  sampled code ĉ₀ near chance (docs/stackgan.md), so a D conditioned on μ cannot tell those attributes apart;
- ``loss.contrastive``: XMC-GAN's image-text InfoNCE (Zhang et al., CVPR 2021, Eq. (2)) with D's own matching logit
  of every (image, caption) pair of the batch as the score (``StackGanDiscriminator.pair_logits``, ÷ τ): D on real
  images, G on its fakes, same-class captions masked;
- ``model.stage2_condition=stage1``: Stage-II has no CA of its own and reads the code ĉ₀ that drew its Stage-I
  image (no KL term of its own; D then conditions on μ₀ as with ``loss.d_on_stage1_mu``);
- ``loss.real_sr`` (Stage-II): half the batch's real images, resized to Stage-I's size, go through Stage-II with
  their captions and an L1 term pulls the result to the real image, to teach from real pairs what the detail of a
  64 px picture looks like at 128 px (beyond the papers; measured at weight 10 without effect on sharpness: the
  adversarial terms outweigh it, docs/stackgan.md);
- ``loss.sje_match`` (beyond the papers): AttnGAN's sentence-level DAMSM loss (Xu et al., CVPR 2018, Eqs. (10)–(11))
  on G's images, scored by the frozen DS-SJE image encoder trained with the caption encoder (``loss.sje_encoder``):
  each image must be nearer its own caption than the batch's other captions, and each caption its own image;
- ``loss.stage1_d`` (Stage-II, beyond the papers): a second critic, Stage-I's *trained* D (read from
  ``model.stage1``'s run), judges Stage-II's image resized to Stage-I's size with Stage-I's μ₀ and trains on beside
  Stage-II's own D (as StackGAN++'s lower-resolution discriminators do, but one that already reads the text at step
  0, where a fresh Stage-II D needs thousands of steps to); G adds its adversarial term with this weight;
- ``loss.spectral`` (beyond the papers): Durall et al.'s spectral regularisation (CVPR 2020, λ·L_Spectral), here over
  the 2-D power spectrum: G's last-stage batch must have the real batch's log power at every frequency, so it can
  neither smooth the detail away nor paint a periodic dot or stripe pattern that D lets pass (``losses/spectral.py``);
- ``loss.ms_weight``: MSGAN's mode-seeking term (Mao et al., CVPR 2019, Eq. (3)) on a second z for half the batch's
  captions (same text and CA noise), so that z keeps changing the image;
- optional EMA of G for sampling and export (``optim.ema``; its BatchNorm statistics are re-estimated on fixed
  training captions before it samples), bf16 autocast and channels_last.

The batch needs images at the last stage's size (``data.size``; smaller sizes are antialiased resizes of the same
crop) plus ``text_emb`` and ``wrong_emb``. z, ε and the instance noise come from ``step_generator(step)``, so resume is
exact. A step whose losses or gradients are not finite is skipped (BatchNorm statistics restored) and reports
``nonfinite: 1.0``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from t2igan.losses.gan import (
    contrastive_loss,
    matching_aware_gp,
    mode_seeking_loss,
    r1_penalty,
    same_class_mask,
    sentence_matching_loss,
)
from t2igan.losses.spectral import spectral_loss
from t2igan.losses.stackgan import color_consistency_loss, generator_adv_loss, kl_loss, stackgan_d_loss
from t2igan.models.stackgan import (
    RETIRED_KEYS,
    StackGanConfig,
    StackGanDiscriminator,
    StackGanGenerator,
    stackgan_config,
    stackgan_discriminator,
)
from t2igan.text.sje_image import load_sje_image_encoder
from t2igan.training.config import TrainConfig
from t2igan.training.convert import load_discriminator_state
from t2igan.training.ema import ema_decay_at, update_ema
from t2igan.training.init_from import init_from_pretrained
from t2igan.training.system import GanSystem, frozen, images_at, randn_from, resize_images, saved_buffers
from t2igan.utils.checkpoint import load_latest
from t2igan.utils.errors import T2IError
from t2igan.utils.seed import derive_seed, torch_generator

STACKGAN_CONTRASTIVE_TAU = 1.0  # loss.contrastive_tau's default here: the scores are D's logits (hinge scale ±1)
COLOR_COV_RATIO = 5.0  # λ₂ = 5·λ₁ in the StackGAN++ release (COLOR_LOSS · 5 for the covariance term)

# The family-specific config keys the StackGAN systems use (GanSystem.honoured_keys).
STACKGAN_COMMON_KEYS = frozenset(
    {
        "optim.lr", "optim.lr_d", "optim.beta1", "optim.beta2", "optim.ema", "optim.ema_start",
        "train.precision", "train.channels_last", "model.init",
        "loss.kl_weight", "loss.r1", "loss.r1_every", "loss.ma_gp", "loss.ma_gp_power",
        "loss.instance_noise", "loss.instance_noise_steps", "loss.kind", "loss.ms_weight",
    }
)  # fmt: skip


def architecture(cfg: TrainConfig, text_dim: int, retired: dict[str, str]) -> dict[str, Any]:
    """The ``model:`` architecture options with the text size; keys that moved to the training config are named."""
    for key in cfg.model.params:
        if key in retired:
            raise T2IError(f"model.{key} is now {retired[key]}", hint=f"write it as {retired[key]} in the config")
    return {**cfg.model.params, "text_dim": text_dim}


def resolve_generator_dir(path: str | Path) -> Path:
    """A run folder, a pretrained folder or a generator folder → the folder holding ``config.json``."""
    p = Path(path)
    for cand in (p / "pretrained" / "generator", p / "generator", p):
        if (cand / "config.json").is_file() and (cand / "model.safetensors").is_file():
            return cand
    raise T2IError(
        "no exported Stage-I generator here",
        path=p,
        hint="train Stage-I first (t2igan train --config stackgan_stage1_cpu …) and pass its run folder",
    )


def load_stage1(G: StackGanGenerator, path: str | Path) -> None:
    """Copy an exported Stage-I generator into ``G.stage1`` after checking that the architectures agree."""
    from t2igan.training.export import load_generator

    gdir = resolve_generator_dir(path)
    src = load_generator(gdir)
    if not isinstance(src, StackGanGenerator):
        raise T2IError(f"{type(src).__name__} is not a StackGAN generator", path=gdir)
    keys = ("text_dim", "z_dim", "condition_dim", "gf_dim", "stage1_size")
    mine, theirs = G.config, src.config
    diff = [f"{k}: {getattr(theirs, k)} vs {getattr(mine, k)}" for k in keys if getattr(theirs, k) != getattr(mine, k)]
    if diff:
        raise T2IError(
            f"Stage-I generator does not match this Stage-II config ({'; '.join(diff)})",
            path=gdir,
            hint="use the Stage-I config's preset/overrides for Stage-II as well",
        )
    G.stage1.load_state_dict(src.stage1.state_dict())


class StackGanSystem(GanSystem):
    """StackGAN Stage-I or Stage-II: CA + matching-aware GAN-CLS with the KL term."""

    config_class = StackGanConfig
    honoured_keys = STACKGAN_COMMON_KEYS | {
        "model.stage1", "loss.color_lambda", "loss.d_on_stage1_mu", "loss.contrastive", "loss.contrastive_tau",
        "loss.real_sr", "loss.sje_match", "loss.sje_encoder", "loss.sje_gamma", "loss.stage1_d", "loss.spectral",
    }  # fmt: skip

    def __init__(self, cfg: TrainConfig, text_dim: int, device: torch.device) -> None:
        super().__init__(cfg, text_dim, device)
        self.model_config = stackgan_config(cfg.model.preset, **architecture(cfg, text_dim, RETIRED_KEYS))
        mc = self.model_config
        if mc.image_size != cfg.data.size:
            raise T2IError(
                f"data.size={cfg.data.size} but Stage-{'I' * mc.stage} makes {mc.image_size}px images",
                hint=f"set data.size={mc.image_size} (the cache needs that size: prepare_cache(..., sizes=(…, "
                f"{mc.image_size})))",
            )
        if cfg.loss.d_on_stage1_mu and mc.stage == 1:
            raise T2IError("loss.d_on_stage1_mu is a Stage-II setting", hint="drop it (or set model.stage=2)")
        if cfg.loss.d_on_stage1_mu and mc.d_condition == "text":
            raise T2IError(
                "loss.d_on_stage1_mu conditions D on Stage-I's μ₀, but model.d_condition=text makes D read the text",
                hint="drop one of the two",
            )
        if cfg.loss.color_lambda > 0 and mc.stage == 1:
            raise T2IError(
                "loss.color_lambda ties Stage-II's colours to Stage-I's: a Stage-I run has one stage",
                hint="drop loss.color_lambda (or set model.stage=2)",
            )
        if cfg.loss.real_sr > 0 and mc.stage == 1:
            raise T2IError(
                "loss.real_sr trains Stage-II on real images resized to Stage-I's size: a Stage-I run has no Stage-II",
                hint="drop loss.real_sr (or set model.stage=2)",
            )
        if cfg.loss.stage1_d > 0 and (mc.stage == 1 or not cfg.model.stage1):
            raise T2IError(
                "loss.stage1_d trains Stage-II against Stage-I's trained D, read from model.stage1's run",
                hint="drop loss.stage1_d" if mc.stage == 1 else "set model.stage1=STAGE_I_RUN (not model.init)",
            )
        if cfg.loss.contrastive > 0 and mc.d_norm != "spectral" and mc.d_text == "concat":
            raise T2IError(
                "loss.contrastive scores every image-text pair with D's matching logit, which BatchNorm couples",
                hint="set model.d_norm=spectral (as the CPU presets do) or model.d_text=projection, or drop "
                "loss.contrastive",
            )
        if cfg.model.stage1 and (mc.stage == 1 or cfg.model.init):
            raise T2IError(
                "model.stage1 is the Stage-I generator of a Stage-II run without model.init",
                hint="drop model.stage1 (model.init already holds every stage)" if cfg.model.init else "drop it",
            )
        self.memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
        with self.seeded_init():  # initial weights from derive_seed(seed, "init"), not the global RNG
            self.G = StackGanGenerator(mc).to(self.device, memory_format=self.memory_format)
            self.D: StackGanDiscriminator = stackgan_discriminator(mc).to(self.device, memory_format=self.memory_format)
        if cfg.model.init:  # a converted official checkpoint or an export: G (both stages) and D if it has one
            init_from_pretrained(cfg.model.init, self.G, self.D)
        elif mc.stage == 2:
            if not cfg.model.stage1:
                raise T2IError("Stage-II needs the Stage-I generator", hint="set model.stage1=RUN_DIR_OF_STAGE_I")
            load_stage1(self.G, cfg.model.stage1)
        self.D1: StackGanDiscriminator | None = None  # loss.stage1_d: Stage-I's trained D, trained on
        if cfg.loss.stage1_d > 0:
            with self.seeded_init():  # its weights come from the file; this keeps the global RNG untouched
                self.D1 = stackgan_discriminator(dataclasses.replace(mc, stage=1, d_condition="ca"))  # reads μ₀
            load_stage1_discriminator(self.D1, cfg.model.stage1)
            self.D1 = self.D1.to(self.device, memory_format=self.memory_format)
        self.d_nets: list[nn.Module] = [self.D] if self.D1 is None else [self.D, self.D1]
        self.trained_g: nn.Module = self.G.stage2 if self.G.stage2 is not None else self.G.stage1
        self._g_params = [p for p in self.trained_g.parameters() if p.requires_grad]
        self._d_params = [p for d in self.d_nets for p in d.parameters()]
        o = cfg.optim
        self.opt_g = torch.optim.Adam(self._g_params, lr=o.lr, betas=(o.beta1, o.beta2))
        self.opt_d = torch.optim.Adam(self._d_params, lr=o.lr_d or o.lr, betas=(o.beta1, o.beta2))
        self.G_ema: StackGanGenerator | None = None
        if o.ema > 0:
            self.G_ema = copy.deepcopy(self.G).requires_grad_(False).eval()
        self.sje_image = load_matching_encoder(cfg, text_dim, self.device) if cfg.loss.sje_match > 0 else None

    # -- GanSystem ------------------------------------------------------------------------------------------------
    @property
    def z_dim(self) -> int:
        return self.model_config.z_dim

    def nets(self) -> dict[str, nn.Module]:
        nets: dict[str, nn.Module] = {"G": self.G, "D": self.D}
        if self.D1 is not None:
            nets["D1"] = self.D1
        if self.G_ema is not None:
            nets["G_ema"] = self.G_ema
        return nets

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    def generator_for_export(self) -> nn.Module:
        return self.G_ema if self.G_ema is not None else self.G

    def generator_call(self, g: nn.Module, z: torch.Tensor, text_emb: torch.Tensor, gen: torch.Generator) -> Any:
        return g(z, text_emb, generator=gen)  # CA noise from ``gen`` too

    @torch.inference_mode()
    def sample(self, z: torch.Tensor, text_emb: torch.Tensor) -> list[torch.Tensor]:
        """All stages ``[stage1, (stage2)]`` from the EMA G if kept, BN in eval mode; CA noise from a fixed seed."""
        g = self.generator_for_export()
        was = g.training
        g.eval()
        try:
            gen = torch_generator(derive_seed(self.cfg.seed, "sample-ca"))
            with self.autocast():
                return [x.float() for x in g(z.to(self.device), text_emb.to(self.device), generator=gen)]
        finally:
            g.train(was)

    # -- the step -------------------------------------------------------------------------------------------------
    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        mc, lc, G, D = self.model_config, self.cfg.loss, self.G, self.D
        text_d = mc.d_condition == "text"
        gen = self.step_generator(step)
        emb = batch["text_emb"].to(self.device).float()
        wrong_emb = batch["wrong_emb"].to(self.device).float()
        real = images_at(batch, D.image_size).to(self.device).contiguous(memory_format=self.memory_format).float()
        b = emb.shape[0]
        z = randn_from(gen, self.device, b, mc.z_dim)
        eps = [randn_from(gen, self.device, b, mc.condition_dim) for _ in range(2)]
        sigma = self.instance_noise_sigma(step)
        noise = [sigma * randn_from(gen, self.device, *real.shape) for _ in range(2)] if sigma > 0 else None
        r1_now = lc.r1 > 0 and step % lc.r1_every == 0
        G.train()
        for d in self.d_nets:
            d.train()
        saved = saved_buffers(G, *self.d_nets)
        with self.autocast():
            out = G.generate(z, emb, eps)
            fake, mu, logvar = out.images[-1], out.mus[-1], out.logvars[-1]
            own_ca = len(out.mus) == len(out.images)  # False: Stage-II reads Stage-I's code (no CA, no KL of its own)
            d_ca: nn.Module | None = self.trained_g.ca
            mu_d = mu.detach()
            if text_d:  # D's own code of φ_t (Reed et al. 2016), trained by D's loss below
                d_ca, mu_d, mu_wrong = None, D.condition(emb), D.condition(wrong_emb)
            else:
                if lc.d_on_stage1_mu or not own_ca:  # a fixed function of the text that the KL term cannot wash out
                    d_ca, mu_d = G.stage1.ca, out.mus[0].detach()
                with torch.no_grad():
                    mu_wrong = d_ca(wrong_emb)[1]
            # --- D update: real + ½(wrong + fake) (Eqs. (3)/(5) with the mismatched pair), fake detached
            x_real = real if noise is None else real + noise[0]
            x_fake = fake.detach() if noise is None else fake.detach() + noise[1]
            if r1_now or lc.ma_gp > 0:
                x_real = x_real.detach().requires_grad_(True)
            mu_real = mu_d.clone().requires_grad_(True) if lc.ma_gp > 0 else mu_d
            f_real, f_fake = D.encode(x_real), D.encode(x_fake)
            uncond = D.uncond_head is not None
            real_logits = D.cond_logits(f_real, mu_real)
            u_real = D.uncond_logits(f_real) if uncond else None
            loss_d, parts = stackgan_d_loss(
                real_logits,
                D.cond_logits(f_real, mu_wrong),
                D.cond_logits(f_fake, mu_d),
                real_uncond=u_real,
                fake_uncond=D.uncond_logits(f_fake) if uncond else None,
                kind=lc.kind,
            )
        loss_d = loss_d + d_penalties(self.cfg, real_logits, u_real, x_real, mu_real, r1_now, parts)
        if self.D1 is not None:  # Stage-I's D on Stage-II's image at Stage-I's size, with Stage-I's μ₀
            mu0, mu0_wrong = out.mus[0].detach(), mu_wrong
            if d_ca is not G.stage1.ca:  # D reads Stage-II's own μ: Stage-I's μ₀ of the wrong texts is needed here
                with torch.no_grad():
                    mu0_wrong = G.stage1.ca(wrong_emb)[1]
            real1 = images_at(batch, mc.stage1_size).to(self.device).contiguous(memory_format=self.memory_format)
            with self.autocast():
                f1_real, f1_fake = self.D1.encode(real1.float()), self.D1.encode(self.to_stage1(fake.detach()))
                loss_d1, _ = stackgan_d_loss(
                    self.D1.cond_logits(f1_real, mu0),
                    self.D1.cond_logits(f1_real, mu0_wrong),
                    self.D1.cond_logits(f1_fake, mu0),
                    kind=lc.kind,
                )
            parts["d_stage1_d"] = float(loss_d1.detach())
            loss_d = loss_d + loss_d1
        # captions of the same class are not negatives (the contrastive and the sentence-matching terms)
        same = same_class_mask(batch.get("class_id"), self.device) if lc.contrastive > 0 or lc.sje_match > 0 else None
        if lc.contrastive > 0:  # D: each real image must match its own caption best among the batch's
            with self.autocast():
                c_real = self.contrastive(D.pair_logits(f_real, mu_d), same)
            parts["d_contrastive"] = float(c_real.detach())
            loss_d = loss_d + lc.contrastive * c_real
        if not self.optimizer_step(loss_d, self._d_params, self.opt_d, [G, *self.d_nets], saved):
            return {"loss_d": float(loss_d.detach()), "nonfinite": 1.0}
        # --- G update: non-saturating adversarial + λ·KL (Eqs. (4)/(6)), D frozen
        saved = saved_buffers(G, *self.d_nets)
        with frozen(D), frozen(self.D1) if self.D1 is not None else contextlib.nullcontext(), self.autocast():
            f = D.encode(fake if noise is None else fake + noise[1])
            if text_d:  # D's code again, from the weights D's step just updated (frozen: no graph to D)
                mu_d = D.condition(emb)
            adv = generator_adv_loss(D.cond_logits(f, mu_d), D.uncond_logits(f) if uncond else None, kind=lc.kind)
            kl = kl_loss(mu, logvar) if own_ca else torch.zeros((), device=self.device)
            loss_g = adv + lc.kl_weight * kl
            if lc.contrastive > 0:  # G: each fake must match its own caption (XMC-GAN); D's weights are frozen
                c_fake = self.contrastive(D.pair_logits(f, mu_d), same)
                parts["g_contrastive"] = float(c_fake.detach())
                loss_g = loss_g + lc.contrastive * c_fake
            if self.D1 is not None:  # Stage-I's D on the resized Stage-II image (its weights frozen here)
                f1 = self.D1.encode(self.to_stage1(fake))
                adv1 = generator_adv_loss(self.D1.cond_logits(f1, out.mus[0].detach()), None, kind=lc.kind)
                parts["g_stage1_d"] = float(adv1.detach())
                loss_g = loss_g + lc.stage1_d * adv1
            if lc.color_lambda > 0:  # StackGAN++ §4.3 between Stage-I (upsampled, fixed) and Stage-II
                coarse = out.images[0].detach()
                cc = color_consistency_loss(fake, coarse, lc.color_lambda, COLOR_COV_RATIO * lc.color_lambda)
                parts["color"] = float(cc.detach())
                loss_g = loss_g + cc
            if lc.real_sr > 0:  # paired super-resolution on real images: Stage-I size → Stage-II size
                k = max(1, b // 2)
                small = images_at(batch, mc.stage1_size)[:k].to(self.device).float()
                small = small.contiguous(memory_format=self.memory_format)
                code = None if own_ca else G.stage1.ca(emb[:k], eps[0][:k])[0].detach()
                refined = self.trained_g(small, emb[:k], eps[1][:k], condition=code)[0]
                sr = (refined.float() - real[:k]).abs().mean()
                parts["g_real_sr"] = float(sr.detach())
                loss_g = loss_g + lc.real_sr * sr
            if lc.spectral > 0:  # Durall et al. 2020: the batch's power spectrum against the real batch's
                spec = spectral_loss(fake, real)
                parts["g_spectral"] = float(spec.detach())
                loss_g = loss_g + lc.spectral * spec
            if self.sje_image is not None:  # AttnGAN's DAMSM sentence loss with the frozen DS-SJE image encoder
                sm = sentence_matching_loss(self.sje_image(fake.float()), emb, lc.sje_gamma, same)
                parts["g_sje"] = float(sm.detach())
                loss_g = loss_g + lc.sje_match * sm
            if lc.ms_weight > 0:  # a second z for the first half of the batch's captions, same text and ε
                k = max(1, b // 2)
                z2 = randn_from(gen, self.device, k, mc.z_dim)
                fake2 = G.generate(z2, emb[:k], [e[:k] for e in eps]).images[-1]
                loss_ms = mode_seeking_loss(fake[:k], fake2, z[:k], z2)
                parts["g_ms"] = float(loss_ms.detach())
                loss_g = loss_g + lc.ms_weight * loss_ms
        logs = {"loss_d": float(loss_d.detach()), "loss_g": float(adv.detach()), "kl": float(kl.detach()), **parts}
        if self.optimizer_step(loss_g, self._g_params, self.opt_g, [G, *self.d_nets], saved):
            self._update_ema(step)
        else:
            logs["nonfinite"] = 1.0
        return logs

    def to_stage1(self, x: torch.Tensor) -> torch.Tensor:
        """A Stage-II image resized to Stage-I's size with antialiasing (as the data's coarser targets are)."""
        return resize_images(x.float(), self.model_config.stage1_size).contiguous(memory_format=self.memory_format)

    def contrastive(self, pair_logits: torch.Tensor, same: torch.Tensor | None) -> torch.Tensor:
        """XMC-GAN's image-to-text InfoNCE (Eq. (2)) over D's matching logits of all pairs, divided by τ."""
        return contrastive_loss(pair_logits / self.cfg.loss.contrastive_temperature(STACKGAN_CONTRASTIVE_TAU), same)

    def _update_ema(self, step: int) -> None:
        if self.G_ema is not None:
            update_ema(self.G_ema, self.G, ema_decay_at(step, self.cfg.optim.ema, self.cfg.optim.ema_start))


def load_stage1_discriminator(d1: StackGanDiscriminator, path: str | Path) -> None:
    """Load Stage-I's trained D into ``d1`` for ``loss.stage1_d``: from the export's ``discriminator/`` if it has
    one, else from the Stage-I run's best evaluated checkpoint, else from its newest checkpoint."""
    p = Path(path)
    state = None
    for folder in (p / "pretrained", p):
        state = state or load_discriminator_state(folder)
    for root in (p / "checkpoints" / "best", p / "checkpoints"):
        if state is None and root.is_dir():
            ckpt = load_latest(root)
            if ckpt is not None:
                state = ckpt["state"]["system"]["nets"].get("D")
    if state is None:
        raise T2IError(
            "loss.stage1_d needs Stage-I's trained discriminator, and model.stage1 holds none",
            path=p,
            hint="point model.stage1 at the Stage-I run folder (its checkpoints hold D), or drop loss.stage1_d",
        )
    try:
        d1.load_state_dict(state)
    except RuntimeError as e:
        raise T2IError(
            f"Stage-I's discriminator does not fit this config's Stage-I D ({str(e).splitlines()[-1].strip()})",
            path=p,
            hint="give Stage-II the Stage-I run's model settings (df_dim, d_norm, d_text)",
        ) from None


def load_matching_encoder(cfg: TrainConfig, text_dim: int, device: torch.device) -> nn.Module:
    """The frozen DS-SJE image encoder θ(v) of ``loss.sje_encoder`` (eval mode: its BatchNorm statistics fixed) for
    ``loss.sje_match``; its joint space must be the caption embeddings' (``text_dim``)."""
    if not cfg.loss.sje_encoder:
        raise T2IError(
            "loss.sje_match scores G's images with the DS-SJE image encoder, but loss.sje_encoder is not set",
            hint="set loss.sje_encoder=TEXT_ENCODER_DIR (the `t2igan encode train` folder that made the embeddings)",
        )
    enc = load_sje_image_encoder(cfg.loss.sje_encoder)
    if enc.dim != text_dim:
        raise T2IError(
            f"its image encoder embeds into {enc.dim} dimensions but the caption embeddings have {text_dim}",
            path=cfg.loss.sje_encoder,
            hint="point loss.sje_encoder at the text encoder that made data.embeddings",
        )
    return enc.to(device).eval().requires_grad_(False)


def d_penalties(
    cfg: TrainConfig,
    real_logits: torch.Tensor,
    u_real: torch.Tensor | None,
    x_real: torch.Tensor,
    mu_real: torch.Tensor,
    r1_now: bool,
    parts: dict[str, float],
    *,
    ma_gp: bool = True,
) -> torch.Tensor:
    """R1 on D's real outputs (conditional + unconditional logits) and MA-GP on the matching pair (x, μ); their sum
    (0 when both are off), each logged in ``parts``. ``ma_gp=False``: no condition (unconditional mode)."""
    lc = cfg.loss
    total = torch.zeros((), device=real_logits.device)
    if r1_now:
        out = real_logits.float().sum() + (u_real.float().sum() if u_real is not None else 0.0)
        r1 = r1_penalty(out, x_real, gamma=lc.r1 * lc.r1_every)
        parts["d_r1"] = float(r1.detach())
        total = total + r1
    if lc.ma_gp > 0 and ma_gp:
        gp = matching_aware_gp(real_logits, x_real, mu_real, weight=lc.ma_gp, power=lc.ma_gp_power)
        parts["d_ma_gp"] = float(gp.detach())
        total = total + gp
    return total
