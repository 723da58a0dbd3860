"""`t2igan data show`: a PNG grid of dataset images with their captions under each row."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from t2igan.data.cache import PreparedCache, prepare_cache
from t2igan.utils.errors import T2IError
from t2igan.utils.images import make_grid, save_image
from t2igan.utils.seed import derive_seed


def show_grid(
    src: str | Path,
    out: str | Path | None = None,
    n: int = 16,
    nrow: int = 4,
    size: int | None = None,
    split: str = "all",
    seed: int = 0,
) -> Path:
    """Write ``n`` images of ``src`` (a cache or a dataset folder) as a grid; returns the PNG path."""
    src = Path(src)
    if (src / "meta.json").is_file():
        cache = PreparedCache.open(src)
    else:
        cache = PreparedCache.open(prepare_cache(src, sizes=(size or 64,), progress=True))
    size = size or max(cache.sizes)
    pool = {"train": cache.train_indices(), "test": cache.test_indices(), "all": np.arange(cache.n)}[split]
    if len(pool) == 0:
        raise T2IError(f"the {split} split is empty", path=src, hint="use --split all")
    rng = np.random.default_rng(derive_seed(seed, "data-show"))
    pick = np.sort(rng.choice(pool, size=min(n, len(pool)), replace=False))
    images = cache.images(size)[pick]
    nrow = max(1, min(nrow, len(pick)))
    captions = []
    for r in range(0, len(pick), nrow):
        row = pick[r : r + nrow]
        captions.append("  ".join(f"({k + 1}) {cache.captions[int(i)][0]}" for k, i in enumerate(row)))
    scale = max(1, -(-768 // (nrow * (size + 2))))  # wide enough for the captions
    grid = make_grid(images, nrow, row_captions=captions, scale=scale)
    if out is None:
        out = Path("show.png") if (src / "meta.json").is_file() else src / "show.png"  # never inside a cache
    return save_image(grid, out)
