"""A small "own data" example: coloured circles, squares and triangles with captions, in imagefolder layout.

    t2igan data shapes --out data/shapes --n 300
    t2igan train --data data/shapes --out runs/shapes

Writes ``images/shape_XXXXX.png`` and ``metadata.jsonl`` (``{"file_name", "text": [4 captions], "label"}``), the
Hugging Face imagefolder convention `t2igan data prepare` reads. Each image is one shape of one colour (6 colours ×
3 shapes; the ``label`` is ``<colour>-<shape>``, 18 classes), small or large, anywhere in the frame, on a light
background of varying tone. Captions name the colour and shape, and sometimes the size and background. Image ``i``
depends only on ``(seed, i)``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from t2igan.utils.io import atomic_write_text
from t2igan.utils.outputs import atomic_dir
from t2igan.utils.seed import derive_seed

SHAPES_KIND = "shapes"  # the folder's ownership marker (utils.outputs)
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 205, 30),
    "purple": (140, 50, 180),
    "orange": (245, 130, 20),
}
SHAPES = ("circle", "square", "triangle")
BACKGROUNDS = {
    "white": (250, 250, 250),
    "grey": (200, 200, 200),
    "beige": (235, 220, 190),
    "pale blue": (205, 225, 245),
}
TEMPLATES = (
    "a {size} {colour} {shape}",
    "a {colour} {shape} on a {bg} background",
    "this picture shows a {size} {shape} coloured {colour}",
    "a {shape} that is {colour}",
    "one {colour} {shape}",
)
SUPERSAMPLE = 4


def render_shape(i: int, size: int = 64, seed: int = 0) -> tuple[Image.Image, list[str], str]:
    """Image ``i``: (the image, its captions, its label)."""
    rng = np.random.default_rng(derive_seed(seed, "shapes", i))
    colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    bg = list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    large = bool(rng.random() < 0.5)
    s = size * SUPERSAMPLE
    tone = np.clip(np.array(BACKGROUNDS[bg]) + rng.integers(-12, 13, 3), 0, 255)
    im = Image.new("RGB", (s, s), tuple(int(v) for v in tone))
    r = s * (rng.uniform(0.28, 0.38) if large else rng.uniform(0.14, 0.2))
    cx, cy = (rng.uniform(r + s * 0.04, s - r - s * 0.04) for _ in range(2))
    jitter = rng.integers(-15, 16, 3)
    fill = tuple(int(v) for v in np.clip(np.array(COLOURS[colour]) + jitter, 0, 255))
    draw = ImageDraw.Draw(im)
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "square":
        draw.regular_polygon((cx, cy, r * 1.15), 4, rotation=float(rng.uniform(0, 90)), fill=fill)
    else:
        draw.regular_polygon((cx, cy, r * 1.2), 3, rotation=float(rng.uniform(0, 120)), fill=fill)
    words = {"size": "large" if large else "small", "colour": colour, "shape": shape, "bg": bg}
    order = rng.permutation(len(TEMPLATES))[:4]
    captions = [re.sub(r"\ba (?=[aeiou])", "an ", TEMPLATES[k].format(**words)) for k in sorted(order)]
    return im.resize((size, size), Image.LANCZOS), captions, f"{colour}-{shape}"


def write_shapes_dataset(
    out: str | Path, n: int = 300, size: int = 64, seed: int = 0, *, overwrite: bool = False
) -> Path:
    """Write ``n`` shapes under ``out`` (atomically; see the module docstring) and return ``out``. An existing ``out``
    is replaced only if it is an earlier shapes folder, or empty (or with ``overwrite``)."""
    out = Path(out)
    rows = []
    with atomic_dir(out, kind=SHAPES_KIND, overwrite=overwrite) as tmp:
        (tmp / "images").mkdir()
        for i in range(n):
            im, captions, label = render_shape(i, size, seed)
            name = f"images/shape_{i + 1:05d}.png"
            im.save(tmp / name)
            rows.append(json.dumps({"file_name": name, "text": captions, "label": label}))
        atomic_write_text(tmp / "metadata.jsonl", "\n".join(rows) + "\n")
    return out
