"""`StackGanSystem`: StackGAN v1 as a `GanSystem` — Stage-I (``model.stage=1``) or Stage-II (``model.stage=2``).

    t2igan train --config stackgan_stage1_cpu --data CACHE --set run_dir=runs/sg1
    t2igan train --config stackgan_stage2_cpu --data CACHE --set run_dir=runs/sg2 --set model.stage1=runs/sg1

Stage-II loads the Stage-I generator named by ``model.stage1`` (a run folder, its ``pretrained/`` folder, or a
``generator/`` folder), freezes it and trains its own CA, encoder, residual blocks, up-sampling and a 256-px D (paper
§3.4). The exported generator holds both stages, so the pipeline returns ``[stage1, stage2]`` images.

The batch needs images at the last stage's size (``data.size``; smaller sizes are derived by antialiased
resizing of the same crop) plus ``text_emb`` and ``wrong_emb`` (a caption of a different class, GAN-CLS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from t2igan.models.stackgan import StackGanConfig, StackGanGenerator
from t2igan.training.config import TrainConfig
from t2igan.training.init_from import init_from_pretrained
from t2igan.training.stackgan_steps import OptimSettings, StackGanSteps
from t2igan.training.system import GanSystem
from t2igan.utils.errors import T2IError
from t2igan.utils.seed import derive_seed, torch_generator

# model.preset → architecture overrides (the paper values are the dataclass defaults).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},  # GF_DIM 128, DF_DIM 64, R_NUM 4, 64 → 256
    "cpu": {"gf_dim": 32, "df_dim": 32, "r_num": 2, "condition_dim": 64, "stage1_size": 64, "stage2_size": 128},
    "tiny": {"gf_dim": 8, "df_dim": 8, "r_num": 1, "condition_dim": 8, "z_dim": 16, "stage1_size": 16,
             "stage2_size": 32},
}  # fmt: skip


def optim_settings(cfg: TrainConfig) -> OptimSettings:
    o = cfg.optim
    return OptimSettings(
        lr_g=o.lr,
        lr_d=o.lr_d if o.lr_d is not None else o.lr,
        beta1=o.beta1,
        beta2=o.beta2,
        precision=cfg.train.precision,
        channels_last=cfg.train.channels_last,
    )


def model_params(cfg: TrainConfig, presets: dict[str, dict[str, Any]], text_dim: int) -> dict[str, Any]:
    preset = cfg.model.preset or "paper"
    if preset not in presets:
        raise T2IError(f"unknown model.preset {preset!r} for {cfg.model.name}", hint=f"choose from {sorted(presets)}")
    params = {**presets[preset], **cfg.model.params}
    params["text_dim"] = text_dim
    return params


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
    """StackGAN Stage-I or Stage-II; the step itself is `StackGanSteps` (lean, matching-aware, CA + KL)."""

    config_class = StackGanConfig

    def __init__(self, cfg: TrainConfig, text_dim: int, device: torch.device) -> None:
        super().__init__(cfg, text_dim, device)
        params = model_params(cfg, PRESETS, text_dim)
        self.model_config = StackGanConfig.from_dict(params)
        mc = self.model_config
        if mc.image_size != cfg.data.size:
            raise T2IError(
                f"data.size={cfg.data.size} but Stage-{'I' * mc.stage} makes {mc.image_size}px images",
                hint=f"set data.size={mc.image_size} (the cache needs that size: prepare_cache(..., sizes=(…, "
                f"{mc.image_size})))",
            )
        with self.seeded_init():  # initial weights from derive_seed(seed, "init"), not the global RNG
            self.steps = StackGanSteps(
                mc, optim_settings(cfg), seed=derive_seed(cfg.seed, "stackgan"), device=str(device)
            )
        if cfg.model.init:  # a converted official checkpoint or an export: G (both stages) and D if it has one
            init_from_pretrained(cfg.model.init, self.steps.G, self.steps.D)
        elif mc.stage == 2:
            if not mc.stage1:
                raise T2IError("Stage-II needs the Stage-I generator", hint="set model.stage1=RUN_DIR_OF_STAGE_I")
            load_stage1(self.steps.G, mc.stage1)

    @property
    def z_dim(self) -> int:
        return self.model_config.z_dim

    def nets(self) -> dict[str, nn.Module]:
        return {"G": self.steps.G, "D": self.steps.D}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.steps.opt_g, "opt_d": self.steps.opt_d}

    def generator_for_export(self) -> nn.Module:
        return self.steps.G

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        self.steps.grad_sync = self.grad_sync
        return self.steps.train_step(batch, generator=self.step_generator(step))

    @torch.inference_mode()
    def sample(self, z: torch.Tensor, text_emb: torch.Tensor) -> list[torch.Tensor]:
        """All stages ``[stage1, (stage2)]``, BN in eval mode; CA noise from a fixed seed (same grid every time)."""
        return self.steps.sample(z, text_emb, generator=torch_generator(derive_seed(self.cfg.seed, "sample-ca")))
