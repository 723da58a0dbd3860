"""`t2igan train`: train a text-to-image GAN from a config file or preset, with overrides."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import click

from t2igan.training.config import TrainConfig
from t2igan.utils import device as devices
from t2igan.utils.errors import T2IError

logger = logging.getLogger(__name__)

EPILOG = """\b
Examples:
  # GAN-INT-CLS on the synthetic flowers (CPU preset), 2000 steps, into runs/flowers:
  t2igan train --config reed_cpu --data data/flowers/.t2igan_cache --out runs/flowers --set train.steps=2000
\b
  # the paper's setting on Oxford-102 char-CNN-RNN embeddings, another lr, bf16 autocast:
  t2igan train -c reed_paper --data data/oxford/.t2igan_cache --set optim.lr=1e-4 --set train.precision=bf16
\b
  # continue exactly where it stopped (Ctrl-C and SIGTERM save a checkpoint first):
  t2igan train --out runs/flowers --resume
\b
  # print the resolved config and model sizes without training:
  t2igan train -c reed_cpu --data CACHE --dry-run
\b
  # StackGAN: Stage-I, then Stage-II on the frozen Stage-I (CPU presets unless --config is given); StackGAN++:
  t2igan train --model stackgan --stage 1 --data data/flowers128 --out runs/sg1
  t2igan train --model stackgan --stage 2 --stage1 runs/sg1 --data data/flowers128 --out runs/sg2
  t2igan train --model stackgan++ --data data/flowers128 --out runs/sgpp
\b
  # two processes (DDP, gloo on CPU / NCCL on GPU); train.batch_size stays the global batch:
  torchrun --standalone --nproc_per_node=2 -m t2igan train -c reed_cpu --data CACHE --out runs/ddp
\b
Presets: reed_paper (Reed et al. 2016), reed_port (widths 64, no residual blocks), reed_cpu (synthetic flowers on a
CPU), reed_tiny (seconds; smoke tests), stackgan_stage{1,2}_{cpu,cub,oxford},
stackganpp_{cpu,cpu256,uncond_cpu,cub,oxford}.
Variants (reed): --set loss.variant=gan|gan-cls|gan-int|gan-int-cls. A key the model family does not use is refused.
See docs/training.md for every option and its source.
"""


@click.command("train", epilog=EPILOG, context_settings={"max_content_width": 118})
@click.argument("config_arg", metavar="[CONFIG]", required=False)
@click.option("-c", "--config", "config", metavar="CONFIG.yaml|PRESET", help="Config file or preset name.")
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key (repeat).")
@click.option(
    "--model",
    "model",
    metavar="NAME",
    help="Model family: reed | stackgan | stackgan++. Without --config it picks the family's CPU preset.",
)
@click.option("--stage", type=click.IntRange(1, 2), help="StackGAN stage (sets model.stage).")
@click.option(
    "--stage1", type=click.Path(), help="StackGAN Stage-I run for Stage-II (sets model.stage1; implies stage 2)."
)
@click.option(
    "--data",
    type=click.Path(),
    help="Dataset folder (uses its .t2igan_cache) or a prepared cache (sets data.cache).",
)
@click.option("--out", type=click.Path(), help="Run folder (sets run_dir).")
@click.option("--resume", is_flag=True, help="Continue from the newest valid checkpoint in the run folder.")
@click.option("--dry-run", is_flag=True, help="Resolve the config, build data and model, print a summary; no training.")
@click.option("--device", default=None, metavar="DEVICE", help=f"Sets train.device: {devices.DEVICE_HELP}.")
def train(
    config_arg: str | None,
    config: str | None,
    overrides: tuple[str, ...],
    model: str | None,
    stage: int | None,
    stage1: str | None,
    data: str | None,
    out: str | None,
    resume: bool,
    dry_run: bool,
    device: str | None,
) -> None:
    """Train GAN / GAN-CLS / GAN-INT / GAN-INT-CLS (Reed et al. 2016) or another registered model family."""
    from t2igan.training.config import load_config

    if config and config_arg and config != config_arg:
        raise T2IError("give the config once (positional or --config)")
    source = config or config_arg
    sets = list(overrides)
    if stage1 is not None:
        if stage == 1:
            raise T2IError("--stage1 is for Stage-II", hint="use --stage 2 with --stage1 (or drop --stage)")
        stage = 2
        sets.append(f"model.stage1={stage1}")
    if stage is not None:
        sets.append(f"model.stage={stage}")
    if data:
        sets.append(f"data.cache={data}")
    if out:
        sets.append(f"run_dir={out}")
    if device:
        sets.append(f"train.device={device}")
    if source is None and resume and out and (Path(out) / "config.yaml").is_file():
        source = str(Path(out) / "config.yaml")  # resume with the run's own resolved config
    if source is None and model is not None:
        source = default_config_for(model, stage)
    if source is None:
        raise T2IError("no config given", hint="pass --config reed_cpu (or a YAML file); see t2igan train --help")
    cfg = load_config(source, sets)
    if model is not None and cfg.model.name != model:
        raise T2IError(
            f"--model {model} but config {source} is a {cfg.model.name} config",
            hint="drop --model, or pass a config of that family",
        )
    if stage is not None and cfg.model.name != "stackgan":
        raise T2IError(f"--stage/--stage1 are StackGAN options; config {source} is {cfg.model.name}")
    if cfg.train.device != "auto":  # this machine must have it; "auto" is resolved by the trainer
        devices.resolve_device(cfg.train.device, "--device" if device else "train.device")
    if dry_run:
        _dry_run(cfg)
        return
    _train(cfg, resume)


def default_config_for(model: str, stage: int | None) -> str:
    """The CPU preset of a model family (what ``--model`` alone trains)."""
    defaults = {"reed": "reed_cpu", "stackgan": f"stackgan_stage{stage or 1}_cpu", "stackgan++": "stackganpp_cpu"}
    if model not in defaults:
        raise T2IError(f"no CPU preset for --model {model!r}", hint=f"choose from {sorted(defaults)} or pass --config")
    return defaults[model]


def _train(cfg: TrainConfig, resume: bool) -> None:
    from t2igan.metrics.training_eval import EvalHook
    from t2igan.training.distributed import init_distributed, launched_by_torchrun
    from t2igan.training.trainer import Trainer

    dist = init_distributed(cfg.train.device) if launched_by_torchrun() else None
    hook = EvalHook.for_trainer_config(cfg)
    try:
        trainer = Trainer(cfg, dist=dist, resume=resume, callbacks=[hook] if hook else [])
        if trainer.is_main:
            variant = f"/{cfg.loss.variant}" if "loss.variant" in trainer.system.honoured_keys else ""
            logger.info(
                "training %s%s for %d steps (%d per epoch) → %s",
                cfg.model.name,
                variant,
                trainer.total_steps,
                trainer.steps_per_epoch,
                trainer.run_dir,
            )
        summary = trainer.fit()
    finally:
        if dist is not None:
            dist.close()
    if trainer.is_main:
        last = summary["last"]
        state = "stopped (checkpoint saved; continue with --resume)" if summary["stopped"] else "done"
        if last:
            loss_d, loss_g = last.get("loss_d", float("nan")), last.get("loss_g", float("nan"))
            click.echo(
                f"{state}: step {summary['step']}, {summary['seconds']} s, loss_d {loss_d:.4f}, "
                f"loss_g {loss_g:.4f}, {summary['images_per_s']} images/s"
            )
        else:  # resumed at (or past) the last step: nothing trained, the export is rewritten
            click.echo(f"{state}: already at step {summary['step']}; nothing to train (raise train.steps to go on)")
        if not summary["stopped"] and cfg.train.export:
            click.echo(f"pretrained model: {trainer.run_dir / 'pretrained'}")


def _dry_run(cfg: TrainConfig) -> None:
    import torch

    from t2igan.training.system import get_system_class
    from t2igan.training.trainer import build_dataset, resolve_device

    c = cfg
    dataset = None
    if c.data.cache:
        dataset = build_dataset(c)
        text_dim = int(dataset.batch([0, 1], 0)["text_emb"].shape[1])
    else:
        text_dim = int(c.model.params.get("text_dim", 1024))
    system = get_system_class(c.model.name)(c, text_dim, resolve_device(c.train.device))
    click.echo(_yaml(c))
    for name, net in system.nets().items():
        n = sum(p.numel() for p in net.parameters())
        click.echo(f"# {name}: {type(net).__name__}, {n / 1e6:.2f} M parameters")
    if dataset is not None:
        spe = len(dataset) // c.train.batch_size
        steps = c.train.steps or math.ceil((c.train.epochs or 0) * spe)
        click.echo(f"# data: {len(dataset)} samples, {text_dim}-d text, {spe} steps/epoch, {steps} steps")
    else:
        click.echo(f"# data: none given (--data CACHE); text_dim assumed {text_dim}")
    click.echo(f"# torch {torch.__version__}, {torch.get_num_threads()} threads; dry run: nothing trained")


def _yaml(cfg: TrainConfig) -> str:
    import yaml

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False).rstrip()
