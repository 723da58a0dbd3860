"""Image helpers written with numpy/Pillow (no torchvision): tensor ↔ uint8, grids with captions."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from t2igan.utils.errors import T2IError
from t2igan.utils.io import atomic_path


def to_uint8(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """[-1, 1] float images (N,3,H,W tensor or N,H,W,3 array) → uint8 N,H,W,3."""
    if isinstance(images, torch.Tensor):
        x = images.detach().float().cpu()
        if x.dim() == 3:
            x = x[None]
        x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        return x
    x = np.asarray(images)
    if x.dtype == np.uint8:
        return x if x.ndim == 4 else x[None]
    x = np.clip((x + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    return x if x.ndim == 4 else x[None]


def to_pil(images: torch.Tensor | np.ndarray) -> list[Image.Image]:
    return [Image.fromarray(a) for a in to_uint8(images)]


def _font(size: int = 11) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def make_grid(
    images: torch.Tensor | np.ndarray | Sequence[Image.Image],
    nrow: int,
    *,
    row_captions: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    pad: int = 2,
    scale: int = 1,
    caption_width: int | None = None,
) -> Image.Image:
    """Tile images row-major, ``nrow`` images per row; optional caption text under each row.

    ``row_captions[i]`` is written (wrapped) under row ``i``; ``col_labels`` above the columns.
    """
    if isinstance(images, (torch.Tensor, np.ndarray)):
        pil = to_pil(images)
    else:
        pil = [im.convert("RGB") for im in images]
    if not pil:
        raise ValueError("make_grid needs at least one image")
    if scale != 1:
        pil = [im.resize((im.width * scale, im.height * scale), Image.NEAREST) for im in pil]
    w, h = pil[0].size
    n = len(pil)
    ncol = max(1, min(nrow, n))
    nrows = (n + ncol - 1) // ncol
    font = _font()
    line_h = 13
    chars = max(10, (caption_width or (ncol * (w + pad))) // 6)
    wrapped = [textwrap.wrap(c, chars)[:3] if c else [] for c in (row_captions or [])]
    cap_h = [(len(wrapped[r]) * line_h + 4) if r < len(wrapped) and wrapped[r] else 0 for r in range(nrows)]
    top = line_h + 4 if col_labels else 0
    width = ncol * (w + pad) + pad
    height = top + sum(h + pad + cap_h[r] for r in range(nrows)) + pad
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    if col_labels:
        for c, label in enumerate(col_labels[:ncol]):
            draw.text((pad + c * (w + pad), 2), str(label), fill=(0, 0, 0), font=font)
    y = top + pad
    for r in range(nrows):
        for c in range(ncol):
            i = r * ncol + c
            if i < n:
                canvas.paste(pil[i], (pad + c * (w + pad), y))
        y += h + pad
        if r < len(wrapped):
            for k, line in enumerate(wrapped[r]):
                draw.text((pad, y + k * line_h), line, fill=(0, 0, 0), font=font)
        y += cap_h[r]
    return canvas


IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
                 ".tiff": "TIFF", ".gif": "GIF"}  # fmt: skip


def image_format(path: str | Path) -> str:
    """The Pillow format a file name asks for (from its suffix), or a one-line `T2IError` before any work is done."""
    path = Path(path)
    fmt = IMAGE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise T2IError(
            f"cannot write an image with suffix {path.suffix or '(none)'!r}",
            path=path,
            hint=f"name the output {path.stem or 'grid'}.png (or {', '.join(sorted(set(IMAGE_FORMATS)))})",
        )
    return fmt


def save_image(image: Image.Image, path: str | Path) -> Path:
    """Save a PIL image atomically (format from the suffix, see `image_format`)."""
    path = Path(path)
    fmt = image_format(path)
    with atomic_path(path, suffix=path.suffix) as tmp:
        image.save(tmp, format=fmt)
    return path
