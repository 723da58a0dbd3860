"""Reproduce the model shipped inside the package as ``flowers-64``, from scratch, and write it with its model card.

    python scripts/train_shipped_model.py --minutes 30                 # a release run (the lead's recipe: reed_cpu)
    python scripts/train_shipped_model.py --steps 60 --images 512 --sje-steps 60 --eval-steps 40 --eval-n 64
                                                                        # a smoke run, under a minute on one core

1. synthesise the flowers (Reed's Oxford-102 layout) and prepare the cache;
2. train the attribute evaluator on the real images (it also drives `train.eval_every`, when the preset asks);
3. train the char-CNN-RNN with DS-SJE and encode every caption;
4. train GAN-INT-CLS with the ``reed_cpu`` preset for ``--steps`` (or the preset's) and/or ``--minutes``;
5. measure attribute accuracy (and FID_eval when scipy is installed) on held-out captions;
6. write ``src/t2igan/pretrained/flowers-64/``: the pipeline folder, ``README.md`` (the model card with the
   figures and this command), ``samples.png`` and ``examples.json`` (captions for `t2igan serve`), ≤ 20 MB.

The work folder (``--work``, default ``runs/shipped``) holds the data, the encoder and the training run; it must be
new, empty or an earlier work folder of this script. Prints one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NAME = "flowers-64"
WORK_KIND = "shipped-work"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "t2igan" / "pretrained" / NAME, help="model folder")
    ap.add_argument("--work", type=Path, default=Path("runs/shipped"), help="data, encoder and run go here")
    ap.add_argument("--images", type=int, default=8189, help="synthetic flowers (Oxford-102 has 8,189)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sje-preset", default="cpu", help="DS-SJE preset of the char-CNN-RNN (cpu | paper | tiny)")
    ap.add_argument("--sje-steps", type=int, default=None, help="DS-SJE steps (default: the preset's)")
    ap.add_argument("--steps", type=int, default=None, help="GAN steps (default: the reed_cpu preset's)")
    ap.add_argument("--minutes", type=float, default=None, help="GAN training budget (train.max_minutes)")
    ap.add_argument("--batch", type=int, default=None, help="GAN batch size (default: the preset's)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--eval-steps", type=int, default=600, help="attribute evaluator training steps")
    ap.add_argument("--eval-n", type=int, default=500, help="captions per split for the figures")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="GAN config override")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    args.argv = argv  # the command, for the model card
    import torch

    from t2igan.data.cache import PreparedCache, prepare_cache
    from t2igan.data.synthetic import write_synthetic_dataset
    from t2igan.metrics.evaluator import train_evaluator
    from t2igan.text import encode_captions, load_text_encoder, make_train_config, train_sje
    from t2igan.utils.outputs import claim_folder

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    times: dict[str, float] = {}
    work = claim_folder(args.work, WORK_KIND)
    for sub in ("text_encoder", "run"):  # a fresh encoder and run each time (inside our own work folder)
        shutil.rmtree(work / sub, ignore_errors=True)

    def lap(name: str, start: float) -> None:
        times[name] = round(time.perf_counter() - start, 1)
        print(f"[{time.perf_counter() - t0:6.1f}s] {name} done in {times[name]} s", file=sys.stderr)

    t = time.perf_counter()
    src = write_synthetic_dataset(work / "data" / "flowers", n=args.images, size=args.size, seed=args.seed)
    cache = PreparedCache.open(prepare_cache(src, sizes=(args.size,), progress=False))
    lap("data", t)

    t = time.perf_counter()
    evaluator = train_evaluator(cache, size=args.size, steps=args.eval_steps, seed=args.seed, progress=False)
    evaluator.save_pretrained(cache.root / "evaluator", report=evaluator.report)  # where the eval hook looks
    lap("evaluator", t)

    t = time.perf_counter()
    sje_cfg = make_train_config(args.sje_preset, steps=args.sje_steps, seed=args.seed)
    sje = train_sje(cache, work / "text_encoder", sje_cfg, progress=False)
    encoder = load_text_encoder(work / "text_encoder")
    key = encode_captions(cache, encoder)
    lap("text_encoder", t)

    t = time.perf_counter()
    cfg, summary = train_gan(args, cache.root, key, work, encoder)
    lap("gan", t)

    t = time.perf_counter()
    metrics, figures = evaluate(args, cache, work / "run" / "pretrained", evaluator)
    lap("evaluate", t)

    size_mb = write_model(args, cache, work, cfg, metrics, figures, sje, summary)
    result = {
        "out": str(args.out),
        "size_mb": round(size_mb, 2),
        "images": args.images,
        "gan_steps": summary["step"],
        "gan_images_per_s": summary["images_per_s"],
        **figures,
        "zero_shot_unseen_top1": sje.get("zero_shot_unseen_top1"),
        "seconds": times,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result))
    return result


def train_gan(args: argparse.Namespace, cache_root: Path, key: str, work: Path, encoder: Any) -> tuple[Any, dict]:
    """GAN-INT-CLS with the reed_cpu preset on the cached embeddings; the export carries the encoder."""
    from t2igan.metrics.training_eval import EvalHook
    from t2igan.training.config import load_config
    from t2igan.training.trainer import Trainer

    sets = [
        f"data.cache={cache_root}",
        f"data.embeddings={key}",
        f"data.size={args.size}",
        f"run_dir={work / 'run'}",
        f"seed={args.seed}",
        "train.progress=false",
        "train.tensorboard=false",
    ]
    if args.steps is not None:
        sets.append(f"train.steps={args.steps}")
    if args.minutes is not None:
        sets.append(f"train.max_minutes={args.minutes}")
    if args.batch is not None:
        sets.append(f"train.batch_size={args.batch}")
    cfg = load_config("reed_cpu", [*sets, *args.sets])
    hook = EvalHook.for_trainer_config(cfg)
    trainer = Trainer(cfg, text_encoder=encoder, callbacks=[hook] if hook else [])
    summary = trainer.fit()
    if summary["stopped"]:
        raise SystemExit("training was interrupted; nothing written")
    return cfg, summary


def evaluate(args: argparse.Namespace, cache: Any, pretrained: Path, evaluator: Any) -> tuple[dict, dict]:
    """Attribute accuracy (+ FID_eval with scipy) of the exported model: card metrics and flat figures."""
    from t2igan.metrics.evaluate import evaluate_generator
    from t2igan.sampling import T2IPipeline
    from t2igan.utils.optional import missing

    pipe = T2IPipeline.from_pretrained(pretrained)

    def generate(captions: list[str], seeds: list[int]) -> Any:
        return pipe(captions, seeds=seeds, output_type="pt", denormalize=False).images

    names = ["attr_acc"] + ([] if missing("scipy") else ["fid_evaluator"])
    res = evaluate_generator(cache, generate, names, evaluator=evaluator, n=args.eval_n, seed=args.seed)
    attr = res["attr_acc"]
    metrics: dict[str, Any] = {
        attr.get("protocol", "attr_acc"): {
            "unseen": round(attr["unseen"]["overall"], 4),
            "seen": round(attr["seen"]["overall"], 4),
            "chance": round(attr["chance"], 4),
            "real images": round(attr.get("ceiling_real_heldout", {}).get("all", float("nan")), 4),
        }
    }
    figures = {"attr_acc_unseen": metrics[next(iter(metrics))]["unseen"], "attr_acc_seen": attr["seen"]["overall"]}
    if "fid_evaluator" in res:
        fid = res["fid_evaluator"]
        value = fid.get("fid", fid.get("value"))
        if isinstance(value, (int, float)) and math.isfinite(value):
            metrics[fid.get("protocol", "fid_evaluator")] = round(float(value), 2)
            figures["fid_evaluator"] = round(float(value), 2)
    return metrics, figures


def write_model(
    args: argparse.Namespace, cache: Any, work: Path, cfg: Any, metrics: dict, figures: dict, sje: dict, summary: dict
) -> float:
    """The shipped folder: pipeline + card + samples.png + examples.json; returns its size in MB (≤ the limit)."""
    from t2igan.apps.demo_report import heldout_rows
    from t2igan.pretrained import MAX_SHIPPED_MB
    from t2igan.sampling import T2IPipeline
    from t2igan.training.export import ModelCard, describe_data
    from t2igan.utils.images import make_grid, save_image
    from t2igan.utils.io import atomic_write_json

    pipe = T2IPipeline.from_pretrained(work / "run" / "pretrained")
    captions, labels = heldout_rows(cache, seed=args.seed, per_split=4)
    seeds = list(range(8))
    images = pipe(captions, num_images_per_prompt=len(seeds), seeds=seeds, output_type="pt", denormalize=False)
    rows = [f"[{lab}] {cap}" for lab, cap in zip(labels, captions, strict=True)]
    samples = save_image(make_grid(images.images, nrow=len(seeds), row_captions=rows), work / "samples.png")
    command = "python scripts/train_shipped_model.py " + shlex.join(args.argv)
    unseen, seen = figures["attr_acc_unseen"], figures["attr_acc_seen"]
    card = ModelCard(
        name=NAME,
        description=(
            "GAN-INT-CLS (Reed et al. 2016) with its char-CNN-RNN text encoder (DS-SJE), trained on t2igan's "
            f"synthetic flowers ({args.images} images, {args.size} px; 82 seen / 20 unseen classes). It draws "
            "flowers from captions such as *this flower has five pink petals and a yellow center*: petal colour, "
            "centre colour, petal shape and count. It ships inside the t2igan package."
        ),
        datasets=["t2igan-synthetic-flowers"],
        tags=["flowers", "synthetic", "char-cnn-rnn"],
        metrics=metrics,
        config=cfg.to_dict(),
        data=describe_data(cache.root),
        samples=samples,
        load_as=NAME,
        sections={
            "Figures": (
                f"Attribute accuracy (the attributes each caption names that the evaluator network reads off the "
                f"generated image), n = {args.eval_n} held-out captions per split: unseen classes {unseen:.1%}, "
                f"seen classes {seen:.1%}; the evaluator reads {metrics[next(iter(metrics))]['real images']:.1%} "
                f"off real held-out images. GAN: {summary['step']} steps, {summary['images_per_s']} images/s. "
                f"Text encoder: DS-SJE zero-shot top-1 on unseen classes "
                f"{float(sje.get('zero_shot_unseen_top1') or float('nan')):.3f}."
            ),
            "Reproduce": f"```bash\n{command}\n```",
        },
    )
    out = pipe.save_pretrained(args.out, card=card)
    atomic_write_json(out / "examples.json", captions)
    size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    if size_mb > MAX_SHIPPED_MB:
        raise SystemExit(f"{out} is {size_mb:.1f} MB: a shipped model must stay ≤ {MAX_SHIPPED_MB} MB")
    return size_mb


if __name__ == "__main__":
    main()
