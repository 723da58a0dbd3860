"""Stage-by-stage views of multi-stage generators (StackGAN, StackGAN++): the paper's Stage-I / Stage-II figure.

    from t2igan.sampling.stages import stage_grid
    img = stage_grid("runs/sg2", ["this flower has pink petals"], seeds=[0, 1, 2, 3], ca_mean=True)

    t2igan sample runs/sg2 "this flower has pink petals" --seeds 0-3 --stages --out stages.png   # the same, CLI

Each caption gets one row; for each seed the stages (coarse → fine) stand side by side, all upsampled (nearest) to
the finest size, for the same caption, z and CA noise. ``ca_mean=True`` turns CA sampling off (ĉ = μ).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from t2igan.sampling.ca_noise import ca_noise
from t2igan.utils.errors import T2IError
from t2igan.utils.images import make_grid

__all__ = ["eval_caption_embeddings", "eval_real_images", "load_stage_generator", "stage_grid", "stage_images"]


def load_stage_generator(path: str | Path) -> torch.nn.Module:
    """The exported generator of a run / pretrained folder (eval mode)."""
    from t2igan.training.export import load_generator

    p = Path(path)
    return load_generator(p / "pretrained" if (p / "pretrained").is_dir() else p)


def _run_config(path: Path) -> dict:
    import yaml

    for cand in (path / "config.yaml", path.parent / "config.yaml"):
        if cand.is_file():
            return yaml.safe_load(cand.read_text()) or {}
    raise T2IError("no config.yaml beside this model", path=path, hint="pass a run folder made by `t2igan train`")


def _pick(run_dir: str | Path, n: int, seed: int, split: str) -> tuple[Any, str, np.ndarray]:
    from t2igan.data.cache import PreparedCache

    cfg = _run_config(Path(run_dir))
    data = cfg.get("data", {})
    if not data.get("cache"):
        raise T2IError("the run's config.yaml names no data.cache", path=run_dir)
    cache = PreparedCache.open(data["cache"])
    keys = cache.embedding_keys()
    key = data.get("embeddings") or (keys[0] if keys else None)
    if key is None:
        raise T2IError("the run's cache holds no embeddings", path=data["cache"])
    idx = cache.test_indices() if split == "test" else cache.train_indices()
    if len(idx) == 0:
        idx = np.arange(cache.n)
    return cache, key, np.random.default_rng(seed).permutation(idx)[:n]


def eval_caption_embeddings(
    run_dir: str | Path, n: int = 64, seed: int = 0, split: str = "test"
) -> tuple[torch.Tensor, list[str]]:
    """Embeddings ``[n, D]`` and texts of the first caption of ``n`` random ``split`` images of the run's cache."""
    cache, key, pick = _pick(run_dir, n, seed, split)
    flat = cache.caption_offsets[pick]
    emb = torch.from_numpy(np.asarray(cache.embeddings(key)[flat], dtype=np.float32))
    return emb, [str(cache.flat_captions[int(i)]) for i in flat]


def eval_real_images(run_dir: str | Path, size: int, n: int = 64, seed: int = 0, split: str = "test") -> torch.Tensor:
    """The real images ``[n, 3, size, size]`` in [-1, 1] behind `eval_caption_embeddings` (same arguments)."""
    cache, _, pick = _pick(run_dir, n, seed, split)
    x = torch.from_numpy(np.ascontiguousarray(cache.images(size)[np.sort(pick)]))
    return x.permute(0, 3, 1, 2).float() / 127.5 - 1.0


@torch.inference_mode()
def stage_images(
    generator: torch.nn.Module, text_emb: torch.Tensor, seeds: Sequence[int], *, ca_mean: bool = False
) -> list[torch.Tensor]:
    """Every stage for each (caption, seed): list over stages of ``[P·S, 3, H_s, W_s]`` (caption-major)."""
    from t2igan.utils.seed import torch_generator

    z_dim = int(generator.z_dim)
    z = torch.stack([torch.randn(z_dim, generator=torch_generator(int(s))) for s in seeds])
    p = text_emb.shape[0]
    z_all = z.repeat(p, 1)
    emb = text_emb.float().repeat_interleave(len(seeds), 0)
    if hasattr(generator, "use_ca_mean"):
        generator.use_ca_mean = ca_mean
    generator.eval()
    noise = ca_noise(generator, len(z_all), seeds=[int(s) for s in seeds] * p)  # per seed, like z
    text = emb if getattr(generator, "text_dim", 1) else None
    out = generator(z_all, text) if noise is None else generator(z_all, text, eps=noise)
    return [x.float().clamp(-1, 1) for x in (out if isinstance(out, (list, tuple)) else [out])]


def _stage_names(generator: torch.nn.Module, sizes: list[int]) -> list[str]:
    """Column names: StackGAN's stages (Stage-I, Stage-II), StackGAN++'s branches by size (64px, 128px)."""
    from t2igan.models.stackganpp import StackGanPPGenerator

    if len(sizes) == 1:
        return [""]
    if isinstance(generator, StackGanPPGenerator):
        return [f"{n}px" for n in sizes]
    return ["Stage-" + r for r in ("I", "II", "III", "IV")[: len(sizes)]]


def stage_grid(
    model: str | Path | torch.nn.Module,
    captions: Sequence[str],
    seeds: Sequence[int] = (0, 1, 2, 3),
    *,
    text_embeddings: torch.Tensor | None = None,
    ca_mean: bool = False,
    scale: int = 1,
) -> Image.Image:
    """A grid with one row per caption and, per seed, its stages side by side (upsampled to the finest size)."""
    if isinstance(model, (str, Path)):
        generator = load_stage_generator(model)
        if text_embeddings is None:
            from t2igan.sampling import T2IPipeline

            text_embeddings = T2IPipeline.from_pretrained(model).encode_prompt(list(captions))
    else:
        generator = model
    if text_embeddings is None:
        raise T2IError("stage_grid needs text_embeddings when given a module")
    stages = stage_images(generator, text_embeddings, seeds, ca_mean=ca_mean)
    size = stages[-1].shape[-1]
    up = [F.interpolate(s, size=(size, size), mode="nearest") if s.shape[-1] != size else s for s in stages]
    n_stage = len(up)
    tiles = torch.stack(up, dim=1).flatten(0, 1)  # per image: stage 1, stage 2, …
    names = _stage_names(generator, [s.shape[-1] for s in stages])
    labels = [f"{names[k]} s{s}".strip() for s in seeds for k in range(n_stage)]
    return make_grid(tiles, len(seeds) * n_stage, row_captions=list(captions), col_labels=labels, scale=scale)
