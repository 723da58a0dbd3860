"""Evaluation during training: ``train.eval_every`` / ``train.eval_minutes``.

Every ``eval_every`` steps (and when the training time passes each of ``eval_minutes``) the generator the run would
export (the EMA G if enabled) draws images for ``eval_n`` captions of seen and of unseen classes from the
*validation subset* (1 image in 10, see ``EvalContext.pool``), and the attribute evaluator — trained on real images
only, never a training signal — scores them: attribute accuracy (per attribute, seen / unseen), FID_eval and the
same-caption diversity. Each evaluation is one JSON line in ``logs/eval.jsonl`` (and TensorBoard scalars
``eval/*``); the best one by ``train.eval_select`` is kept as ``checkpoints/best`` and exported at the end
(``train.export_best``). Reported figures (``t2igan evaluate``, the demo) use the *other* images, so model selection
never sees what it is scored on.

    trainer = Trainer(cfg, callbacks=[EvalHook.for_trainer_config(cfg)])
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from t2igan.data.dataset import TextImageDataset
from t2igan.utils.seed import torch_generator

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from t2igan.training.config import TrainConfig
    from t2igan.training.trainer import Trainer

log = logging.getLogger(__name__)
METRICS = ("attr_acc", "fid_evaluator", "diversity_evaluator", "style_spread")


class EvalHook:
    """A ``TrainerCallback`` that evaluates the exported generator along the run and keeps the best checkpoint."""

    def __init__(
        self,
        every: int = 0,
        minutes: list[float] | None = None,
        n: int = 500,
        select: str = "attr_acc",
        evaluator: str | None = None,
    ):
        self.every, self.minutes, self.n, self.select = every, sorted(minutes or []), n, select
        self.evaluator_dir = evaluator
        self.best: float | None = None
        self.records: list[dict[str, Any]] = []
        self._evaluator: Any = None
        self._table: Any = None
        self._ready = False
        self._disabled = False
        self._next_minute = 0

    @classmethod
    def for_trainer_config(cls, cfg: TrainConfig) -> EvalHook | None:
        """The hook ``cfg.train`` asks for, or None when evaluation is off."""
        t = cfg.train
        if t.eval_every <= 0 and not t.eval_minutes:
            return None
        return cls(t.eval_every, list(t.eval_minutes), t.eval_n, t.eval_select, t.eval_evaluator)

    # -- TrainerCallback ------------------------------------------------------------------------------------------
    def on_step_end(self, trainer: Trainer) -> None:
        if self._disabled or not trainer.is_main:
            return
        due = self.every > 0 and trainer.step % self.every == 0
        while self._next_minute < len(self.minutes) and trainer.train_seconds >= 60 * self.minutes[self._next_minute]:
            self._next_minute += 1
            due = True
        if due:
            self.evaluate(trainer)

    def on_fit_end(self, trainer: Trainer) -> None:
        """The last step is always evaluated (it is a candidate for "best"), however the run ended."""
        if self._disabled or not trainer.is_main or (self.records and self.records[-1]["step"] == trainer.step):
            return
        self.evaluate(trainer)

    # -- the evaluation -------------------------------------------------------------------------------------------
    def _setup(self, trainer: Trainer) -> bool:
        if self._ready:
            return True
        from t2igan.metrics.evaluator import load_evaluator

        ds = trainer.dataset
        folder = Path(ds.cache.root) / "evaluator" if isinstance(ds, TextImageDataset) else Path()
        if self.evaluator_dir is not None:
            folder = Path(self.evaluator_dir)
        if not isinstance(ds, TextImageDataset) or not ds.key or not (folder / "config.json").is_file():
            logger.info(
                "note: training-time evaluation is off: it needs the attribute evaluator of the data "
                "(t2igan evaluator train DATA) and caption embeddings in the cache"
            )
            self._disabled = True
            return False
        self._evaluator = load_evaluator(folder)
        self._cache = ds.cache
        self._table = ds.cache.embeddings(ds.key)
        best = trainer.best_dir
        if best.is_dir():  # a resumed run: the best so far is in the best checkpoint's metadata
            for state in sorted(best.glob("step_*/state.json")):
                with open(state) as f:
                    meta = json.load(f).get("meta", {})
                if isinstance(meta.get("score"), (int, float)):
                    self.best = float(meta["score"])
        self._ready = True
        return True

    def generate(self, trainer: Trainer):
        z_dim = trainer.system.z_dim

        def generate(captions: list[str], seeds: list[int], caption_ids: list[int] | None = None) -> torch.Tensor:
            emb = torch.from_numpy(np.asarray(self._table[np.asarray(caption_ids)], dtype=np.float32))
            z = torch.stack([torch.randn(z_dim, generator=torch_generator(int(s))) for s in seeds])
            out = trainer.system.sample(z, emb)
            return (out[-1] if isinstance(out, list) else out).float().cpu()

        generate.accepts_caption_ids = True  # type: ignore[attr-defined]
        return generate

    def evaluate(self, trainer: Trainer) -> dict[str, Any] | None:
        if not self._setup(trainer):
            return None
        from t2igan.metrics.context import EvalContext
        from t2igan.metrics.evaluate import run_metrics

        trainer.refresh_generator_statistics()
        ctx = EvalContext(
            self._cache,
            self.generate(trainer),
            n=self.n,
            seed=trainer.cfg.seed,
            evaluator=self._evaluator,
            progress=False,
            subset="val",
        )
        res = run_metrics(ctx, list(METRICS))
        attr = res["attr_acc"]
        record: dict[str, Any] = {
            "step": trainer.step,
            "train_minutes": round(trainer.train_seconds / 60.0, 3),
            "attr_seen": attr["seen"]["overall"],
            "attr_unseen": attr["unseen"]["overall"],
            **{f"attr_seen_{k}": v for k, v in attr["seen"]["per_attribute"].items()},
            **{f"attr_unseen_{k}": v for k, v in attr["unseen"]["per_attribute"].items()},
            "fid_evaluator": res["fid_evaluator"]["value"],
            "diversity": res["diversity_evaluator"]["value"],
            "style_spread": res["style_spread"]["value"],
            **{f"style_{k}": v for k, v in res["style_spread"].get("per_factor", {}).items()},
            "protocol": res["attr_acc"]["protocol"],
        }
        score = (
            (record["attr_seen"] + record["attr_unseen"]) / 2 if self.select == "attr_acc" else -record["fid_evaluator"]
        )
        record["score"] = score
        record["best"] = self.best is None or score > self.best
        if record["best"]:
            self.best = score
            trainer.keep_best({"score": score, "eval": {k: v for k, v in record.items() if k != "best"}})
        self.records.append(record)
        trainer.runlog.eval(record)
        logger.info(
            f"eval @ step {trainer.step} ({record['train_minutes']:.1f} min): attribute accuracy "
            f"{record['attr_unseen']:.1%} unseen / {record['attr_seen']:.1%} seen, FID_eval "
            f"{record['fid_evaluator']:.1f}, diversity {record['diversity']:.2f}, "
            f"style spread {record['style_spread']:.2f}" + (" (best)" if record["best"] else "")
        )
        return record
