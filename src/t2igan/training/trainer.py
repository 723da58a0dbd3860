"""The training loop: ``Trainer(cfg).fit()``.

What it guarantees:

- **Determinism.** The data order of epoch e is a permutation drawn from ``derive_seed(seed, "order", e)``; the
  dataset's augmentation and caption choice are functions of (seed, epoch, index); each step's noise comes from a
  generator seeded by (seed, step, rank). So a run stopped at step N and resumed gives the same bytes as one that
  never stopped.
- **Checkpoints** every ``train.ckpt_every`` steps, on SIGTERM/Ctrl-C and at the end (atomic, checksummed, rotated;
  see ``checkpoint.py``); ``resume=True`` continues from the newest valid one.
- **NaN guard.** A step whose loss or gradients are not finite is skipped by the system (no update, BatchNorm
  statistics restored); after ``train.max_bad_steps`` consecutive skips training stops with a message. A model with
  non-finite weights is never saved.
- **Logs.** ``logs/metrics.jsonl`` (one JSON line per ``log_every`` steps), TensorBoard scalars and a fixed-z sample
  grid (if tensorboard is installed), a tqdm bar with the losses and images/s.

DDP (``training/distributed.py``) plugs in at three places, all in this file: ``rank``/``world_size``/``is_main``
(only the main rank writes), ``_shard`` (the one place the global batch is split) and ``_setup_distributed`` (the
one place models/gradients are wrapped; Reed's step all-reduces through ``system.grad_sync``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from t2igan.data.cache import PreparedCache
from t2igan.data.dataset import TextImageDataset
from t2igan.text.base import TextEncoderLike
from t2igan.training.config import TrainConfig
from t2igan.training.divergence import DivergenceGuard
from t2igan.training.export import export_pretrained, run_card, text_side_for_export
from t2igan.training.run_folder import RunFolder, open_run
from t2igan.training.run_log import RunLog, fixed_sample_inputs
from t2igan.training.system import GanSystem, get_system_class
from t2igan.utils.checkpoint import load_latest, rng_state, save_checkpoint, set_rng_state
from t2igan.utils.errors import T2IError
from t2igan.utils.progress import progress_bar, progress_bars_enabled
from t2igan.utils.seed import derive_seed, seed_everything
from t2igan.utils.signals import stop_on_signals

logger = logging.getLogger(__name__)


class TrainerCallback(Protocol):
    """Called by ``Trainer.fit`` after every step (``on_step_end``); time spent here is not training time.

    ``t2igan.metrics.training_eval.EvalHook`` is one: it evaluates every ``train.eval_every`` steps and calls
    ``trainer.keep_best``."""

    def on_step_end(self, trainer: Trainer) -> None: ...

    def on_fit_end(self, trainer: Trainer) -> None:
        """After the last step of a run that was not interrupted, before its final checkpoint and export."""


class BatchDataset(Protocol):
    """What the Trainer needs from a dataset (``t2igan.data.TextImageDataset`` is one)."""

    def __len__(self) -> int: ...

    def batch(self, indices: np.ndarray, epoch: int) -> dict[str, torch.Tensor]: ...


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif spec.startswith("cuda") and not torch.cuda.is_available():
        raise T2IError(f"train.device={spec} but CUDA is not available", hint="use train.device=cpu")
    else:
        device = torch.device(spec)
    if device.type == "cuda":  # TF32 matmuls/convolutions on Ampere+ GPUs, the same as under torchrun
        from t2igan.training.distributed import enable_tf32

        enable_tf32()
    return device


def build_dataset(cfg: TrainConfig, split: str | None = None) -> TextImageDataset:
    """``TextImageDataset`` over the prepared cache ``data.cache`` with its embeddings."""
    if not cfg.data.cache:
        raise T2IError("no dataset given", hint="pass --data CACHE_DIR or set data.cache in the config")
    cache = PreparedCache.open(cfg.data.cache)
    key = cfg.data.embeddings or _only_embedding_key(cache)
    return TextImageDataset(
        cache,
        size=cfg.data.size,
        split=split or cfg.data.split,
        embeddings=key,
        k_avg=cfg.data.k_avg,
        flip=cfg.data.flip,
        seed=cfg.seed,
    )


def _only_embedding_key(cache: PreparedCache) -> str:
    keys = cache.embedding_keys()
    if not keys:
        raise T2IError(
            "the cache holds no caption embeddings",
            path=cache.root,
            hint="encode the captions first (t2igan encode captions DATA --encoder minilm) or set data.embeddings",
        )
    if len(keys) > 1:
        raise T2IError(
            f"the cache holds several embeddings {keys}",
            path=cache.root,
            hint="choose one with data.embeddings=KEY",
        )
    return keys[0]


class Trainer:
    def __init__(
        self,
        cfg: TrainConfig,
        dataset: BatchDataset | None = None,
        *,
        dist: Any = None,
        resume: bool = False,
        text_encoder: TextEncoderLike | None = None,
        callbacks: list[TrainerCallback] | None = None,
    ) -> None:
        """``dist``: a ``training.distributed.DistContext`` under torchrun (None = single process).
        ``text_encoder``: the encoder object that made the embeddings, saved with the export (else
        ``data.text_encoder`` is loaded, else the export records that the embeddings were precomputed)."""
        self.cfg = cfg.validate()
        self.dist = dist
        self.rank = dist.rank if dist is not None else 0
        self.world_size = dist.world_size if dist is not None else 1
        self.is_main = self.rank == 0
        self.resume = resume
        self.text_encoder = text_encoder
        self.callbacks = list(callbacks or [])
        self.train_seconds = 0.0  # wall time of the training loop, without callbacks (evaluation)
        self._stat_embs: torch.Tensor | None = None  # captions for the sampling generator's BatchNorm statistics
        if (cfg.train.eval_every or cfg.train.eval_minutes) and not self.callbacks:
            logger.info(
                "note: train.eval_every/eval_minutes need an evaluation callback (t2igan train adds one; in Python "
                "pass callbacks=[t2igan.metrics.training_eval.EvalHook.for_trainer_config(cfg)])"
            )
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        # Library code draws only from seeded generators; this covers third-party code that uses global state,
        # and makes the global RNG states stored in checkpoints identical between identical runs.
        seed_everything(derive_seed(cfg.seed, "global", self.rank))
        self.device = dist.device if dist is not None else resolve_device(cfg.train.device)
        if not cfg.train.threads and dist is None and self.device.type == "cpu":
            from t2igan.utils.cpu import other_processes_cpu_share, pick_threads

            busy = other_processes_cpu_share()  # every core, unless other processes keep some busy
            torch.set_num_threads(pick_threads(busy))
            logger.info("torch threads: %d (other processes keep %.1f CPUs busy)", torch.get_num_threads(), busy)
        self.dataset = dataset if dataset is not None else build_dataset(cfg)
        self.run_dir = Path(cfg.run_dir)
        # torch._dynamo, imported by the first optimiser step, makes its cache folder under $TMPDIR: keep it in the
        # run folder, so a run writes nowhere else (tests/hardening/test_output_paths.py).
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(self.run_dir.resolve() / ".cache" / "torchinductor"))
        self.batch_size = cfg.train.batch_size  # global batch: all ranks count steps the same way
        self.steps_per_epoch = len(self.dataset) // self.batch_size
        if self.steps_per_epoch == 0:
            raise T2IError(
                f"the dataset has {len(self.dataset)} samples, fewer than one batch of {self.batch_size}",
                hint="lower train.batch_size",
            )
        t = cfg.train
        self.total_steps = t.steps if t.steps is not None else math.ceil((t.epochs or 0) * self.steps_per_epoch)
        probe = self.dataset.batch(np.arange(2), 0)
        if "text_emb" not in probe:
            raise T2IError(
                "the dataset serves captions, not caption embeddings",
                hint="encode the captions (t2igan encode) and set data.embeddings=KEY",
            )
        self.text_dim = int(probe["text_emb"].shape[1])
        self.system: GanSystem = get_system_class(cfg.model.name)(cfg, self.text_dim, self.device)
        self.system.rank = self.rank
        logger.debug(
            "%s on %s, %d torch threads, %d-d text, %d steps per epoch",
            type(self.system).__name__,
            self.device,
            torch.get_num_threads(),
            self.text_dim,
            self.steps_per_epoch,
        )
        self._setup_distributed()
        self.step = 0
        self._perm_cache: tuple[int, np.ndarray] | None = None
        self._stop = False
        self.runlog = RunLog(self.run_dir, enabled=self.is_main, tensorboard=cfg.train.tensorboard)
        self._last_ckpt = -1
        self.run: RunFolder | None = None  # the locked run folder while fit() runs (run_folder.py)
        self.guard = DivergenceGuard(
            self.system.nets(), max_weight_growth=t.max_weight_growth, max_skipped_share=t.max_skipped_share
        )

    # -- data: order and sharding ---------------------------------------------------------------------------------
    def epoch_permutation(self, epoch: int) -> np.ndarray:
        """The data order of an epoch: a pure function of (seed, epoch)."""
        if self._perm_cache is None or self._perm_cache[0] != epoch:
            rng = np.random.default_rng(derive_seed(self.cfg.seed, "order", epoch))
            self._perm_cache = (epoch, rng.permutation(len(self.dataset)))
        return self._perm_cache[1]

    def _shard(self, indices: np.ndarray) -> np.ndarray:
        """The one place a global batch is split between ranks (rank r's contiguous slice under DDP)."""
        return self.dist.shard(indices) if self.dist is not None else indices

    def batch_indices(self, step: int) -> tuple[np.ndarray, int]:
        epoch, pos = divmod(step, self.steps_per_epoch)
        perm = self.epoch_permutation(epoch)
        return self._shard(perm[pos * self.batch_size : (pos + 1) * self.batch_size]), epoch

    def _setup_distributed(self) -> None:
        """The one place models/gradients are wrapped for DDP (no-op in a single process): gradients are averaged
        over ranks (weighted by each rank's share of the global batch) before every optimiser step, and all ranks
        start from rank 0's weights."""
        if self.dist is None or not self.dist.enabled:
            return
        weight = self.dist.shard_weight(self.batch_size)
        self.system.grad_sync = lambda grads: self.dist.average_grads(grads, weight=weight)
        self._broadcast()

    def _broadcast(self) -> None:
        if self.dist is not None and self.dist.enabled:
            for net in self.system.nets().values():
                self.dist.broadcast_module(net)

    def _agree(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any rank (same decision everywhere under DDP)."""
        if self.dist is not None and self.dist.enabled:
            return not self.dist.all_true(not flag)
        return flag

    def _agree_stop(self) -> None:
        """Under DDP every rank must stop after the same step (a signal may reach them at different times)."""
        if self.dist is not None and self.dist.enabled:
            self._stop = not self.dist.all_true(not self._stop)

    # -- the loop -------------------------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train until ``total_steps``; returns a summary (steps, seconds, last losses, paths). The run folder is
        locked and its identity and config checked while it runs (``run_folder.py``)."""
        with open_run(self.run_dir, self.cfg.to_dict(), resume=self.resume, main=self.is_main) as run:
            self.run = run
            return self._fit()

    def _fit(self) -> dict[str, Any]:
        cfg = self.cfg
        if self.is_main:
            for sub in ("checkpoints", "samples", "logs"):
                (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
            # A process killed while writing a checkpoint leaves its hidden temporary folder (never read): tidy up.
            for stale in (self.run_dir / "checkpoints").glob(".step_*"):
                shutil.rmtree(stale, ignore_errors=True)
            cfg.save_yaml(self.run_dir / "config.yaml")
        if self.resume:
            self._restore()
        fixed = fixed_sample_inputs(self.dataset, self.system.z_dim, cfg.seed, cfg.train.sample_n)
        self.runlog.open()
        last: dict[str, float] = {}
        t_start, start_step, step_time = time.perf_counter(), self.step, 0.0
        t_mark = t_start
        budget = None if cfg.train.max_minutes is None else cfg.train.max_minutes * 60.0
        cpu_budget = None if cfg.train.max_cpu_minutes is None else cfg.train.max_cpu_minutes * 60.0
        cpu_start = time.process_time()  # the CPU budget leaves out the callbacks' (evaluation) CPU time
        budget_reached = False
        self._bad, self._ips = 0, 0.0
        with self._signals(), self._progress() as bar:
            while self.step < self.total_steps and not self._stop:
                if budget is not None and self._agree(time.perf_counter() - t_start > budget):
                    logger.info("time budget of %s min reached at step %d", cfg.train.max_minutes, self.step)
                    budget_reached = True
                    break
                if cpu_budget is not None and self._agree(time.process_time() - cpu_start > cpu_budget):
                    logger.info("CPU-time budget of %s min reached at step %d", cfg.train.max_cpu_minutes, self.step)
                    budget_reached = True
                    break
                idx, epoch = self.batch_indices(self.step)
                batch = self.dataset.batch(idx, epoch)
                if self.step in cfg.debug.nan_steps:
                    batch = {**batch, "image": torch.full_like(batch["image"], float("nan"))}
                self.system.set_epoch(self.step / self.steps_per_epoch, self.step)
                t0 = time.perf_counter()
                last = self.system.train_step(batch, self.step)
                dt = time.perf_counter() - t0
                step_time += dt
                self.step += 1
                self._agree_stop()
                self._after_step(last, self.batch_size / max(dt, 1e-9), bar, fixed)
                now = time.perf_counter()
                self.train_seconds += now - t_mark
                cpu_mark = time.process_time()
                for callback in self.callbacks:
                    callback.on_step_end(self)
                cpu_start += time.process_time() - cpu_mark
                t_mark = time.perf_counter()
        stopped = self._stop
        if not stopped:
            for callback in self.callbacks:
                end = getattr(callback, "on_fit_end", None)
                if end is not None:
                    end(self)
        if self.is_main:
            self._checkpoint(reason="interrupted" if stopped else "final")
            if not stopped:
                if self.step % cfg.train.sample_every:
                    self._sample_grid(fixed)
                if cfg.train.export:
                    self.export(from_best=cfg.train.export_best)
        self.runlog.close()
        if self.dist is not None:
            self.dist.barrier()  # rank 0 may still be writing the export
        return {
            "step": self.step,
            "stopped": stopped,
            "seconds": round(time.perf_counter() - t_start, 2),
            "steps_run": self.step - start_step,
            "last": last,
            "images_per_s": round((self.step - start_step) * self.batch_size / max(step_time, 1e-9), 1),
            "run_dir": str(self.run_dir),
            "budget_reached": budget_reached,
        }

    def _after_step(self, out: dict[str, float], ips: float, bar: Any, fixed: dict[str, Any]) -> None:
        """NaN bookkeeping, progress bar, logs, sample grid and checkpoint after a step."""
        t = self.cfg.train
        self._ips = ips if self._ips == 0.0 else 0.9 * self._ips + 0.1 * ips  # smoothed global images/s
        if out.get("nonfinite"):
            self._bad += 1
            logger.warning("step %d: non-finite loss/gradients, update skipped (%d in a row)", self.step, self._bad)
            if self._bad >= t.max_bad_steps:
                self._checkpoint(reason="after non-finite steps")
                raise T2IError(
                    f"training stopped: {self._bad} consecutive non-finite steps at step {self.step}",
                    hint="lower optim.lr, try train.precision=fp32, or check the data",
                )
        else:
            self._bad = 0
        self.guard.check(self.step, bool(out.get("nonfinite")), self.system.nets())  # finite blow-ups (divergence.py)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(
                d=f"{out.get('loss_d', float('nan')):.3f}",
                g=f"{out.get('loss_g', float('nan')):.3f}",
                img_s=f"{self._ips:.0f}",
            )
        if self.step % t.log_every == 0 or self.step == self.total_steps:
            self._log_metrics(out, self._ips)
        if self.step % t.sample_every == 0:
            self._sample_grid(fixed)
        if self.step % t.ckpt_every == 0:
            self._checkpoint()

    def request_stop(self) -> None:
        """Finish the current step, checkpoint and return from ``fit`` (what SIGTERM/Ctrl-C do)."""
        self._stop = True

    # -- state ----------------------------------------------------------------------------------------------------
    def _checkpoint(self, reason: str = "") -> Path | None:
        if not self.is_main or self._last_ckpt == self.step:
            return None
        if not self.system.all_finite():
            logger.warning("not saving a checkpoint at step %d: the model has non-finite weights", self.step)
            return None
        root = self.run_dir / "checkpoints"
        state = {"system": self.system.state_dict(), "rng": rng_state()}
        meta = {
            "epoch": self.step / self.steps_per_epoch,
            "text_dim": self.text_dim,
            "reason": reason,
            "model": self.cfg.model.name,
            "run_id": self.run.run_id if self.run else None,
        }
        path = save_checkpoint(root, self.step, state, self.cfg.to_dict(), meta, keep=self.cfg.train.keep_ckpts)
        self._last_ckpt = self.step
        return path

    def _restore(self) -> None:
        ckpt = load_latest(self.run_dir / "checkpoints", self.device)
        if ckpt is None:
            logger.info("no checkpoint in %s: starting from step 0", self.run_dir / "checkpoints")
            return
        if self.run is not None:
            self.run.check_checkpoint(ckpt)
        if int(ckpt["meta"].get("text_dim", self.text_dim)) != self.text_dim:
            raise T2IError(
                f"the checkpoint was trained with {ckpt['meta']['text_dim']}-d text embeddings, the data "
                f"has {self.text_dim}-d",
                path=ckpt["path"],
                hint="use the same data.embeddings",
            )
        try:
            self.system.load_state_dict(ckpt["state"]["system"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise T2IError(
                f"checkpoint does not fit this config ({str(e).splitlines()[0]})",
                path=ckpt["path"],
                hint="resume with the config it was trained with (its config.json)",
            ) from None
        set_rng_state(ckpt["state"]["rng"])
        self._broadcast()
        self.step = self._last_ckpt = ckpt["step"]
        self.runlog.truncate(self.step)
        logger.info("resumed from %s (step %d)", ckpt["path"], self.step)

    @property
    def best_dir(self) -> Path:
        return self.run_dir / "checkpoints" / "best"

    def keep_best(self, record: dict[str, Any]) -> Path | None:
        """Save the current state as the run's best checkpoint (``checkpoints/best/``, one kept), with ``record``
        (the evaluation that made it best) in its metadata. Called by the evaluation hook."""
        if not self.is_main or not self.system.all_finite():
            return None
        state = {"system": self.system.state_dict(), "rng": rng_state()}
        meta = {"epoch": self.step / self.steps_per_epoch, "text_dim": self.text_dim, "reason": "best", **record}
        return save_checkpoint(self.best_dir, self.step, state, self.cfg.to_dict(), meta, keep=1)

    def _best_system(self) -> tuple[GanSystem, int] | None:
        """The system restored from ``checkpoints/best`` (None if there is none)."""
        ckpt = load_latest(self.best_dir, self.device) if self.best_dir.is_dir() else None
        if ckpt is None:
            return None
        system = get_system_class(self.cfg.model.name)(self.cfg, self.text_dim, self.device)
        system.load_state_dict(ckpt["state"]["system"])
        return system, int(ckpt["step"])

    def export(self, folder: str | Path | None = None, *, from_best: bool = False) -> Path:
        """Write the pretrained folder (EMA generator if enabled) for ``T2IPipeline.from_pretrained``; with
        ``from_best``, the generator of the best evaluated checkpoint when there is one."""
        folder = Path(folder) if folder is not None else self.run_dir / "pretrained"
        self.refresh_generator_statistics()
        generator, step = self.system.generator_for_export(), self.step
        best = self._best_system() if from_best else None
        if best is not None:  # its statistics were refreshed before it was evaluated and kept
            generator, step = best[0].generator_for_export(), best[1]
            logger.info("exporting the best evaluated checkpoint (step %d)", step)
        text_encoder, embeddings = text_side_for_export(
            int(getattr(generator, "text_dim", -1)),
            cache=self.dataset.cache if isinstance(self.dataset, TextImageDataset) else None,
            key=self.dataset.key if isinstance(self.dataset, TextImageDataset) else self.cfg.data.embeddings,
            text_encoder=self.text_encoder,
            text_encoder_dir=self.cfg.data.text_encoder,
        )
        return export_pretrained(
            generator,
            folder,
            model_name=self.cfg.model.name,
            text_encoder=text_encoder,
            embeddings=embeddings,
            extra={
                "step": step,
                "variant": self.cfg.loss.variant if "loss.variant" in self.system.honoured_keys else None,
                "ema": self.cfg.optim.ema > 0,
                "loss": self.cfg.loss.kind,
                "seed": self.cfg.seed,
            },
            card=run_card(self.cfg.to_dict(), self.run_dir),  # model card: config, data, newest sample grid
        )

    # -- logging --------------------------------------------------------------------------------------------------
    def _log_metrics(self, out: dict[str, float], ips: float) -> None:
        lr = {f"lr_{k[4:]}": o.param_groups[0]["lr"] for k, o in self.system.optimizers().items()}
        epoch = round(self.step / self.steps_per_epoch, 4)
        rec = {
            "step": self.step,
            "epoch": epoch,
            **out,
            **lr,
            "images_per_s": round(ips, 2),
            "time": round(time.time(), 3),
        }
        self.runlog.metrics(rec)

    def refresh_generator_statistics(self, n: int = 1024) -> None:
        """Let the system re-estimate its sampling generator's BatchNorm statistics on ``n`` fixed training
        captions (before evaluations, sample grids and the export; see ``GanSystem.refresh_generator_statistics``)."""
        if self._stat_embs is None:
            idx = np.linspace(0, len(self.dataset) - 1, min(n, len(self.dataset))).round().astype(np.int64)
            self._stat_embs = self.dataset.batch(idx, 0)["text_emb"].float()
        self.system.refresh_generator_statistics(self._stat_embs)

    def _sample_grid(self, fixed: dict[str, Any]) -> None:
        if not self.is_main:
            return
        self.refresh_generator_statistics()
        images = self.system.sample(fixed["z"], fixed["text_emb"])
        self.runlog.grid(
            self.step, images[-1] if isinstance(images, list) else images, fixed["cols"], fixed["captions"]
        )

    @contextlib.contextmanager
    def _progress(self) -> Iterator[Any]:
        if not (self.is_main and self.cfg.train.progress and progress_bars_enabled()):
            yield None
            return
        bar = progress_bar(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True, desc="train")
        try:
            yield bar
        finally:
            bar.close()

    def _signals(self) -> contextlib.AbstractContextManager[None]:
        """SIGTERM and the first Ctrl-C ask the loop to checkpoint and stop; a second Ctrl-C aborts at once."""

        def stop(name: str) -> None:
            logger.info("%s: saving a checkpoint after this step …", name)
            self._stop = True

        return stop_on_signals(stop)


def load_run_system(run_dir: str | Path, device: str | torch.device = "cpu") -> GanSystem:
    """The system (nets + optimisers) of a run's newest valid checkpoint, e.g. ``load_run_system(run).D``."""
    from t2igan.training.config import config_from_dict

    root = Path(run_dir) / "checkpoints"
    ckpt = load_latest(root, device)
    if ckpt is None:
        raise T2IError("the run has no checkpoint", path=root, hint="train it first (t2igan train)")
    cfg = config_from_dict(ckpt["config"])
    system = get_system_class(cfg.model.name)(cfg, int(ckpt["meta"]["text_dim"]), torch.device(device))
    system.load_state_dict(ckpt["state"]["system"])
    return system
