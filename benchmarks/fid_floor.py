"""How much FID_eval can a super-resolving stage buy? Real images at a low size, upsampled, against real ones.

StackGAN's Stage-II is scored at its own size (e.g. 128 px) against Stage-I upsampled. This script gives the two
bounds that frame that comparison, with the same evaluator and sample count, averaged over random splits of the
real test images: ``real_vs_real`` (two disjoint sets of real images: the floor that n images allow) and
``real_low_upsampled_vs_real_*`` (real images at the low size, upsampled bicubic or bilinear, against *other* real
images at the high size: what perfect content with only the low size's detail scores). Their difference is all that
sharper detail can gain; the rest of a Stage-I's FID_eval is content (wrong attributes, shapes, artefacts), which a
Stage-II must repair to gain more. Prints one JSON line.

    python benchmarks/fid_floor.py data/flowers256 --evaluator EVALUATOR_128 --low 64 --high 128
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def features(evaluator, images: np.ndarray, batch: int = 128) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, len(images), batch):
            x = torch.from_numpy(np.ascontiguousarray(images[s : s + batch])).permute(0, 3, 1, 2).float() / 127.5 - 1
            out.append(evaluator.features(x).float().numpy())
    return np.concatenate(out)


def resize(images: np.ndarray, size: int, method: str) -> np.ndarray:
    from PIL import Image

    resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[method]
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), resample)) for im in images])


def fid_floor(cache: Path, evaluator_dir: Path, low: int, high: int, n: int = 500, repeats: int = 5) -> dict:
    """Both bounds over ``repeats`` random pairs of disjoint n-image sets (seeds 0 …): mean and standard deviation."""
    from t2igan.metrics.evaluator import load_evaluator
    from t2igan.metrics.fid import fid_from_features

    test = np.flatnonzero(np.load(cache / "is_test.npy"))
    if len(test) < 2 * n:
        raise SystemExit(f"error: {cache}: {len(test)} test images, need 2 × n = {2 * n} (lower --n)")
    ev = load_evaluator(evaluator_dir).eval()
    if ev.config.image_size != high:
        raise SystemExit(f"error: {evaluator_dir}: evaluator reads {ev.config.image_size} px, not --high {high}")
    hi = np.load(cache / f"images_{high}.npy", mmap_mode="r")[test]
    lo = np.load(cache / f"images_{low}.npy", mmap_mode="r")[test]
    f_hi = features(ev, hi)
    f_up = {m: features(ev, resize(lo, high, m)) for m in ("bicubic", "bilinear")}
    runs: dict[str, list[float]] = {"real_vs_real": [], **{f"real_low_upsampled_vs_real_{m}": [] for m in f_up}}
    for seed in range(repeats):
        pick = np.random.default_rng(seed).permutation(len(test))[: 2 * n]
        a, b = pick[:n], pick[n:]
        runs["real_vs_real"].append(fid_from_features(f_hi[a], f_hi[b]))
        for m, f in f_up.items():
            runs[f"real_low_upsampled_vs_real_{m}"].append(fid_from_features(f_hi[a], f[b]))
    out: dict[str, object] = {"n": n, "low": low, "high": high, "repeats": repeats}
    for k, v in runs.items():
        out[k] = float(np.mean(v))
        out[k + "_std"] = float(np.std(v))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="a dataset folder (or its .t2igan_cache) cached at --low and --high px")
    ap.add_argument("--evaluator", type=Path, required=True, help="attribute evaluator folder that reads --high px")
    ap.add_argument("--low", type=int, default=64)
    ap.add_argument("--high", type=int, default=128)
    ap.add_argument("--n", type=int, default=500, help="images per set (two disjoint sets of real test images)")
    ap.add_argument("--repeats", type=int, default=5, help="random pairs of disjoint sets (mean ± std reported)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    cache = args.data if (args.data / "is_test.npy").is_file() else args.data / ".t2igan_cache"
    for size in (args.low, args.high):
        if not (cache / f"images_{size}.npy").is_file():
            print(f"error: {cache}: not cached at {size} px (prepare it with that size)", file=sys.stderr)
            return 2
    result = {"benchmark": "fid_floor", "data": str(args.data), "torch_threads": args.threads}
    result.update(fid_floor(cache, args.evaluator, args.low, args.high, args.n, args.repeats))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
