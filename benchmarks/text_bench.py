"""Text-encoder benchmark → ONE JSON line on stdout.

Measures encoding throughput (captions/s) of the char-CNN-RNN (CPU preset and the paper's widths) and MiniLM, the
DS-SJE training step time, and the zero-shot top-1 class retrieval from text (Reed et al., CVPR 2016, §5) on the
synthetic flowers: test classes (unseen in training, 20-way) and training classes (seen, 82-way), with the time the
CPU preset took to train. Timings are medians; the machine's load (``os.getloadavg``) is recorded with them.

    python benchmarks/text_bench.py                       # trains the CPU preset (~2–4 min)
    python benchmarks/text_bench.py --encoder runs/text   # reuse a trained encoder (its metrics.json)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

from t2igan.text import CharCnnRnn, load_text_encoder
from t2igan.text.base import auto_threads
from t2igan.text.sje import ds_sje_loss
from t2igan.text.sje_image import SjeImageConfig, SjeImageEncoder
from t2igan.text.sje_trainer import _TrainData, make_train_config, train_sje
from t2igan.utils.errors import T2IError


def captions_per_second(encoder, captions: list[str], seconds: float = 2.0) -> float:
    encoder.encode(captions[:64])  # warm-up
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        encoder.encode(captions[done % len(captions) :][:256] or captions[:256], batch_size=256)
        done += 256
    return round(done / (time.perf_counter() - t0), 1)


def sje_step_ms(cache, preset: str = "cpu", steps: int = 12) -> float:
    cfg = make_train_config(preset)
    torch.manual_seed(0)
    text = CharCnnRnn.from_preset(cfg.text_preset)
    image = SjeImageEncoder(SjeImageConfig(text.dim, cfg.image_size, cfg.image_channels, 0, cfg.image_extra_conv))
    params = list(text.parameters()) + list(image.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    data = _TrainData(cache, cfg, text, None)
    times = []
    for step in range(steps):
        t0 = time.perf_counter()
        x, tokens, labels = data.batch(cfg, step)
        loss, _ = ds_sje_loss(image(x), text.forward_tokens(tokens), labels)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        times.append(time.perf_counter() - t0)
    return round(1000 * statistics.median(times[2:]), 1)


def open_cache(data: str | None, n: int):
    from t2igan.data.cache import PreparedCache

    if data:
        from t2igan.apps.cli_encode import open_data

        return open_data(data)
    from t2igan.data.synthetic import synthesize_cache

    return PreparedCache.open(synthesize_cache(Path("runs") / "bench_text" / f"synthetic_{n}", n=n, sizes=(32, 64)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="dataset/cache (default: synthetic flowers, 8189 images)")
    ap.add_argument("--n", type=int, default=8189, help="synthetic images when --data is not given")
    ap.add_argument("--encoder", default=None, help="trained char-CNN-RNN folder: skip training, read its metrics")
    ap.add_argument("--steps", type=int, default=None, help="training steps for the CPU preset (default: preset)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the idle cores)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads or auto_threads())  # the idle cores: 1 on a busy machine
    cache = open_cache(args.data, args.n)
    rng = np.random.default_rng(0)
    caps = [cache.flat_captions[int(j)] for j in rng.choice(len(cache.flat_captions), 1024, replace=False)]

    result: dict = {"bench": "text", "threads": torch.get_num_threads(), "load_avg_1m": round(os.getloadavg()[0], 2)}
    torch.manual_seed(0)
    result["char_cnn_rnn_cpu_captions_per_s"] = captions_per_second(CharCnnRnn.from_preset("cpu"), caps)
    result["char_cnn_rnn_paper_captions_per_s"] = captions_per_second(CharCnnRnn.from_preset("paper"), caps)
    try:
        result["minilm_captions_per_s"] = captions_per_second(load_text_encoder("minilm"), caps)
    except T2IError as e:
        result["minilm_captions_per_s"] = None
        result["minilm_error"] = str(e)
    result["sje_step_ms_cpu_preset"] = sje_step_ms(cache, "cpu")
    cfg = make_train_config("cpu")
    result["sje_batch"] = cfg.classes_per_batch * cfg.images_per_class

    if args.encoder:
        metrics = json.loads((Path(args.encoder) / "metrics.json").read_text())
        result["encoder"] = args.encoder
    else:
        with tempfile.TemporaryDirectory() as tmp:
            metrics = train_sje(cache, tmp, make_train_config("cpu", steps=args.steps), progress=False)
    for k in ("zero_shot_unseen_top1", "unseen_chance", "zero_shot_seen_top1", "seen_chance", "train_seconds",
              "steps"):  # fmt: skip
        result[k] = metrics.get(k)
    result["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
