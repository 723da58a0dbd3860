"""`StackGanPPSystem`: the StackGAN++ tree as a `GanSystem` (``model.name: stackgan++``).

    t2igan train --config stackganpp_cpu --data CACHE --set run_dir=runs/sgpp
    t2igan train --config stackganpp_cpu --data CACHE --set model.conditional=false   # unconditional mode

All branches and their discriminators train together (StackGAN++ §4): per branch the joint conditional +
unconditional D loss, Σ branches of the G loss + 2.0·KL (+ colour consistency with ``model.color_lambda``), and an
EMA of G (``optim.ema``, 0.999 in the release) that is sampled and exported. The batch needs images at the finest
size (``data.size``); the coarser scales are antialiased resizes of the same crop.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from t2igan.models.stackganpp import StackGanPPConfig
from t2igan.training.config import TrainConfig
from t2igan.training.init_from import init_from_pretrained
from t2igan.training.stackgan_steps import StackGanPPSteps
from t2igan.training.stackgan_system import model_params, optim_settings
from t2igan.training.system import GanSystem
from t2igan.utils.errors import T2IError
from t2igan.utils.seed import derive_seed, torch_generator

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},  # GF_DIM = DF_DIM = 64, R_NUM 2, 64/128/256
    "cpu": {"gf_dim": 16, "df_dim": 16, "condition_dim": 64, "base_size": 64, "branch_num": 2},
    "tiny": {"gf_dim": 4, "df_dim": 8, "r_num": 1, "condition_dim": 8, "z_dim": 16, "base_size": 16,
             "branch_num": 2},
}  # fmt: skip


class StackGanPPSystem(GanSystem):
    """StackGAN++ (conditional or unconditional); the step itself is `StackGanPPSteps`."""

    config_class = StackGanPPConfig

    def __init__(self, cfg: TrainConfig, text_dim: int, device: torch.device) -> None:
        super().__init__(cfg, text_dim, device)
        self.model_config = StackGanPPConfig.from_dict(model_params(cfg, PRESETS, text_dim))
        mc = self.model_config
        if mc.image_size != cfg.data.size:
            raise T2IError(
                f"data.size={cfg.data.size} but the finest StackGAN++ branch is {mc.image_size}px",
                hint=f"set data.size={mc.image_size} (coarser branches are resized from it)",
            )
        with self.seeded_init():  # initial weights from derive_seed(seed, "init"), not the global RNG
            self.steps = StackGanPPSteps(
                mc,
                optim_settings(cfg),
                ema_decay=cfg.optim.ema,
                ema_start=cfg.optim.ema_start,
                seed=derive_seed(cfg.seed, "stackgan++"),
                device=str(device),
            )
        if cfg.model.init:  # a converted official checkpoint or an export: G (and its EMA copy), Ds if present
            ema = (self.steps.G_ema,) if self.steps.G_ema is not None else ()
            init_from_pretrained(cfg.model.init, self.steps.G, self.steps.Ds, copies=ema)

    @property
    def z_dim(self) -> int:
        return self.model_config.z_dim

    def nets(self) -> dict[str, nn.Module]:
        nets: dict[str, nn.Module] = {"G": self.steps.G, "D": self.steps.Ds}
        if self.steps.G_ema is not None:
            nets["G_ema"] = self.steps.G_ema
        return nets

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.steps.opt_g, "opt_d": self.steps.opt_d}

    def generator_for_export(self) -> nn.Module:
        return self.steps.G_ema if self.steps.G_ema is not None else self.steps.G

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        self.steps.grad_sync = self.grad_sync
        return self.steps.train_step(batch, generator=self.step_generator(step), step=step)

    @torch.inference_mode()
    def sample(self, z: torch.Tensor, text_emb: torch.Tensor | None) -> list[torch.Tensor]:
        """All branches, coarse → fine, from the EMA generator; text is ignored in unconditional mode."""
        emb = text_emb if self.model_config.conditional else None
        return self.steps.sample(z, emb, generator=torch_generator(derive_seed(self.cfg.seed, "sample-ca")))
