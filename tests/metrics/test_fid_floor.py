"""benchmarks/fid_floor.py: the two bounds on what a super-resolving stage can gain in FID_eval."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from t2igan.data.synthetic import synthesize_cache
from t2igan.metrics.evaluator import train_evaluator
from t2igan.utils.errors import T2IError


def test_fid_floor_bounds(tmp_path: Path, load_benchmark) -> None:
    from t2igan.data.cache import PreparedCache

    root = Path(synthesize_cache(tmp_path / "cache", n=600, sizes=(16, 32)))
    ev = train_evaluator(PreparedCache.open(root), size=32, steps=10, seed=0, batch=32, width=8, progress=False)
    ev_dir = ev.save_pretrained(tmp_path / "ev")
    bench = load_benchmark("fid_floor")
    cache = root if (root / "is_test.npy").is_file() else root / ".t2igan_cache"
    same = bench.fid_floor(cache, ev_dir, 32, 32, n=50, repeats=2)
    # "upsampling" 32 → 32 is the identity: the second bound is then the first, split for split
    assert same["real_low_upsampled_vs_real_bicubic"] == same["real_vs_real"]
    low = bench.fid_floor(cache, ev_dir, 16, 32, n=50, repeats=2)
    assert low["repeats"] == 2 and all(math.isfinite(v) for v in low.values())
    assert low["real_low_upsampled_vs_real_bilinear"] != low["real_vs_real"]
    assert bench.main([str(root), "--evaluator", str(ev_dir), "--low", "16", "--high", "64"]) == 2  # not cached
    with pytest.raises(SystemExit, match="need 2 × n"):
        bench.fid_floor(cache, ev_dir, 16, 32, n=10_000)
    with pytest.raises(SystemExit, match="evaluator reads 32 px, not --high 16"):
        bench.fid_floor(cache, ev_dir, 16, 16, n=50)


def test_fid_floor_scores_a_stage2_on_real_low_size_images(tiny_cache, tmp_path: Path, load_benchmark) -> None:
    import numpy as np

    from t2igan.apps.cli import main

    quiet = [
        "--set", "data.embeddings=attributes-onehot", "--set", "model.preset=tiny", "--set", "train.progress=false",
        "--set", "train.tensorboard=false", "--set", "train.steps=2", "--set", "train.batch_size=8",
        "--set", "train.sample_every=100", "--set", "train.ckpt_every=100",
    ]  # fmt: skip
    data = ["--data", str(tiny_cache.root)]
    s1, s2 = tmp_path / "s1", tmp_path / "s2"
    main(["train", "--model", "stackgan", "--stage", "1", *data, "--out", str(s1), *quiet, "--set", "data.size=16"])
    stage2 = ["--model", "stackgan", "--stage1", str(s1)]
    main(["train", *stage2, *data, "--out", str(s2), *quiet, "--set", "data.size=32"])
    ev = train_evaluator(tiny_cache, size=32, steps=2, seed=0, batch=16, width=8, progress=False)
    ev_dir = ev.save_pretrained(tmp_path / "ev")
    bench = load_benchmark("fid_floor")
    root = Path(tiny_cache.root)
    n = len(np.flatnonzero(np.load(root / "is_test.npy"))) // 2
    out = bench.fid_floor(root, ev_dir, 16, 32, n=n, repeats=2, stage2=s2)
    assert out["stage2"] == str(s2) and math.isfinite(out["stage2_on_real_low_vs_real"])
    again = bench.fid_floor(root, ev_dir, 16, 32, n=n, repeats=2, stage2=s2, grid=tmp_path / "g.png")
    from PIL import Image

    w, h = Image.open(tmp_path / "g.png").size
    assert 8 * 32 <= w < 8 * 40 and 3 * 32 <= h < 3 * 40 and again["grid"] == str(tmp_path / "g.png")
    before = (tmp_path / "g.png").read_bytes()
    with pytest.raises(SystemExit, match=r"g\.png: already exists; pass another --grid path, or --overwrite"):
        bench.fid_floor(root, ev_dir, 16, 32, n=n, repeats=1, stage2=s2, grid=tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes() == before  # the user's file is untouched
    bench.fid_floor(root, ev_dir, 16, 32, n=n, repeats=1, stage2=s2, grid=tmp_path / "g.png", overwrite=True)
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(T2IError):  # only a regular file is ever replaced
        bench.fid_floor(root, ev_dir, 16, 32, n=n, repeats=1, stage2=s2, grid=tmp_path / "dir.png", overwrite=True)
    assert (tmp_path / "dir.png").is_dir()
    with pytest.raises(SystemExit, match="--grid shows a Stage-II's refinements: pass --stage2"):
        bench.fid_floor(root, ev_dir, 16, 32, n=n, repeats=1, grid=tmp_path / "other.png")
    assert again["stage2_on_real_low_vs_real"] == out["stage2_on_real_low_vs_real"]  # CA at its mean: deterministic
    # the preset's Stage-II is residual: with its output conv at zero it must return the real images upsampled
    from t2igan.sampling import T2IPipeline

    pipe = T2IPipeline.from_pretrained(s2 / "pretrained")
    pipe.generator.stage2.to_image[0].weight.data.zero_()
    zeroed = pipe.save_pretrained(tmp_path / "zeroed")
    test = np.flatnonzero(np.load(root / "is_test.npy"))
    low = np.load(root / "images_16.npy")[test]
    refined = bench.stage2_on_real(Path(zeroed), root, low, test, 32)
    assert refined.shape == (len(test), 32, 32, 3) and refined.dtype == np.uint8
    up = bench.resize(low, 32, "bilinear").astype(int)
    assert np.abs(refined.astype(int) - up).mean() < 1.0  # PIL's and torch's bilinear differ by rounding only
    trained = bench.stage2_on_real(s2, root, low, test, 32)
    assert np.abs(trained.astype(int) - refined.astype(int)).mean() > np.abs(refined.astype(int) - up).mean()
    with pytest.raises(SystemExit, match="not a StackGAN Stage-II"):
        bench.fid_floor(root, ev_dir, 16, 32, n=n, repeats=1, stage2=s1)
    with pytest.raises(SystemExit, match="maps 16 → 32 px, not --low 16 → --high 16"):
        bench.stage2_on_real(s2, root, low, test, 16)
    with pytest.raises(SystemExit, match="no pretrained pipeline"):
        bench.stage2_on_real(tmp_path / "ev", root, low, test, 32)
    bare = tmp_path / "bare_cache"  # the same cache without the embeddings this Stage-II was trained on
    shutil.copytree(root, bare, ignore=shutil.ignore_patterns("embeddings*"))
    with pytest.raises(SystemExit, match="lacks the embeddings 'attributes-onehot'"):
        bench.stage2_on_real(s2, bare, low, test, 32)
