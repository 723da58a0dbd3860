"""Quality against training time: one run of a recipe, evaluated along the way (not one run per point).

Trains ``--config`` (+ ``--set`` overrides) on a prepared synthetic-flowers cache that has caption embeddings and an
attribute evaluator, and evaluates the exported generator (EMA G if enabled) at the given training minutes (or
every ``--eval-every`` steps): attribute accuracy per attribute on seen and unseen captions, FID_eval and the
same-caption diversity, on the validation subset (``metrics.training_eval``). Training time excludes the
evaluations. Prints one JSON line: the recipe, the machine (threads, load) and every evaluation.

    python benchmarks/quality_curve.py --data data/flowers --config reed_cpu --minutes 2 5 10 --out runs/qc/cpu
    python benchmarks/quality_curve.py ... --steps 3000 --eval-every 500   # a fixed step budget instead
    python benchmarks/quality_curve.py --plot docs/img/quality_curve.png runs/qc/a runs/qc/b   # curves of runs
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path


def run(args: argparse.Namespace) -> dict:
    import torch

    from t2igan.metrics.training_eval import EvalHook
    from t2igan.training.config import load_config
    from t2igan.training.trainer import Trainer
    from t2igan.utils.cpu import other_processes_cpu_share

    if args.threads:
        torch.set_num_threads(args.threads)
    sets = [f"data.cache={args.data}", f"run_dir={args.out}", "train.progress=false", "train.tensorboard=false"]
    sets += [f"seed={args.seed}", f"train.eval_n={args.n}"]
    if args.threads:  # else the trainer picks its own count (every free core), e.g. 2 inside a one-core taskset
        sets.append(f"train.threads={args.threads}")
    if args.minutes and args.clock == "wall":
        sets += [f"train.eval_minutes=[{','.join(str(m) for m in args.minutes)}]", f"train.steps={args.steps or 10**7}"]
    elif args.minutes:  # CPU clock: the benchmark's own callback evaluates (train.eval_every just turns the hook on)
        sets += [f"train.steps={args.steps or 10**7}", f"train.eval_every={10**9}"]
    else:
        sets += [f"train.steps={args.steps}", f"train.eval_every={args.eval_every}"]
    cfg = load_config(args.config, sets + list(args.set))
    hook = EvalHook.for_trainer_config(cfg)
    busy = other_processes_cpu_share(1.0)
    if not args.minutes:
        callbacks = [hook]
    elif args.clock == "wall":
        callbacks = [hook, _StopAfter(max(args.minutes))]
    else:
        callbacks = [_CpuClock(hook, args.minutes)]
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)  # the trainer's notes, on stderr
    trainer = Trainer(cfg, callbacks=callbacks)
    t0 = time.time()
    summary = trainer.fit()
    return {
        "benchmark": "quality_curve",
        "config": args.config,
        "set": list(args.set),
        "seed": args.seed,
        "threads": torch.get_num_threads(),
        "other_processes_cpu_share_at_start": round(busy, 3),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "steps": summary["step"],
        "images_per_s": summary["images_per_s"],
        "wall_s": round(time.time() - t0, 1),
        "clock": args.clock,
        "evals": hook.records,
    }


class _StopAfter:
    """End the run normally (final checkpoint, export) once the training time (evaluations excluded) passes
    ``minutes`` — after the hook's last evaluation, which ``train.max_minutes`` (wall time) could cut off."""

    def __init__(self, minutes: float) -> None:
        self.seconds = 60.0 * minutes

    def on_step_end(self, trainer) -> None:
        if trainer.train_seconds >= self.seconds:
            trainer.total_steps = trainer.step


class _CpuClock:
    """Evaluate at minutes of this process's CPU time (all threads; evaluations excluded) and end the run after the
    last mark: a budget that other processes on the machine cannot shorten (screening beside other work)."""

    def __init__(self, hook, minutes: list[float]) -> None:
        self.hook, self.marks, self.eval_cpu, self.start = hook, sorted(minutes), 0.0, time.process_time()

    def cpu_minutes(self) -> float:
        return (time.process_time() - self.start - self.eval_cpu) / 60.0

    def on_step_end(self, trainer) -> None:
        if not self.marks or self.cpu_minutes() < self.marks[0]:
            return
        mark = self.marks.pop(0)
        t0 = time.process_time()
        record = self.hook.evaluate(trainer)
        self.eval_cpu += time.process_time() - t0
        if record is not None:
            record["cpu_minutes"] = mark
        if not self.marks:
            trainer.total_steps = trainer.step


def plot(out: Path, runs: list[Path]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, run in enumerate(runs):
        recs = [json.loads(ln) for ln in (run / "logs" / "eval.jsonl").read_text().splitlines() if ln.strip()]
        t = [r.get("cpu_minutes", r["train_minutes"]) for r in recs]  # the CPU clock's mark when it drove the run
        c = colours[i % len(colours)]
        axes[0].plot(t, [r["attr_unseen"] for r in recs], "o-", color=c, label=f"{run.name} unseen")
        axes[0].plot(t, [r["attr_seen"] for r in recs], "s--", color=c, label=f"{run.name} seen")
        axes[1].plot(t, [r["fid_evaluator"] for r in recs], "o-", color=c, label=run.name)
        axes[2].plot(t, [r["diversity"] for r in recs], "o-", color=c, label=run.name)
    for ax, title in zip(
        axes, ("attribute accuracy", "FID_eval (lower is better)", "same-caption diversity / real"), strict=True
    ):
        ax.set_title(title)
        ax.set_xlabel("training minutes (CPU minutes for --clock cpu runs)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="prepared cache (or dataset folder) with embeddings and an evaluator")
    ap.add_argument("--config", default="reed_cpu")
    ap.add_argument("--set", action="append", default=[], help="config override key=value (repeatable)")
    ap.add_argument("--minutes", type=float, nargs="*", default=[], help="evaluate at these training minutes")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--n", type=int, default=500, help="captions per split per evaluation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall", help="--minutes of wall time or of this process's CPU time"
    )
    ap.add_argument("--out", default="runs/quality_curve")
    ap.add_argument("--plot", nargs="+", metavar=("PNG", "RUN"), help="plot the eval.jsonl curves of runs")
    args = ap.parse_args()
    if args.plot:
        plot(Path(args.plot[0]), [Path(p) for p in args.plot[1:]])
        return
    if not args.data or not (args.minutes or args.steps):
        ap.error("--data and --minutes or --steps are required")
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
