"""Style transfer with the style encoder S (Reed et al. 2016, §4.4 and Figure 5).

    s ← S(x)            the query image's "style" (pose, background, everything the caption does not say)
    x̂ ← G(s, φ(t))      redrawn with the content of caption t

The grid follows the paper: one row per query image, the query in the first column, then one column per caption.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from t2igan.data.cache import PreparedCache, open_cache
from t2igan.models.style import StyleEncoder
from t2igan.sampling.pipeline import T2IPipeline, check_captions
from t2igan.training.export import INDEX_NAME, model_index, write_model_index
from t2igan.utils.errors import T2IError
from t2igan.utils.images import _font, make_grid
from t2igan.utils.io import atomic_write_json, read_json
from t2igan.utils.outputs import atomic_dir, json_says
from t2igan.utils.seed import derive_seed


@dataclass
class StyleTransferResult:
    """``images`` ``[Q, C, 3, H, W]`` in [-1, 1] (query q redrawn with caption c); ``styles`` ``[Q, z_dim]``."""

    queries: torch.Tensor
    images: torch.Tensor
    styles: torch.Tensor
    captions: list[str]

    def to_image(self, scale: int = 1) -> Image.Image:
        q, c = self.images.shape[:2]
        cells = torch.cat([self.queries[:, None], self.images], dim=1).reshape(q * (c + 1), *self.images.shape[2:])
        grid = make_grid(cells, nrow=c + 1, scale=scale, col_labels=["query", *[f"({i + 1})" for i in range(c)]])
        return add_legend(grid, [f"({i + 1}) {cap}" for i, cap in enumerate(self.captions)])


def add_legend(image: Image.Image, lines: Sequence[str], line_h: int = 13) -> Image.Image:
    """Write ``lines`` under ``image`` on a white band (widening the canvas for long lines)."""
    font = _font()
    width = max([image.width, *[int(font.getlength(s)) + 8 for s in lines]])
    canvas = Image.new("RGB", (width, image.height + line_h * len(lines) + 4), (255, 255, 255))
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for k, line in enumerate(lines):
        draw.text((4, image.height + 2 + k * line_h), line, fill=(0, 0, 0), font=font)
    return canvas


def style_transfer(
    pipe: T2IPipeline,
    queries: torch.Tensor,
    captions: Sequence[str],
    *,
    text_embeddings: torch.Tensor | None = None,
) -> StyleTransferResult:
    """Redraw each query image ``[Q, 3, H, W]`` (in [-1, 1], H = S's size) with each caption."""
    size = pipe.require_style_encoder().config.image_size
    if queries.dim() != 4 or queries.shape[1:] != (3, size, size):
        raise T2IError(f"query images must be [Q, 3, {size}, {size}], got {tuple(queries.shape)}")
    if text_embeddings is None:
        captions = check_captions(captions)
        emb = pipe.encode_prompt(captions)
    else:
        emb = torch.as_tensor(text_embeddings, dtype=torch.float32).to(pipe.device)
        captions = list(captions)
    q, c = queries.shape[0], emb.shape[0]
    styles = pipe.encode_style(queries)  # s ← S(x)
    z = styles.repeat_interleave(c, dim=0)  # query-major
    images = pipe.generate(z, emb.repeat(q, 1))[-1]  # x̂ ← G(s, φ(t))
    return StyleTransferResult(queries.cpu(), images.reshape(q, c, *images.shape[1:]), styles.cpu(), captions)


def save_style_encoder(pipe: T2IPipeline, encoder: StyleEncoder, metrics: dict[str, Any] | None = None) -> Path:
    """Write S into the pipeline's folder (``style_encoder/``) and list it in ``model_index.json``, atomically."""
    if pipe.path is None:
        raise T2IError("the pipeline was not loaded from a folder; use pipe.save_pretrained(dir)")
    folder = pipe.path / "style_encoder"
    with atomic_dir(
        folder, kind="style-encoder", is_own=json_says("config.json", "_class_name", "StyleEncoder")
    ) as tmp:
        encoder.save_pretrained(tmp)
        if metrics is not None:
            atomic_write_json(tmp / "metrics.json", metrics)
    index = read_json(pipe.path / INDEX_NAME)
    index["style_encoder"] = model_index(pipe.generator, style_encoder=encoder)["style_encoder"]
    write_model_index(pipe.path, index)
    pipe.style_encoder = encoder.eval()
    return folder


def training_caption_embeddings(
    pipe: T2IPipeline, data: str | Path | Any, *, max_captions: int = 4096, seed: int = 0, split: str = "train"
) -> torch.Tensor:
    """φ(t) for up to ``max_captions`` captions of a split ("train"/"test") of a prepared cache (fixed subset)."""
    cache = data if isinstance(data, PreparedCache) else open_cache(data, prepare=False)
    offsets = np.asarray(cache.caption_offsets)
    images = cache.train_indices() if split == "train" else cache.test_indices()
    flat = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in images] or [np.zeros(0, np.int64)])
    if flat.size == 0:
        raise T2IError(f"the cache has no {split} captions", path=cache.root)
    rng = np.random.default_rng(derive_seed(seed, "style-pool", split))
    chosen = np.sort(rng.choice(flat, size=min(max_captions, flat.size), replace=False))
    if pipe.text_encoder is None:
        key = pipe.text_info.get("key") or pipe.text_info.get("embeddings_key")
        if not key or not cache.has_embeddings(key):
            raise T2IError(
                "this model has no text encoder and its embeddings are not in this cache",
                path=cache.root,
                hint="use the cache the model was trained on",
            )
        return torch.from_numpy(np.asarray(cache.embeddings(key)[chosen], dtype=np.float32))
    captions = [cache.flat_captions[int(i)] for i in chosen]
    return torch.cat([pipe.encode_prompt(captions[i : i + 256]).cpu() for i in range(0, len(captions), 256)])
