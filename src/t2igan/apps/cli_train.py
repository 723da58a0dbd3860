"""`t2igan train`: train a text-to-image GAN from a config file or preset, with overrides."""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import click

from t2igan.training.config import TrainConfig
from t2igan.utils import device as devices
from t2igan.utils.errors import T2IError

logger = logging.getLogger(__name__)

EPILOG = """\b
Examples:
  # your own data in one command: a dataset folder (imagefolder, Reed, StackGAN pickles, COCO captions) is prepared,
  # its captions encoded (DS-SJE char-CNN-RNN with ≥ 2 classes, else MiniLM) and settings chosen for its size:
  t2igan train --data data/shapes --out runs/shapes
\b
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
    help="Dataset folder (prepared and encoded on the way, into its .t2igan_cache) or a prepared cache. Without a "
    "config: the reed_cpu preset with settings chosen for the data size.",
)
@click.option(
    "--text-encoder",
    default="auto",
    show_default=True,
    metavar="auto|char-cnn-rnn|word-rnn|minilm|DIR",
    help="With --data: what encodes the captions (auto: the cache's embeddings if any, else DS-SJE char-CNN-RNN "
    "with ≥ 2 classes, else MiniLM; word-rnn: the DS-SJE word-LSTM, trained on the data).",
)
@click.option(
    "--text-preset",
    type=click.Choice(["cpu", "paper", "tiny"]),
    default="cpu",
    show_default=True,
    help="DS-SJE preset when the char-CNN-RNN or word-LSTM is trained.",
)
@click.option("--out", type=click.Path(), help="Run folder (sets run_dir).")
@click.option("--resume", is_flag=True, help="Continue from the newest valid checkpoint in the run folder.")
@click.option("--dry-run", is_flag=True, help="Resolve the config, build data and model, print a summary; no training.")
@click.option("--device", default=None, metavar="DEVICE", help=f"Sets train.device: {devices.DEVICE_HELP}.")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="torch CPU threads (sets train.threads; default: every core other processes leave free).",
)
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
    threads: int | None,
    text_encoder: str,
    text_preset: str,
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
    if out:
        sets.append(f"run_dir={out}")
    if device:
        sets.append(f"train.device={device}")
    if threads:
        sets.append(f"train.threads={threads}")
    if source is None and resume and out and (Path(out) / "config.yaml").is_file():
        source = str(Path(out) / "config.yaml")  # resume with the run's own resolved config
    if source is None and model is not None:
        source = default_config_for(model, stage)
    auto = source is None and data is not None  # own data, no recipe: the CPU preset, settings for the data size
    if auto:
        source = "reed_cpu"
    if source is None:
        raise T2IError("no config given", hint="pass --config reed_cpu (or a YAML file); see t2igan train --help")
    if data and not auto and text_encoder == "auto" and _ready_cache(data):
        sets.append(f"data.cache={data}")  # a prepared cache with embeddings: nothing to prepare or decide
    elif data:
        sets += own_data_overrides(data, source, sets, auto=auto, text_encoder=text_encoder, text_preset=text_preset)
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


def _ready_cache(data: str) -> bool:
    """``data`` is a prepared cache folder (not a dataset folder) that already holds caption embeddings."""
    from t2igan.data.cache import PreparedCache

    if not (Path(data) / "meta.json").is_file():
        return False
    try:
        return bool(PreparedCache.open(data).embedding_keys())
    except T2IError:
        return False


def own_data_overrides(
    data: str, source: str, sets: list[str], *, auto: bool, text_encoder: str, text_preset: str
) -> list[str]:
    """Prepare ``data`` (a dataset folder or a cache) and its caption embeddings; the ``key=value`` overrides that
    train on them. ``auto``: no config was given, so resolution, augmentation and batch follow the data size (keys the
    user set with --set win). Each decision is stated in one line."""
    from t2igan.training.config import load_config, parse_override
    from t2igan.training.distributed import launched_by_torchrun
    from t2igan.training.own_data import count_images, data_defaults, prepare_own_data
    from t2igan.training.system import check_config, get_system_class

    def say(line: str) -> None:
        click.echo(line, err=True)

    if launched_by_torchrun():  # every rank would prepare and encode at once: only a ready cache is accepted
        from t2igan.data.cache import PreparedCache

        try:
            ready = bool(PreparedCache.open(data).embedding_keys())
        except T2IError:
            ready = False
        if not ready:
            raise T2IError(
                "under torchrun, --data must already be prepared with caption embeddings",
                path=data,
                hint=f"prepare it once in one process: t2igan train --data {data} --dry-run (same options)",
            )
        return [f"data.cache={data}"]
    user = dict(parse_override(s) for s in sets)
    base = load_config(source, sets)
    check_config(base, get_system_class(base.model.name).honoured_keys)  # a config error before any data work
    extra: dict[str, object] = {}
    if auto:
        chosen, line = data_defaults(count_images(data))
        extra.update({k: v for k, v in chosen.items() if k not in user})
        length = f"{base.train.steps} steps" if base.train.steps else f"{base.train.epochs:g} epochs"
        say(f"settings: {line}; preset {source}, {length} — change any with --set KEY=VALUE")
    size = int(extra.get("data.size", base.data.size))  # type: ignore[call-overload]
    plan = prepare_own_data(
        data,
        size,
        text_encoder=text_encoder,
        text_preset=text_preset,
        embeddings=base.data.embeddings,
        seed=base.seed,
    )
    if plan.n_classes == 1:  # said once here instead of as the dataset's Python warning
        say("note: one class: GAN-CLS's mismatching captions come from other images of it")
        warnings.filterwarnings("ignore", message=r"the \w+ split has one class")
    extra["data.cache"] = str(plan.cache)
    extra.setdefault("data.embeddings", plan.embeddings)
    if plan.text_encoder and "data.text_encoder" not in user:
        extra["data.text_encoder"] = plan.text_encoder
    batch = base.train.batch_size
    if auto and "train.batch_size" not in user and plan.n_train < 2 * batch:
        extra["train.batch_size"] = max(2, plan.n_train // 2)
        say(f"settings: {plan.n_train} training images: batch {extra['train.batch_size']} (train.batch_size)")
    return [f"{k}={v}" for k, v in extra.items()]


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
    threads = c.train.threads or f"auto (≤ {torch.get_num_threads()})"  # the trainer applies train.threads
    click.echo(f"# torch {torch.__version__}, threads: {threads}; dry run: nothing trained")


def _yaml(cfg: TrainConfig) -> str:
    import yaml

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False).rstrip()
