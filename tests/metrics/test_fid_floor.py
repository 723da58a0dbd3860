"""benchmarks/fid_floor.py: the two bounds on what a super-resolving stage can gain in FID_eval."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from t2igan.data.synthetic import synthesize_cache
from t2igan.metrics.evaluator import train_evaluator


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
