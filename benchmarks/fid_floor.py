"""How much FID_eval can a super-resolving stage buy? Real images at a low size, upsampled, against real ones.

StackGAN's Stage-II is scored at its own size (e.g. 128 px) against Stage-I upsampled. This script gives the two
bounds that frame that comparison, with the same evaluator and sample count: ``real_vs_real`` (two disjoint sets of
real test images: the floor that n images allow) and ``real_low_upsampled_vs_real`` (real images at the low size,
upsampled bicubic or bilinear, against *other* real images at the high size: what perfect content with only the low
size's detail scores). Their difference is all that sharper detail can gain; the rest of a Stage-I's FID_eval is
content (wrong attributes, shapes, artefacts), which a Stage-II must repair to gain more. Prints one JSON line.

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


def fid_floor(cache: Path, evaluator_dir: Path, low: int, high: int, n: int = 500, seed: int = 0) -> dict:
    from t2igan.metrics.evaluator import load_evaluator
    from t2igan.metrics.fid import fid_from_features

    test = np.flatnonzero(np.load(cache / "is_test.npy"))
    if len(test) < 2 * n:
        raise SystemExit(f"error: {cache}: {len(test)} test images, need 2 × n = {2 * n} (lower --n)")
    rng = np.random.default_rng(seed)
    pick = rng.choice(test, 2 * n, replace=False)
    order = np.argsort(pick)  # memmaps read in index order; the split into halves stays random
    hi = np.empty((2 * n, high, high, 3), np.uint8)
    lo = np.empty((2 * n, low, low, 3), np.uint8)
    hi[order] = np.load(cache / f"images_{high}.npy", mmap_mode="r")[pick[order]]
    lo[order] = np.load(cache / f"images_{low}.npy", mmap_mode="r")[pick[order]]
    ev = load_evaluator(evaluator_dir).eval()
    if ev.config.image_size != high:
        raise SystemExit(f"error: {evaluator_dir}: evaluator reads {ev.config.image_size} px, not --high {high}")
    a, b = features(ev, hi[:n]), features(ev, hi[n:])
    out = {"n": n, "low": low, "high": high, "real_vs_real": round(fid_from_features(a, b), 2)}
    for method in ("bicubic", "bilinear"):
        up = features(ev, resize(lo[n:], high, method))
        out[f"real_low_upsampled_vs_real_{method}"] = round(fid_from_features(a, up), 2)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="a dataset folder (or its .t2igan_cache) cached at --low and --high px")
    ap.add_argument("--evaluator", type=Path, required=True, help="attribute evaluator folder that reads --high px")
    ap.add_argument("--low", type=int, default=64)
    ap.add_argument("--high", type=int, default=128)
    ap.add_argument("--n", type=int, default=500, help="images per set (two disjoint sets of real test images)")
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
    result.update(fid_floor(cache, args.evaluator, args.low, args.high, args.n))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
