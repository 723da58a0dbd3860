"""`t2igan demo` — the README's first command: Reed et al. 2016's conditional GAN end to end on a CPU in ~13 minutes.

    synthesise flowers → prepare cache → text encoder + caption embeddings → train the GAN (``reed_cpu``; variant
    ``gan`` by default, ``--variant gan-int-cls`` for the paper's full model)
    → held-out-caption grid, interpolation strips, loss curves, attribute accuracy → OUT/index.html

Every step reuses what an earlier run left in OUT when its inputs are unchanged (dataset, cache, encoder,
embeddings); training always starts fresh (a new run replaces the old one). OUT must be new, empty or a demo folder
(marked ``.t2igan-demo.json``): the demo never writes into, or deletes from, any other folder. The training step
gets whatever is left of ``--minutes`` after the other steps (``train.max_minutes``); torch threads follow the
machine's load (``pick_threads``). A slow machine overruns the budget rather than train for less than 40 % of it
(said in the summary). ``summary.json`` records step times, the load average, threads and the attribute accuracy.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from t2igan.data.cache import PreparedCache
from t2igan.data.synthetic_write import is_synthetic_folder
from t2igan.utils.cpu import other_processes_cpu_share, pick_threads
from t2igan.utils.errors import T2IError
from t2igan.utils.io import atomic_write_json
from t2igan.utils.outputs import claim_folder

logger = logging.getLogger(__name__)

FULL_IMAGES = 8189  # Oxford-102's size (Reed et al. 2016)
# From a 30-minute budget on, the text encoder is the word-level one (Reed et al. 2016's word-LSTM, 8,000 DS-SJE
# steps, ~4 minutes): a linear probe reads every attribute of unseen-class captions off its embedding (100 %; the
# char-CNN-RNN's: shape 86 %, count 87–90 %), and an hour-long GAN reaches the char model's ceiling on unseen
# captions (docs/quality.md). The 13-minute demo keeps the paper's char-CNN-RNN and the cpu preset's steps.
LONG_BUDGET_MINUTES = 30.0
LONG_ENCODER_STEPS = 8000
LONG_ENCODER_MODEL = "word-rnn"


@dataclass
class DemoOptions:
    out: Path = Path("runs/demo")
    minutes: float = 13.0
    quick: bool = False  # a tiny version (< 60 s) for tests and smoke checks
    n_images: int | None = None
    seed: int = 0
    fresh: bool = False  # ignore reusable data/encoder
    threads: int | None = None  # torch threads; None = every core other processes leave free (utils.cpu)
    variant: str = "gan"  # Reed et al.'s variant; with reed_cpu's contrastive term "gan" measured best (quality.md)

    @property
    def images(self) -> int:
        return self.n_images or (256 if self.quick else FULL_IMAGES)

    @property
    def size(self) -> int:
        return 32 if self.quick else 64

    @property
    def long(self) -> bool:
        return not self.quick and self.minutes >= LONG_BUDGET_MINUTES

    @property
    def encoder_steps(self) -> int | None:
        """DS-SJE steps of the text encoder: the ``cpu`` preset's (None) up to LONG_BUDGET_MINUTES, more above."""
        return LONG_ENCODER_STEPS if self.long else None

    @property
    def encoder_model(self) -> str:
        """φ(t): the char-CNN-RNN up to LONG_BUDGET_MINUTES, the word-level encoder above."""
        return LONG_ENCODER_MODEL if self.long else "char-cnn-rnn"


@dataclass
class DemoState:
    """What the steps hand to each other, and the timings for the summary."""

    opts: DemoOptions
    t0: float = field(default_factory=time.perf_counter)
    times: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    cache: PreparedCache | None = None
    encoder: Any = None
    emb_key: str | None = None
    train_summary: dict[str, Any] = field(default_factory=dict)
    figures: list[Any] = field(default_factory=list)
    attr: dict[str, Any] | None = None
    style: dict[str, Any] | None = None
    evaluator: Any = None
    metrics: dict[str, Any] = field(default_factory=dict)
    threads: int = 1
    busy: float = 0.0  # cores kept busy by other processes when the threads were chosen

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    @property
    def budget(self) -> float:
        return self.opts.minutes * 60.0


@contextmanager
def step(state: DemoState, name: str, what: str) -> Iterator[None]:
    logger.info("[%6.1fs] %s: %s", state.elapsed, name, what)
    t = time.perf_counter()
    yield
    state.times[name] = round(time.perf_counter() - t, 1)
    logger.info("[%6.1fs] %s: done in %.1fs", state.elapsed, name, state.times[name])


# ------------------------------------------------------------------------------------------------------------ steps
def step_data(state: DemoState) -> None:
    """Synthetic flowers in Reed's Oxford-102 layout + the prepared cache (both reused when unchanged)."""
    from t2igan.data.cache import prepare_cache
    from t2igan.data.synthetic import write_synthetic_dataset

    o = state.opts
    src = o.out / "data" / "flowers"
    want = {"n": o.images, "size": o.size, "seed": o.seed}
    have = _read_json(src / "attributes.json").get("generator", {}) if (src / "attributes.json").is_file() else {}
    if o.fresh or any(have.get(k) != v for k, v in want.items()):
        write_synthetic_dataset(src, n=o.images, size=o.size, seed=o.seed, progress=True)
        state.notes["data"] = f"synthesised {o.images} images at {o.size}px"
    else:
        state.notes["data"] = f"reused {o.images} images at {o.size}px"
    state.cache = PreparedCache.open(prepare_cache(src, sizes=(o.size,), progress=True))


def step_encoder(state: DemoState, threads: int | None = None) -> None:
    """The text encoder φ: char-CNN-RNN (or, for long budgets, the word-level encoder) trained with DS-SJE (Reed et
    al., CVPR 2016) on the training split.

    Reused when ``OUT/text_encoder`` was trained on this very cache with the same model and steps (recorded beside it).
    """
    from t2igan.text import encode_captions, load_text_encoder, make_train_config, train_sje

    o = state.opts
    enc_dir = o.out / "text_encoder"
    stamp = enc_dir / "demo.json"
    cfg = make_train_config(
        "tiny" if o.quick else "cpu", seed=o.seed, steps=o.encoder_steps, text_model=o.encoder_model
    )
    made = _read_json(stamp)
    same = made.get("steps", cfg.steps) == cfg.steps and made.get("model", "char-cnn-rnn") == cfg.text_model
    if not o.fresh and made.get("cache") == state.cache.fingerprint and same:
        state.encoder = load_text_encoder(enc_dir)
        state.notes["encoder"] = f"reused {cfg.text_model} ({state.encoder.dim}-d)"
    else:
        shutil.rmtree(enc_dir, ignore_errors=True)
        report = train_sje(state.cache, enc_dir, cfg, progress=True, threads=threads)
        state.encoder = load_text_encoder(enc_dir)
        atomic_write_json(stamp, {"cache": state.cache.fingerprint, "steps": cfg.steps, "model": cfg.text_model})
        zs = report.get("zero_shot", report.get("zero_shot_accuracy")) if isinstance(report, dict) else None
        state.notes["encoder"] = f"trained {cfg.text_model} ({state.encoder.dim}-d, {cfg.steps} DS-SJE steps)" + (
            f", zero-shot accuracy {zs}" if isinstance(zs, (int, float)) else ""
        )
    state.emb_key = encode_captions(state.cache, state.encoder)


EVALUATOR_STEPS = 1200  # attribute + style heads: 99 % / R² 0.6–0.97 on held-out real images (docs/quality.md)


def _evaluator_dir(state: DemoState) -> Path:
    return Path(state.cache.root) / "evaluator"


def _reusable_evaluator(state: DemoState) -> Any:
    """The evaluator in ``<cache>/evaluator`` if it was trained on this cache, else None."""
    from t2igan.metrics.evaluator import load_evaluator

    ev_dir = _evaluator_dir(state)
    if state.opts.fresh or not (ev_dir / "config.json").is_file():
        return None
    ev = load_evaluator(ev_dir)
    return ev if getattr(ev, "report", {}).get("cache_fingerprint") == state.cache.fingerprint else None


def start_evaluator(state: DemoState) -> subprocess.Popen | None:
    """Start training the evaluator in a one-thread process beside the text encoder, when both are needed and the
    machine has two free cores: DS-SJE's small steps gain nothing from a second thread (measured: 206 s on two
    threads, 180 s of CPU on one), so the evaluator's ~50 s come for free. None = train it inline later."""
    o = state.opts
    if o.quick or state.threads < 2 or _reusable_evaluator(state) is not None:
        return None
    cmd = [sys.executable, "-m", "t2igan", "-q", "evaluator", "train", str(state.cache.root), "--size", str(o.size)]
    cmd += ["--steps", str(EVALUATOR_STEPS), "--seed", str(o.seed), "--out", str(_evaluator_dir(state)), "--overwrite"]
    log = (o.out / "logs").resolve()
    log.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(log / "evaluator.log", "w") as f:
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)


def step_evaluator(state: DemoState, job: subprocess.Popen | None = None) -> None:
    """The attribute evaluator (docs/metrics.md), trained on the *real* images only, before the GAN: training-time
    evaluation selects the exported checkpoint on validation images with it, and the final figures use it.
    Reused when ``<cache>/evaluator`` was trained on this cache (where `t2igan evaluate` looks for it too); ``job``:
    the process `start_evaluator` started, waited for here."""
    from t2igan.metrics.evaluator import load_evaluator, train_evaluator

    o = state.opts
    if job is not None:
        if job.wait() != 0:
            last = (o.out / "logs" / "evaluator.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise T2IError(
                f"training the evaluator failed ({last[0] if last else job.returncode})",
                path=o.out / "logs" / "evaluator.log",
            )
        state.evaluator = load_evaluator(_evaluator_dir(state))
        state.notes["evaluator"] = f"trained ({EVALUATOR_STEPS} steps, one thread, beside the text encoder)"
        return
    ev = _reusable_evaluator(state)
    if ev is None:
        steps = 20 if o.quick else EVALUATOR_STEPS
        ev = train_evaluator(state.cache, size=o.size, steps=steps, seed=o.seed, progress=True)
        ev.save_pretrained(_evaluator_dir(state), report=ev.report, overwrite=True)
        state.notes["evaluator"] = f"trained ({steps} steps)"
    else:
        state.notes["evaluator"] = "reused"
    state.evaluator = ev


def train_config(state: DemoState, steps: int, max_minutes: float | None = None) -> Any:
    from t2igan.training.config import load_config

    o = state.opts
    overrides = [
        f"data.cache={state.cache.root}",
        f"data.embeddings={state.emb_key}",
        f"data.size={o.size}",
        f"run_dir={o.out}",
        f"data.text_encoder={o.out / 'text_encoder'}",
        f"seed={o.seed}",
        f"train.steps={steps}",
        f"loss.variant={o.variant}",
    ]
    overrides.append(f"train.threads={state.threads}")
    if max_minutes is not None:
        overrides.append(f"train.max_minutes={max_minutes:.3f}")
    if o.quick:
        overrides += [
            "model.preset=tiny",
            f"model.image_size={o.size}",
            "train.batch_size=32",
            "train.log_every=2",
            "train.tensorboard=false",
            "train.sample_every=10",
        ]
    return load_config("reed_cpu", overrides)  # t2igan/configs/reed_cpu.yaml: the CPU preset


def calibrate(state: DemoState, n_steps: int = 6) -> float:
    """Seconds per training step on this machine, timed on a throwaway copy (the real run starts fresh)."""
    from t2igan.training.trainer import Trainer

    trainer = Trainer(train_config(state, steps=10**6))
    saved = copy.deepcopy(trainer.system.state_dict())
    times = []
    for s in range(n_steps):
        idx, epoch = trainer.batch_indices(s)
        batch = trainer.dataset.batch(idx, epoch)
        t = time.perf_counter()
        trainer.system.train_step(batch, s)
        times.append(time.perf_counter() - t)
    trainer.system.load_state_dict(saved)
    return float(np.median(times[2:] if len(times) > 3 else times))


def eval_marks(minutes: float) -> list[float]:
    """Training minutes to evaluate at: the curve's 2, 5, 10, 30, 60, … that fit, and 60 % / 80 % of the run unless
    a curve mark is already that close (within 10 % of the run; an evaluation costs seconds of training)."""
    curve = [m for m in (2, 5, 10, 30, 60, 120) if m < 0.95 * minutes]
    late = [round(f * minutes, 2) for f in (0.6, 0.8)]
    return sorted({*curve, *(m for m in late if all(abs(m - c) >= 0.1 * minutes for c in curve))})


def step_train(state: DemoState, reserve: float) -> None:
    """The GAN (``--variant``) with the CPU preset, for the time that is left minus ``reserve`` seconds for the figures.

    ``train.steps`` is 1.5× what a few timed steps predict and ``train.max_minutes`` ends the run cleanly
    (checkpoint, samples, export) when the time is up, so the budget is used fully on a busy or a quiet machine.
    """
    import torch

    from t2igan.training.run_folder import reset_run
    from t2igan.training.trainer import Trainer

    o = state.opts
    reset_run(o.out)  # a fresh run each time (in the demo's own folder)
    if not o.threads:  # other processes may have started or stopped since the start
        state.busy = other_processes_cpu_share()
        state.threads = pick_threads(state.busy)
    torch.set_num_threads(state.threads)
    left = state.budget - state.elapsed - reserve
    seconds = max(left, 0.4 * state.budget)  # a slow machine overruns the budget rather than train nothing
    if left < seconds:
        state.notes["budget"] = (
            f"earlier steps took {state.elapsed:.0f} s (1-min load average {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} CPUs): training keeps {seconds / 60:.1f} min, so the run ends after the budget"
        )
    if o.quick:
        steps, per_step = 20, float("nan")
    else:
        per_step = calibrate(state)
        # Timed steps on a shared machine are noisy (±50 % seen here): plan 1.5× the estimate and let
        # train.max_minutes end the run on time, so the budget is used whatever the machine does meanwhile.
        steps = max(50, int(1.5 * seconds / per_step) // 10 * 10)
    cfg = train_config(state, steps, max_minutes=None if o.quick else seconds / 60)
    # Evaluate at 2, 5, 10, 30 … minutes (the quality curve), at 60 % and 80 % of the training time and at the end;
    # the best on the validation images is exported.
    cfg.train.eval_minutes = [] if o.quick else eval_marks(seconds / 60)
    cfg.train.eval_every = 10 if o.quick else 0
    cfg.train.eval_n = 32 if o.quick else 250
    logger.info(
        f"         {steps} steps × batch {cfg.train.batch_size} (≈{per_step:.2f} s/step measured, "
        f"{seconds / 60:.1f} min left for training)"
    )
    from t2igan.metrics.training_eval import EvalHook

    hook = EvalHook.for_trainer_config(cfg)
    # the export carries the encoder (new captions work) and is the best evaluated checkpoint
    trainer = Trainer(cfg, text_encoder=state.encoder, callbacks=[hook] if hook else [])
    summary = trainer.fit()
    if summary.get("stopped"):  # SIGTERM / Ctrl-C: the trainer checkpointed; nothing to show yet
        logger.info(
            f"training interrupted at step {trainer.step} (checkpoint in {o.out / 'checkpoints'}); rerun to start over"
        )
        raise KeyboardInterrupt
    state.train_summary = {
        **summary,
        "evaluations": hook.records if hook else [],
        "steps_planned": steps,
        "batch_size": cfg.train.batch_size,
        "epochs": round(trainer.step * cfg.train.batch_size / len(trainer.dataset), 1),
    }
    if trainer.step < steps:
        state.notes["train"] = f"time budget reached at step {trainer.step} (planned at most {steps})"


def step_figures(state: DemoState) -> None:
    """Held-out caption grid, interpolation strips and loss curves."""
    from t2igan.apps.demo_report import (
        Figure,
        heldout_rows,
        interpolation_figures,
        interpolation_pair,
        loss_plot,
        sample_grid,
    )
    from t2igan.sampling import T2IPipeline

    o = state.opts
    pipe = T2IPipeline.from_pretrained(o.out / "pretrained")
    captions, labels = heldout_rows(state.cache, seed=o.seed, per_split=4)
    state.figures.append(
        sample_grid(
            pipe, captions, labels, list(range(8)), o.out / "heldout_samples.png", scale=2 if o.size < 64 else 1
        )
    )
    a, b = interpolation_pair()
    state.figures += interpolation_figures(pipe, a, b, o.out, seeds=(0, 1, 2), steps=8, scale=2 if o.size < 64 else 1)
    grids = sorted((o.out / "samples").glob("step_*.png"))
    if grids:  # the trainer's fixed-z grid of the last step (training captions)
        shutil.copyfile(grids[-1], o.out / "training_samples.png")
        state.figures.append(
            Figure(
                "training_samples.png",
                f"Training samples ({grids[-1].stem.replace('_', ' ')})",
                "The trainer's fixed-z grid: training captions (rows), fixed noise (columns); "
                f"all {len(grids)} grids are in samples/.",
            )
        )
    fig = loss_plot(o.out / "logs" / "metrics.jsonl", o.out / "losses.png")
    if fig is not None:
        state.figures.append(fig)


def step_attributes(state: DemoState) -> None:
    """Attribute accuracy (``attr_acc``, docs/metrics.md): does a generated image show what its caption says?

    An attribute classifier trained on the real images (cached in ``OUT/evaluator`` for this data) reads petal
    colour, centre colour, shape and count off images generated for dataset captions of seen and unseen classes;
    the score is the fraction of caption-named attributes it finds.
    """
    from t2igan.metrics.evaluate import evaluate_generator
    from t2igan.sampling import T2IPipeline

    o = state.opts
    ev = state.evaluator
    pipe = T2IPipeline.from_pretrained(o.out / "pretrained")

    def generate(captions: list[str], seeds: list[int]) -> Any:
        return pipe(captions, seeds=seeds, output_type="pt", denormalize=False).images

    n = 32 if o.quick else 500
    metrics = "attr_acc,fid_evaluator,diversity_evaluator,style_spread"
    results = evaluate_generator(state.cache, generate, metrics, evaluator=ev, n=n, seed=o.seed)
    res = results["attr_acc"]
    state.metrics = {k: v for k, v in results.items() if k != "attr_acc"}
    seen, unseen = res["seen"]["overall"], res["unseen"]["overall"]
    ceiling = res.get("ceiling_real_heldout", {})
    pc = {k: res[k]["per_attribute"].get("petal_colour", float("nan")) for k in ("unseen", "seen")}
    names = list(state.cache.attribute_names)
    pc_chance = 1 / len(state.cache.attribute_values[names.index("petal_colour")]) if "petal_colour" in names else 0
    res["text"] = (
        f"{unseen:.1%} unseen-class captions, {seen:.1%} seen-class captions (chance {res['chance']:.1%}, "
        f"evaluator on real held-out images {ceiling.get('all', float('nan')):.1%}; n={n} per split); "
        f"petal colour {pc['unseen']:.1%} / {pc['seen']:.1%} (chance {pc_chance:.1%})"
    )
    res["text"] += (
        f"; FID_eval {state.metrics['fid_evaluator']['value']:.1f}, style spread across seeds "
        f"{state.metrics['style_spread']['value']:.0%} of real"
    )
    state.attr = res


# --------------------------------------------------------------------------------------------------------- the run
def run_demo(opts: DemoOptions) -> dict[str, Any]:
    """Run every step, write ``summary.json`` and ``index.html``, print the summary; returns the summary."""
    from t2igan.apps.demo_report import write_index

    # new, empty or an earlier demo folder (also one from before the marker: its synthetic data): else an error
    claim_folder(opts.out, "demo", is_own=lambda f: is_synthetic_folder(f / "data" / "flowers"))
    state = DemoState(opts)
    logger.info(f"t2igan demo → {opts.out}  (budget {opts.minutes:g} min{', quick' if opts.quick else ''})")
    import torch

    state.busy = other_processes_cpu_share()
    state.threads = opts.threads or pick_threads(state.busy)
    torch.set_num_threads(state.threads)
    logger.info(
        f"         torch threads: {state.threads} (other processes keep {state.busy:.1f} of {os.cpu_count()} CPUs "
        f"busy{'; --threads' if opts.threads else ''})"
    )
    with step(state, "data", f"{opts.images} synthetic flowers at {opts.size}px + cache"):
        step_data(state)
    with step(state, "encoder", "text encoder φ and caption embeddings (and the evaluator beside it)"):
        job = start_evaluator(state)
        step_encoder(state, threads=1 if job is not None else None)
    with step(state, "evaluator", "attribute evaluator on the real images"):
        step_evaluator(state, job)
    reserve = 15.0 if opts.quick else 45.0  # figures ~5 s + final evaluation (n=500 per split) ~25 s, measured
    with step(state, "train", f"{state.opts.variant.upper()}, CPU preset"):
        step_train(state, reserve)
    with step(state, "figures", "held-out samples, interpolations, loss curves"):
        step_figures(state)
    with step(state, "evaluate", "attribute accuracy, FID_eval, style spread"):
        step_attributes(state)
    summary = make_summary(state)
    atomic_write_json(opts.out / "summary.json", summary)
    intro = (
        f"Trained in this run: {summary['train_steps']} steps of {opts.variant.upper()} (batch "
        f"{state.train_summary.get('batch_size')}) on {opts.images} synthetic flowers, total wall time "
        f"{summary['wall_time_s']:.0f} s on this machine."
    )
    command = f"t2igan demo --out {opts.out}" + (" --quick" if opts.quick else "")
    command += "" if opts.variant == "gan" else f" --variant {opts.variant}"
    write_index(opts.out / "index.html", state.figures, _table(summary), intro, command)
    print_summary(summary)
    return summary


def make_summary(state: DemoState) -> dict[str, Any]:
    o = state.opts
    out = o.out
    return {
        "wall_time_s": round(state.elapsed, 1),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "torch_threads": state.threads,
        "other_processes_busy_cores": round(state.busy, 2),
        "budget_min": o.minutes,
        "step_times_s": state.times,
        "notes": state.notes,
        "images": o.images,
        "image_size": o.size,
        "variant": o.variant,
        "train_steps": state.train_summary.get("step"),
        "train_epochs": state.train_summary.get("epochs"),
        "images_per_s": state.train_summary.get("images_per_s"),
        "attribute_accuracy": state.attr,
        "metrics": state.metrics,  # fid_evaluator, diversity_evaluator, style_spread (same protocol, n, seed)
        "evaluations_during_training": state.train_summary.get("evaluations", []),
        "exported_step": _exported_step(out),
        "paths": {
            "index": str(out / "index.html"),
            "pretrained": str(out / "pretrained"),
            "heldout_samples": str(out / "heldout_samples.png"),
            "interpolation": str(out / "interpolation.png"),
            "interpolation_z": str(out / "interpolation_z.png"),
            "losses": str(out / "losses.png"),
        },
    }


def _exported_step(out: Path) -> int | None:
    step = _read_json(out / "pretrained" / "model_index.json").get("step")
    return int(step) if isinstance(step, int) else None


def _table(summary: dict[str, Any]) -> dict[str, Any]:
    attr = summary.get("attribute_accuracy") or {}
    rows: dict[str, Any] = {
        "wall time": f"{summary['wall_time_s']:.0f} s (budget {summary['budget_min']:g} min)",
        "step times": ", ".join(f"{k} {v:.0f} s" for k, v in summary["step_times_s"].items()),
        "data": f"{summary['images']} images at {summary['image_size']} px",
        "training": f"{summary['train_steps']} steps, {summary['train_epochs']} epochs",
    }
    if attr:
        rows["attribute accuracy"] = attr.get("text", "")
    for k, v in summary["notes"].items():
        rows[f"note: {k}"] = v
    return rows


def print_summary(summary: dict[str, Any]) -> None:
    """The demo's result on stdout: wall time, attribute accuracy and where the files are."""
    click.echo("")
    click.echo(
        f"demo finished in {summary['wall_time_s']:.0f} s (budget {summary['budget_min']:g} min): "
        + ", ".join(f"{k} {v:.0f}s" for k, v in summary["step_times_s"].items())
    )
    attr = summary.get("attribute_accuracy") or {}
    if attr:
        click.echo(f"attribute accuracy: {attr.get('text', '')}")
    for name, path in summary["paths"].items():
        click.echo(f"  {name:16s} {path}")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


# ------------------------------------------------------------------------------------------------------------- CLI
@click.command("demo")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="runs/demo",
    show_default=True,
    help="Demo folder (new, empty or an earlier demo's): data, encoder, checkpoints, figures and index.html go here.",
)
@click.option(
    "--minutes",
    type=click.FloatRange(min=1.0),
    default=13.0,
    show_default=True,
    help="Wall-clock budget; training gets what the other steps leave. From 30 minutes on the text encoder trains "
    "8,000 instead of 4,000 DS-SJE steps.",
)
@click.option("--quick", is_flag=True, help="A tiny version (< 1 min): 256 images at 32 px, a few steps.")
@click.option(
    "--images",
    "n_images",
    type=click.IntRange(min=64),
    default=None,
    help=f"Synthetic images (default {FULL_IMAGES}, Oxford-102's size; 256 with --quick).",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--fresh", is_flag=True, help="Rebuild data and encoder even if OUT has them.")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="torch CPU threads (default: every core other processes leave free, measured at each step).",
)
@click.option(
    "--variant",
    type=click.Choice(["gan", "gan-cls", "gan-int", "gan-int-cls"]),
    default="gan",
    show_default=True,
    help="Reed et al.'s variant (docs/quality.md: with the recipe's contrastive term, gan scores higher per CPU-min).",
)
def demo(
    out: str,
    minutes: float,
    quick: bool,
    n_images: int | None,
    seed: int,
    fresh: bool,
    threads: int | None,
    variant: str,
) -> None:
    """Synthesise flowers, encode captions, train the text-conditional GAN on CPU, write OUT/index.html.

    \b
    Examples:
      t2igan demo                         # ~13 min on 2 CPU cores → runs/demo/index.html
      t2igan demo --out runs/demo --minutes 20
      t2igan demo --out runs/demo_cls --variant gan-int-cls   # with the paper's GAN-CLS and GAN-INT terms
      t2igan demo --out /tmp/smoke --quick
    Then: t2igan sample runs/demo "this flower has five pointed red petals and a yellow center"
    """
    from t2igan.utils.optional import require

    # before, not after, training
    require("matplotlib", "scipy", "jinja2", extra="eval", what="t2igan demo (figures, FID)")
    opts = DemoOptions(
        out=Path(out),
        minutes=minutes,
        quick=quick,
        n_images=n_images,
        seed=seed,
        fresh=fresh,
        threads=threads,
        variant=variant,
    )
    run_demo(opts)
