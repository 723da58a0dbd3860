"""Reed et al. (2016)'s ablation on synthetic flowers: GAN, GAN-CLS, GAN-INT, GAN-INT-CLS with the same CPU budget.

Each variant trains a preset (``--preset``, default the CPU recipe `reed_cpu`) for ``--minutes`` of *CPU time* of this
process (all threads — unlike wall-clock time, not shortened by other load on the machine) or exactly ``--steps``,
for each of ``--seeds``, on the same cache, then is evaluated with the same protocols: attribute accuracy on
seen/unseen classes (evaluator), FID / KID / IS with the evaluator network; the table gives mean ± std over seeds.
The condition is the real text encoder's caption embeddings of ``--data`` (``--embeddings KEY``, e.g. the demo's
char-CNN-RNN), or the oracle attribute one-hot code (``--embeddings onehot``: a perfect text encoder, which isolates
the GAN terms). Paper's expectation: CLS improves text-image matching, INT improves realism and generalisation to
unseen captions.

    python benchmarks/ablation.py --data runs/demo/data/flowers --embeddings char-cnn-rnn-… --minutes 10 \
        --seeds 0 1 2 --threads 1 --out runs/ablation
    python benchmarks/ablation.py --minutes 3 --out runs/ablation_onehot          # synthesises its own data

Prints a Markdown table on stderr and ONE JSON line on stdout.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import torch

VARIANTS = ("gan", "gan-cls", "gan-int", "gan-int-cls")
METRICS = "attr_acc,fid_evaluator,kid_evaluator,is_evaluator"


def prepare(out: Path, n_images: int, size: int, evaluator_steps: int, seed: int, data: Path | None, key: str):
    from t2igan.data.cache import PreparedCache
    from t2igan.data.oracle_text import ORACLE_KEY, save_attribute_onehot
    from t2igan.data.synthetic import synthesize_cache
    from t2igan.metrics.evaluator import get_or_train_evaluator

    if data is not None:
        cache = PreparedCache.open(data)
    else:
        cache = PreparedCache.open(synthesize_cache(out / "data", n=n_images, sizes=(size,), seed=seed))
    if key == "onehot":
        key = ORACLE_KEY
        if not cache.has_embeddings(ORACLE_KEY):
            save_attribute_onehot(cache)
    # where `t2igan evaluate` looks by default, so the runs can be re-evaluated without --evaluator
    ev = get_or_train_evaluator(cache, Path(cache.root) / "evaluator", size=size, steps=evaluator_steps, seed=seed)
    return cache, ev, key


def base_config(cache, key: str, steps: int | None, seed: int, preset: str, threads: int | None, precision: str):
    """The preset, read once for all variants (a long run never re-reads a preset file edited meanwhile)."""
    from t2igan.training.config import load_config

    overrides = [
        f"data.cache={cache.root}",
        f"data.embeddings={key}",
        f"train.steps={steps or 10**7}",
        "train.progress=false",
        "train.tensorboard=false",
        f"train.precision={precision}",
        f"seed={seed}",
        *([f"train.threads={threads}"] if threads else []),
    ]
    return load_config(preset, overrides=overrides)


def train_variant(variant: str, base, run: Path, minutes: float, steps: int | None, seed: int) -> dict:
    from t2igan.training.trainer import Trainer

    cfg = copy.deepcopy(base)
    cfg.loss.variant = variant
    cfg.seed = seed
    cfg.run_dir = str(run)
    trainer = Trainer(cfg.validate())
    done = threading.Event()

    def watch() -> None:  # same CPU budget: this process's CPU time (all threads), not wall time
        start = time.process_time()
        while not done.wait(0.5):
            if time.process_time() - start >= minutes * 60:
                trainer.request_stop()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    if steps is None:
        watcher.start()
    try:
        summary = trainer.fit()
    finally:
        done.set()
    if summary["stopped"]:
        trainer.export()
    return summary


def _finished(run: Path, n: int) -> tuple[dict, dict] | None:
    """(train summary, results) of a variant already trained and evaluated with the same n, from its metrics.jsonl."""
    from t2igan.metrics.context import n_label

    log = run / "metrics.jsonl"
    if not log.exists():
        return None
    for line in reversed(log.read_text().splitlines()):
        rec = json.loads(line)
        res = rec.get("results", {})
        if set(METRICS.split(",")) <= set(res) and res["attr_acc"]["protocol"].startswith(f"attr_acc_{n_label(n)}_"):
            index = json.loads((run / "pretrained" / "model_index.json").read_text())
            train = rec.get("snapshot", {}).get("train") or {"step": index.get("step"), "seconds": None}
            return train, res
    return None


def _aggregate(rows: list[dict]) -> dict:
    """mean and (population) std over seeds of every numeric field, per attribute too."""
    import numpy as np

    out: dict = {}
    for k in ("steps", "train_seconds", "attr_seen", "attr_unseen", "fid", "kid", "is"):
        vals = np.array([r[k] for r in rows if r.get(k) is not None], dtype=float)
        out[k] = {
            "mean": float(vals.mean()) if len(vals) else float("nan"),
            "std": float(vals.std()) if len(vals) else 0.0,
        }
    for k in ("attr_seen_per_attribute", "attr_unseen_per_attribute"):
        names = rows[0][k].keys()
        out[k] = {
            n: {"mean": float(np.mean([r[k][n] for r in rows])), "std": float(np.std([r[k][n] for r in rows]))}
            for n in names
        }
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--minutes", type=float, default=3.0, help="CPU-time training budget per variant (process CPU minutes)"
    )
    p.add_argument("--steps", type=int, default=None, help="exact steps per variant instead of --minutes")
    p.add_argument("--n", type=int, default=500, help="generated images per split for the metrics")
    p.add_argument("--out", type=Path, default=Path("runs/ablation"))
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--preset", default="reed_cpu")
    p.add_argument("--images", type=int, default=8189, help="synthetic flowers in the cache")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--evaluator-steps", type=int, default=700)
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (mean ± std over them)")
    p.add_argument("--data", type=Path, default=None, help="prepared cache with caption embeddings (else synthesised)")
    p.add_argument(
        "--embeddings", default="onehot", help="caption embedding key of --data, or onehot (oracle attribute code)"
    )
    p.add_argument("--precision", default="fp32", help="train.precision for every variant (fp32 | bf16)")
    p.add_argument("--reuse", action="store_true", help="keep variants already trained and evaluated in --out")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    # Import everything up front: a long run must never mix code versions when files change meanwhile.
    for module in ("t2igan.sampling", "t2igan.training.trainer", "t2igan.data.oracle_text"):
        importlib.import_module(module)
    from t2igan.metrics.context import EvalContext
    from t2igan.metrics.evaluate import record_results, run_metrics
    from t2igan.metrics.registry import load_all
    from t2igan.metrics.sources import pipeline_generate

    load_all()

    t0, load_start = time.time(), os.getloadavg()[0]
    cache, ev, key = prepare(
        args.out, args.images, args.size, args.evaluator_steps, args.seeds[0], args.data, args.embeddings
    )
    ceiling = ev.report["heldout_accuracy"]
    base = base_config(cache, key, args.steps, args.seeds[0], args.preset, args.threads, args.precision)
    runs: dict[str, list[dict]] = {}
    res: dict = {}
    for variant in args.variants.split(","):
        for seed in args.seeds:
            run = args.out / variant / f"seed_{seed}"
            done = _finished(run, args.n) if args.reuse else None
            if done is not None:
                summary, res = done
            else:
                summary = train_variant(variant, base, run, args.minutes, args.steps, seed)
                generate, snapshot = pipeline_generate(run, cache)
                ctx = EvalContext(cache, generate, n=args.n, seed=0, evaluator=ev, progress=False)
                res = run_metrics(ctx, METRICS)
                record_results(run, res, {**snapshot, "train": summary})
            a = res["attr_acc"]
            row = {
                "seed": seed,
                "steps": summary["step"],
                "train_seconds": summary["seconds"],
                "attr_seen": a["seen"]["overall"],
                "attr_unseen": a["unseen"]["overall"],
                "attr_seen_per_attribute": a["seen"]["per_attribute"],
                "attr_unseen_per_attribute": a["unseen"]["per_attribute"],
                "fid": res["fid_evaluator"]["value"],
                "kid": res["kid_evaluator"]["value"],
                "is": res["is_evaluator"]["value"],
            }
            runs.setdefault(variant, []).append(row)
            print(f"{variant} seed {seed}: {row}", file=sys.stderr, flush=True)
    protocols = {k: v["protocol"] for k, v in res.items()}
    rows = {v: _aggregate(r) for v, r in runs.items()}

    def ms(r: dict, k: str, fmt: str) -> str:
        return f"{r[k]['mean']:{fmt}} ± {r[k]['std']:{fmt}}"

    lines = [
        f"mean ± std over {len(args.seeds)} seed(s)",
        "| variant | steps | attr acc seen ↑ | attr acc unseen ↑ | FID ↓ | KID ↓ | IS ↑ |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {v} | {r['steps']['mean']:.0f} | {ms(r, 'attr_seen', '.3f')} | {ms(r, 'attr_unseen', '.3f')} | "
            f"{ms(r, 'fid', '.1f')} | {ms(r, 'kid', '.4f')} | {ms(r, 'is', '.2f')} |"
            for v, r in rows.items()
        ),
        f"| real held-out (evaluator ceiling) | – | {ceiling['seen']['overall']:.3f} | "
        f"{ceiling['unseen']['overall']:.3f} | – | – | – |",
    ]
    print("\n".join(lines), file=sys.stderr)
    machine = f"{_cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}"
    print(
        json.dumps(
            {
                "benchmark": "ablation",
                "budget_minutes": None if args.steps else args.minutes,
                "steps": args.steps,
                "n": args.n,
                "preset": args.preset,
                "precision": args.precision,
                "condition": key,
                "protocols": protocols,
                "seeds": args.seeds,
                "results": rows,
                "runs": runs,
                "evaluator_ceiling": ceiling,
                "machine": machine,
                "threads": torch.get_num_threads(),
                "load_avg_1min": [round(load_start, 1), round(os.getloadavg()[0], 1)],  # other work on the machine
                "torch": torch.__version__,
                "seconds": round(time.time() - t0, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
