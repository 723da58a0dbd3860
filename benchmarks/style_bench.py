"""Style-encoder benchmark (Reed et al. 2016, §4.4) → ONE JSON line on stdout.

Trains S with ‖z − S(G(z, φ(t)))‖² on a trained generator (G frozen; φ(t) from training-class captions) and
reports the style reconstruction error on *held-out* z (a seed stream never used in training) with captions of the
*unseen* test classes, next to two baselines:

- ``z_mse``: E‖z − S(G(z, φ))‖² / dim — the paper's objective on new z;
- ``random_z_mse``: an independent random z' instead of S's estimate (≈ 2: what "no inversion" scores);
- ``zero_mse``: predicting 0 (≈ 1: the best constant);
- ``image_mse`` vs ``random_image_mse``: ‖G(S(x), φ) − x‖² per pixel vs ‖G(z', φ) − x‖² — whether the recovered
  style redraws the same image.

    python benchmarks/style_bench.py [--model runs/demo] [--steps 400] [--n 512] [--save]

``--model`` is a run or pretrained folder (default: the demo's); ``--data`` defaults to the cache the run was
trained on (its config.yaml). ``--save`` keeps S in the model folder for ``t2igan style transfer``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import yaml

from t2igan.sampling import T2IPipeline
from t2igan.sampling.style_transfer import open_cache, save_style_encoder, training_caption_embeddings
from t2igan.training.style_trainer import StyleTrainConfig, evaluate_style, train_style_encoder
from t2igan.utils.cpu import pick_threads
from t2igan.utils.errors import T2IError


def data_of_run(model: Path) -> Path:
    """The prepared cache a run was trained on (``data.cache`` in its config.yaml)."""
    for cfg in (model / "config.yaml", model.parent / "config.yaml"):
        if cfg.is_file():
            cache = (yaml.safe_load(cfg.read_text()) or {}).get("data", {}).get("cache")
            if cache:
                return Path(cache)
    raise T2IError("cannot tell which data the model was trained on", path=model, hint="pass --data CACHE")


def transfer_scores(pipe: T2IPipeline, encoder: torch.nn.Module, cache, ev_dir: Path, n: int, seed: int) -> dict:
    """x̂ = G(S(x), φ(t)) for ``n`` real unseen-class images x and captions t of other classes, scored by the
    evaluator's style and attribute heads (``metrics.style_transfer_eval``)."""
    import numpy as np

    from t2igan.metrics.context import EvalContext
    from t2igan.metrics.evaluator import load_evaluator, uint8_to_tensor
    from t2igan.metrics.style_transfer_eval import style_transfer_scores
    from t2igan.utils.images import to_uint8

    ev = load_evaluator(ev_dir)
    if not ev.reads_style:
        return {"skipped": "the evaluator has no style heads (retrain it: t2igan evaluator train DATA)"}
    pool = EvalContext(cache, None, subset="eval").pool("test")
    rng = np.random.default_rng(seed)
    ids = rng.choice(pool, size=min(n, len(pool)), replace=False)
    cls = np.asarray(cache.class_ids)
    others = [int(rng.choice(pool[cls[pool] != cls[i]])) for i in ids]  # t from another class than x
    offsets = np.asarray(cache.caption_offsets)
    captions = [cache.flat_captions[int(offsets[j])] for j in others]
    size = pipe.generator.config.image_size
    x = np.asarray(cache.images(size))[ids]
    with torch.inference_mode():
        z = encoder(uint8_to_tensor(x))
        x_hat = pipe.generate(z, pipe.encode_prompt(captions))[-1]
    return style_transfer_scores(ev, ev_input(x, ev), ev_input(to_uint8(x_hat), ev), captions)


def ev_input(images, ev):
    from t2igan.metrics.context import resize_uint8

    return resize_uint8(images, ev.config.image_size)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="runs/demo")
    ap.add_argument("--data", default=None)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--width", type=int, default=32, help="S's first conv width")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--n", type=int, default=512, help="held-out z for the evaluation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", action="store_true")
    args = ap.parse_args(argv)

    model = Path(args.model)
    pipe = T2IPipeline.from_pretrained(model)
    cache = open_cache(args.data or data_of_run(model))
    train_pool = training_caption_embeddings(pipe, cache, max_captions=4096, seed=args.seed, split="train")
    test_pool = training_caption_embeddings(pipe, cache, max_captions=1024, seed=args.seed, split="test")
    torch.set_num_threads(pick_threads())  # one thread when other work shares the cores (see apps/demo.py)
    cfg = StyleTrainConfig(steps=args.steps, batch_size=args.batch_size, width=args.width, seed=args.seed)
    res = train_style_encoder(pipe.generator, train_pool, cfg, progress=sys.stderr.isatty())
    m = evaluate_style(pipe.generator, res.encoder, test_pool, n=args.n, seed=args.seed + 12345)
    line = {
        "bench": "style_encoder",
        "model": str(pipe.path),
        "steps": args.steps,
        "width": args.width,
        "batch_size": args.batch_size,
        "train_seconds": round(res.seconds, 1),
        "final_train_loss": round(sum(res.losses[-20:]) / len(res.losses[-20:]), 4),
        **{k: round(v, 4) for k, v in m.items()},
        "z_mse_vs_random": round(m["z_mse"] / m["random_z_mse"], 3),
        "heldout": f"{args.n} new z (seed {args.seed + 12345}), unseen-class captions",
        "z_dim": pipe.z_dim,
        "threads": torch.get_num_threads(),
        "load_1min": round(os.getloadavg()[0], 2),
        "time": round(time.time()),
    }
    ev_dir = Path(cache.root) / "evaluator"
    if ev_dir.is_dir():
        line["style_transfer"] = transfer_scores(pipe, res.encoder, cache, ev_dir, n=args.n, seed=args.seed)
    if args.save:
        save_style_encoder(pipe, res.encoder, line)
    print(json.dumps(line))
    return line


if __name__ == "__main__":
    try:
        main()
    except T2IError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
