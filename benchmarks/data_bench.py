"""Data-layer benchmark → ONE JSON line on stdout.

Measures, on one core (numpy/torch single-threaded):

- ``render_img_per_s``: synthetic flowers rendered at 64×64 in memory (batches of 256), the ≥ 500 images/s target
  (``render_img_per_cpu_s``: the same per second of this process's CPU time, robust to other load);
- ``synth_write_img_per_s``: `write_synthetic_dataset` (render + PNG + caption files) at 64×64;
- ``prepare_img_per_s``: `prepare_cache` of that Reed-layout folder to 64 px (PNG decode, checks, memory-mapped .npy;
  decoding threads: default min(4, CPUs));
- ``prepare_jpeg500_img_per_s``: the same from 500×500 JPEGs (photo-sized, like Oxford-102) in ``jpg/``;
- ``loader_batches_per_s``: `TextImageDataset.batch` at batch 64, 64×64, k_avg=4 over 1024-d embeddings, flips on.

Timings are medians of ``--repeats`` runs; the machine's 1-minute load average is recorded with them.

    python benchmarks/data_bench.py [--n 1024] [--repeats 3]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from t2igan.data.cache import PreparedCache, prepare_cache  # noqa: E402
from t2igan.data.dataset import TextImageDataset  # noqa: E402
from t2igan.data.synthetic import SyntheticFlowers, render_flowers, write_synthetic_dataset  # noqa: E402


def _median_rate(fn, count: int, repeats: int, clock=time.perf_counter) -> float:
    times = []
    for _ in range(repeats):
        t = clock()
        fn()
        times.append(clock() - t)
    return count / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1024, help="images per measurement")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    n, reps = args.n, args.repeats

    cls = SyntheticFlowers(seed=0).class_ids(n)

    def render() -> None:  # style sampling included: the full cost of an image
        fl = SyntheticFlowers(seed=0)
        for s in range(0, n, 256):
            style = fl.sample_style(np.arange(s, min(n, s + 256)))
            render_flowers(fl.class_attributes[cls[s : s + 256]], style, 64)

    result: dict[str, object] = {"bench": "data", "size": 64, "n": n, "compute_threads": 1}
    result["decode_threads"] = min(4, os.cpu_count() or 1)
    result["render_img_per_s"] = round(_median_rate(render, n, reps), 1)
    # CPU time of this process: what the wall-clock figure would be on an idle core
    result["render_img_per_cpu_s"] = round(_median_rate(render, n, reps, time.process_time), 1)

    tmp = Path(tempfile.mkdtemp(prefix="t2igan_data_bench_"))
    try:
        src = tmp / "flowers"
        result["synth_write_img_per_s"] = round(
            _median_rate(lambda: write_synthetic_dataset(src, n=n, size=64, seed=0), n, 1), 1
        )

        def prepare() -> None:
            shutil.rmtree(tmp / "cache", ignore_errors=True)
            prepare_cache(src, sizes=(64,), out=tmp / "cache", progress=False)

        result["prepare_img_per_s"] = round(_median_rate(prepare, n, reps), 1)
        t = time.perf_counter()
        prepare_cache(src, sizes=(64,), out=tmp / "cache", progress=False)
        result["prepare_noop_s"] = round(time.perf_counter() - t, 3)

        # Photo-sized inputs like Oxford-102 (500×500 JPEG) → 64 px: JPEG decode at reduced scale + resize.
        photos = tmp / "photos"
        shutil.copytree(src, photos, ignore=shutil.ignore_patterns("images", ".t2igan_cache"))
        (photos / "jpg").mkdir()
        for p in sorted((src / "images").glob("*.png")):
            Image.open(p).resize((500, 500), Image.BICUBIC).save(photos / "jpg" / f"{p.stem}.jpg", quality=90)

        def prepare_photos() -> None:
            shutil.rmtree(tmp / "pcache", ignore_errors=True)
            prepare_cache(photos, sizes=(64,), out=tmp / "pcache", progress=False)

        result["prepare_jpeg500_img_per_s"] = round(_median_rate(prepare_photos, n, reps), 1)

        cache = PreparedCache.open(tmp / "cache")
        rng = np.random.default_rng(0)
        cache.save_embeddings("bench", rng.standard_normal((cache.n_captions, 1024)).astype(np.float32), {})
        ds = TextImageDataset(cache, size=64, embeddings="bench", k_avg=4, flip=True, seed=0)
        n_batches = max(1, len(ds) // 64)

        def load() -> None:
            for e in range(2):
                order = ds.epoch_order(e)
                for b in range(n_batches):
                    ds.batch(order[b * 64 : (b + 1) * 64], e)

        result["loader_batches_per_s"] = round(_median_rate(load, 2 * n_batches, reps), 1)
        result["loader_img_per_s"] = round(result["loader_batches_per_s"] * 64, 1)  # type: ignore[operator]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["load_avg_1min"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
