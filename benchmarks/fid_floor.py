"""How much FID_eval can a super-resolving stage buy? Real images at a low size, upsampled, against real ones.

StackGAN's Stage-II is scored at its own size (e.g. 128 px) against Stage-I upsampled. This script gives the two
bounds that frame that comparison, with the same evaluator and sample count, averaged over random splits of the
real test images: ``real_vs_real`` (two disjoint sets of real images: the floor that n images allow) and
``real_low_upsampled_vs_real_*`` (real images at the low size, upsampled bicubic or bilinear, against *other* real
images at the high size: what perfect content with only the low size's detail scores). Their difference is all that
sharper detail can gain; the rest of a Stage-I's FID_eval is content (wrong attributes, shapes, artefacts), which a
Stage-II must repair to gain more. Prints one JSON line.

With ``--stage2 RUN`` (a StackGAN Stage-II run or pretrained folder) it also scores that Stage-II fed the *real*
low-size test images (each with its first caption, CA at its mean): ``stage2_on_real_low_vs_real`` against the same
real sets, and ``stage2_on_real_low_l1`` / ``bilinear_l1`` (mean |x − real| in [−1, 1] units). A faithful refiner
scores near the upsampled bound; what it scores above that is the damage it does to a perfect draft. The exported
Stage-II runs with its BatchNorm statistics of Stage-I drafts (eval mode), so real drafts also meet that shift.

    python benchmarks/fid_floor.py data/flowers256 --evaluator EVALUATOR_128 --low 64 --high 128 \\
        [--stage2 RUN [--grid PNG]]
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


def stage2_on_real(run: Path, cache: Path, images: np.ndarray, image_ids: np.ndarray, high: int) -> np.ndarray:
    """A StackGAN Stage-II's refinement of real low-size ``images`` [N,h,w,3] uint8 (first caption of each image id,
    CA at its mean) → uint8 [N,high,high,3]."""
    import torch

    from t2igan.data.cache import PreparedCache
    from t2igan.sampling import T2IPipeline
    from t2igan.utils.images import to_uint8

    folder = run / "pretrained" if (run / "pretrained" / "model_index.json").is_file() else run
    if not (folder / "model_index.json").is_file():
        raise SystemExit(f"error: {run}: no pretrained pipeline (model_index.json); pass a StackGAN Stage-II run")
    pipe = T2IPipeline.from_pretrained(folder)
    g = pipe.generator
    stage2 = getattr(g, "stage2", None)
    if stage2 is None:
        raise SystemExit(f"error: {run}: not a StackGAN Stage-II generator (train one with --stage1 RUN)")
    if (g.config.stage1_size, g.config.stage2_size) != (images.shape[1], high):
        raise SystemExit(
            f"error: {run}: Stage-II maps {g.config.stage1_size} → {g.config.stage2_size} px, "
            f"not --low {images.shape[1]} → --high {high}"
        )
    pc = PreparedCache.open(cache)
    flat = pc.caption_offsets[image_ids]
    if pipe.text_encoder is not None:
        emb = pipe.encode_prompt([pc.flat_captions[int(j)] for j in flat]).float()
    else:
        key = pipe.text_info.get("key")
        if key is None or not pc.has_embeddings(key):
            raise SystemExit(f"error: {cache}: lacks the embeddings {key!r} this Stage-II was trained on")
        emb = torch.from_numpy(np.asarray(pc.embeddings(key)[flat], dtype=np.float32))
    g.eval()
    g.use_ca_mean = True
    out = []
    with torch.no_grad():
        for s in range(0, len(images), 64):
            x = torch.from_numpy(np.ascontiguousarray(images[s : s + 64])).permute(0, 3, 1, 2).float() / 127.5 - 1
            e = emb[s : s + 64]
            if stage2.ca is None:  # this Stage-II reads the Stage-I code ĉ₀ (its mean here)
                y = stage2(x, e, condition=g.stage1.ca(e)[0])[0]
            else:
                y = stage2(x, e)[0]
            out.append(to_uint8(y))
    return np.concatenate(out)


def save_grid(path: Path, rows: list[np.ndarray]) -> None:
    """Each [8,h,w,3] uint8 array as one row of a PNG, written atomically (only a regular file is replaced)."""
    from t2igan.utils.images import make_grid
    from t2igan.utils.io import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        make_grid(np.concatenate(rows), nrow=len(rows[0])).save(tmp, format="PNG")


def fid_floor(
    cache: Path,
    evaluator_dir: Path,
    low: int,
    high: int,
    n: int = 500,
    repeats: int = 5,
    stage2: Path | None = None,
    grid: Path | None = None,
    overwrite: bool = False,
) -> dict:
    """Both bounds over ``repeats`` random pairs of disjoint n-image sets (seeds 0 …): mean and standard deviation;
    with ``stage2``, also that Stage-II on the real low-size images (see the module docstring), and with ``grid`` a
    PNG of 8 test images spread over the split: real low-size upsampled (bicubic) / the Stage-II's refinement /
    real high-size."""
    from t2igan.metrics.evaluator import load_evaluator
    from t2igan.metrics.fid import fid_from_features

    if grid is not None and stage2 is None:
        raise SystemExit("error: --grid shows a Stage-II's refinements: pass --stage2 RUN with it")
    if grid is not None and grid.exists() and not overwrite:  # before minutes of work, not after
        raise SystemExit(f"error: {grid}: already exists; pass another --grid path, or --overwrite to replace it")

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
    extra: dict[str, object] = {}
    if stage2 is not None:
        refined = stage2_on_real(stage2, cache, lo, test, high)
        f_up["stage2"] = features(ev, refined)
        runs["stage2_on_real_low_vs_real"] = []
        l1 = lambda a: float(np.abs(a.astype(np.float32) - hi.astype(np.float32)).mean() / 127.5)  # noqa: E731
        extra = {"stage2": str(stage2), "stage2_on_real_low_l1": l1(refined)}
        extra["bilinear_l1"] = l1(resize(lo, high, "bilinear"))
        if grid is not None:
            pick = np.linspace(0, len(test) - 1, 8).astype(int)  # spread over the (class-sorted) test images
            save_grid(grid, [resize(lo[pick], high, "bicubic"), refined[pick], np.asarray(hi[pick])])
            extra["grid"] = str(grid)
    for seed in range(repeats):
        pick = np.random.default_rng(seed).permutation(len(test))[: 2 * n]
        a, b = pick[:n], pick[n:]
        runs["real_vs_real"].append(fid_from_features(f_hi[a], f_hi[b]))
        for m, f in f_up.items():
            name = "stage2_on_real_low_vs_real" if m == "stage2" else f"real_low_upsampled_vs_real_{m}"
            runs[name].append(fid_from_features(f_hi[a], f[b]))
    out: dict[str, object] = {"n": n, "low": low, "high": high, "repeats": repeats, **extra}
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
    ap.add_argument("--stage2", type=Path, help="also score this StackGAN Stage-II run on the real low-size images")
    ap.add_argument("--grid", type=Path, help="with --stage2: PNG of 8 images (upsampled / Stage-II / real)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing --grid file")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    cache = args.data if (args.data / "is_test.npy").is_file() else args.data / ".t2igan_cache"
    for size in (args.low, args.high):
        if not (cache / f"images_{size}.npy").is_file():
            print(f"error: {cache}: not cached at {size} px (prepare it with that size)", file=sys.stderr)
            return 2
    result = {"benchmark": "fid_floor", "data": str(args.data), "torch_threads": args.threads}
    sets = {"stage2": args.stage2, "grid": args.grid, "overwrite": args.overwrite}
    result.update(fid_floor(cache, args.evaluator, args.low, args.high, args.n, args.repeats, **sets))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
