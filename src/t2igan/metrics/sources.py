"""Where evaluated images come from: run folders, their pretrained pipeline, their data (``run_data_path``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from t2igan.data.cache import PreparedCache
from t2igan.metrics.context import GenerateFn
from t2igan.utils.errors import T2IError
from t2igan.utils.io import sha256_file


def run_data_path(run_dir: str | Path) -> Path | None:
    """The cache a run trained on (``data.cache`` in ``<run>/config.yaml``), if recorded."""
    cfg = Path(run_dir) / "config.yaml"
    if not cfg.exists():
        return None
    data = (yaml.safe_load(cfg.read_text()) or {}).get("data") or {}
    cache = data.get("cache")
    if not cache:
        return None
    p = Path(cache)
    return p if p.is_absolute() or p.exists() else (Path(run_dir) / p)


def pipeline_generate(
    run_or_pretrained: Any, cache: PreparedCache | None = None, stage: int | None = None
) -> tuple[GenerateFn, dict[str, Any]]:
    """``generate(captions, seeds, caption_ids=None) -> [-1,1] tensor`` from a run folder, its pretrained folder or a
    loaded ``T2IPipeline``, and a snapshot record naming what produced the images.

    ``stage``: the images of that stage / branch (1 = the coarsest) of a multi-stage generator (StackGAN,
    StackGAN++) instead of the finest; the snapshot records it.

    Models trained on precomputed embeddings (no text encoder) take the caption's embedding from ``cache`` (the key
    recorded in ``text_encoder/precomputed.json``), by flat caption index when given, else by caption text.
    Unconditional models ignore the captions (they only label the images).
    """
    from t2igan.sampling import T2IPipeline

    if isinstance(run_or_pretrained, T2IPipeline):
        pipe = run_or_pretrained
        folder = pre = Path(pipe.path or ".")
    else:
        folder = Path(run_or_pretrained)
        pre = folder / "pretrained" if (folder / "pretrained").is_dir() else folder
        if not (pre / "model_index.json").exists():
            raise T2IError(
                "no pretrained pipeline here (model_index.json)",
                path=pre,
                hint="train a model first (t2igan train …); runs export RUN/pretrained/",
            )
        pipe = T2IPipeline.from_pretrained(pre)
    table, by_text = None, {}
    if pipe.text_encoder is None and pipe.text_dim > 0:  # unconditional models (text_dim 0) need no text
        key = pipe.text_info.get("key")
        if cache is None or key is None or not cache.has_embeddings(key):
            raise T2IError(
                f"this model was trained on precomputed embeddings ({key}) that the data cache lacks",
                path=pre,
                hint="evaluate with --data pointing at the cache the run trained on",
            )
        table = cache.embeddings(key)
        for j, text in enumerate(cache.flat_captions):
            by_text.setdefault(text, j)

    n_stages = _stage_count(pipe)
    if stage is not None and not 1 <= stage <= n_stages:
        raise T2IError(
            f"stage {stage} does not exist: this generator has {n_stages} stage(s)",
            path=pre,
            hint=f"pass a stage from 1 to {n_stages}",
        )

    def pick(out: Any) -> torch.Tensor:
        return out.images if stage is None or out.stages is None else out.stages[stage - 1]

    def generate(captions: list[str], seeds: list[int], caption_ids: list[int] | None = None) -> torch.Tensor:
        if table is None:
            return pick(pipe(captions, num_images_per_prompt=1, seeds=seeds, output_type="pt", denormalize=False))
        if caption_ids is None:
            missing = [c for c in captions if c not in by_text]
            if missing:
                raise T2IError(
                    f"caption not in the dataset: {missing[0]!r}",
                    hint="this model has no text encoder: it can only draw the dataset's captions",
                )
            caption_ids = [by_text[c] for c in captions]
        emb = torch.from_numpy(np.asarray(table[np.asarray(caption_ids)], dtype=np.float32))
        return pick(
            pipe(
                captions, num_images_per_prompt=1, seeds=seeds, output_type="pt", text_embeddings=emb, denormalize=False
            )
        )

    generate.accepts_caption_ids = True  # type: ignore[attr-defined]
    weights = pre / "generator" / "model.safetensors"
    snapshot = {"name": str(pre), "generator_sha256": sha256_file(weights)[:16] if weights.exists() else None}
    index = json.loads((pre / "model_index.json").read_text()) if (pre / "model_index.json").exists() else {}
    snapshot.update({k: index[k] for k in ("model", "variant", "step") if k in index})
    if stage is not None:
        snapshot["stage"] = stage
    ckpts = sorted((folder / "checkpoints").glob("step_*")) if (folder / "checkpoints").is_dir() else []
    if ckpts:
        snapshot["latest_checkpoint"] = ckpts[-1].name
    return generate, snapshot


def _stage_count(pipe: Any) -> int:
    """How many stages / branches the pipeline's generator draws (1 for single-stage families)."""
    return len(getattr(pipe.generator, "image_sizes", None) or [0])


def discriminator_features(run_dir: str | Path) -> Any:
    """``fn(uint8 images) -> [N, F]`` from the discriminator of the run's newest checkpoint (its conv features before
    the text is joined, flattened), or None when the run has none (the D-space neighbours are then skipped)."""
    try:
        from t2igan.models.reed import ReedDiscriminator
        from t2igan.training.trainer import load_run_system

        system = load_run_system(run_dir)
    except Exception:  # optional diagnostic: a run without checkpoints, or a family without a single D
        return None
    disc = getattr(system, "D", None)
    if not isinstance(disc, ReedDiscriminator):  # the families whose D has one feature space (Reed's)
        return None
    disc.eval()
    size = disc.config.image_size

    @torch.no_grad()
    def features(images: np.ndarray) -> np.ndarray:
        from t2igan.metrics.context import resize_uint8

        imgs = resize_uint8(images, size)
        x = torch.from_numpy(np.ascontiguousarray(imgs)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return disc.features(x).flatten(1).float().numpy()

    return features
