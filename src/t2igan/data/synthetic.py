"""Synthetic flowers: the embedded default dataset (procedural, deterministic, no download).

A flower is a ring of ``count`` petals of one ``shape`` and ``petal_colour`` around a centre disc (stamen/pistil) of
``centre_colour``. These four attributes define a flower's class (about 102 classes, like Oxford-102) and are what the
captions describe. *Style* factors — background tone and texture, position, rotation, scale, lighting, slight colour
jitter — vary per image, are never named in captions, and are what a generator's noise z must model.

The renderer is vectorised over a whole batch in numpy and antialiased analytically (coverage = clip(0.5 − signed
distance in pixels)), so it renders at any size (16 … 256) and >500 images/s at 64×64 on one core.

Image ``i`` of a dataset with seed ``s`` depends only on ``(s, i)`` (and its class, fixed by ``s`` and ``n``), never on
the batch it was rendered in.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from t2igan.data.synthetic_captions import caption_attributes, make_captions
from t2igan.utils.seed import derive_seed

# Attribute name → values (index order is the one stored in attributes.json / the cache).
ATTRIBUTES: dict[str, list[str]] = {
    "petal_colour": ["red", "orange", "yellow", "white", "pink", "purple", "blue", "magenta"],
    "centre_colour": ["yellow", "orange", "brown", "black", "white", "green"],
    "petal_shape": ["round", "pointed", "thin"],
    "petal_count": ["3", "5", "8", "12"],
}
ATTRIBUTE_NAMES: list[str] = list(ATTRIBUTES)

PETAL_RGB = (
    np.array(
        [
            [215, 30, 35],
            [245, 125, 20],
            [248, 215, 40],
            [242, 240, 232],
            [248, 150, 190],
            [120, 45, 160],
            [45, 85, 215],
            [205, 25, 150],
        ],
        dtype=np.float32,
    )
    / 255.0
)
CENTRE_RGB = (
    np.array(
        [[250, 205, 25], [235, 110, 15], [115, 65, 25], [28, 22, 22], [240, 240, 228], [95, 175, 45]], dtype=np.float32
    )
    / 255.0
)
BACKGROUND_RGB = (
    np.array(
        [
            [40, 80, 35],
            [85, 130, 60],
            [110, 115, 60],
            [95, 70, 45],
            [120, 122, 115],
            [150, 170, 190],
            [28, 34, 28],
            [185, 172, 140],
        ],
        dtype=np.float32,
    )
    / 255.0
)
COUNTS = np.array([3, 5, 8, 12])
# Style factors that captions never name (what z should model), stored per image in attributes.json and the cache:
# position, scale, rotation, background tone, lighting direction/strength and brightness.
STYLE_FACTORS = ("cx", "cy", "radius", "rotation", "bg", "light_angle", "light_amp", "brightness")


def style_columns(style: dict[str, np.ndarray]) -> np.ndarray:
    """float32 ``[B, len(STYLE_FACTORS)]`` from `SyntheticFlowers.sample_style`'s output."""
    return np.stack([np.asarray(style[k], dtype=np.float32) for k in STYLE_FACTORS], axis=1)


@dataclass
class SyntheticFlowers:
    """Classes, split, captions and renderer of the synthetic-flowers dataset for one ``seed``.

    ``class_attributes[c]`` holds the attribute indices of class ``c`` (order of `ATTRIBUTE_NAMES`); classes
    ``test_classes`` are held out (zero-shot: unseen combinations of seen attribute values).
    """

    seed: int = 0
    n_classes: int = 102
    n_test_classes: int = 20
    class_attributes: np.ndarray = field(init=False)
    test_classes: list[int] = field(init=False)

    def __post_init__(self) -> None:
        combos = np.array(list(itertools.product(*(range(len(v)) for v in ATTRIBUTES.values()))), dtype=np.int64)
        if not 2 <= self.n_classes <= len(combos) or not 1 <= self.n_test_classes < self.n_classes:
            raise ValueError(f"need 2 ≤ n_classes ≤ {len(combos)} and 1 ≤ n_test_classes < n_classes")
        for attempt in range(1000):
            rng = np.random.default_rng(derive_seed(self.seed, "synthetic-classes", attempt))
            attrs = combos[rng.choice(len(combos), self.n_classes, replace=False)]
            test = sorted(int(c) for c in rng.choice(self.n_classes, self.n_test_classes, replace=False))
            train = np.setdiff1d(np.arange(self.n_classes), test)
            # Every attribute value must be seen in training so that test classes are new *combinations*.
            if all(len(np.unique(attrs[train, a])) == len(v) for a, v in enumerate(ATTRIBUTES.values())):
                break
        else:  # pragma: no cover - only for absurd n_classes
            raise ValueError("could not find a split where every attribute value occurs in a train class")
        self.class_attributes = attrs
        self.test_classes = test

    # --- classes and images -------------------------------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        return [f"class_{c + 1:05d}" for c in range(self.n_classes)]

    @property
    def trainval_classes(self) -> list[int]:
        return [c for c in range(self.n_classes) if c not in set(self.test_classes)]

    def class_ids(self, n: int) -> np.ndarray:
        """Class of each of ``n`` images: classes in an order that interleaves train and test classes, cycled, so
        even a tiny ``n`` covers both splits and, for n ≥ n_classes, every class."""
        test = set(self.test_classes)
        tr = [c for c in range(self.n_classes) if c not in test]
        te = list(self.test_classes)
        order, ti = [], 0
        for k, c in enumerate(tr):
            order.append(c)
            if ti < len(te) and (k + 1) * len(te) >= (ti + 1) * len(tr) - len(tr) // 2:
                order.append(te[ti])
                ti += 1
        order.extend(te[ti:])
        return np.array(order, dtype=np.int64)[np.arange(n) % self.n_classes]

    def describe_class(self, c: int) -> str:
        p, ce, s, k = (ATTRIBUTES[a][int(i)] for a, i in zip(ATTRIBUTE_NAMES, self.class_attributes[c], strict=False))
        return f"{k} {s} {p} petals, {ce} centre"

    def captions(self, index: int, class_id: int, k: int = 10) -> list[str]:
        rng = np.random.default_rng(derive_seed(self.seed, "synthetic-captions", index))
        vals = [ATTRIBUTES[a][int(i)] for a, i in zip(ATTRIBUTE_NAMES, self.class_attributes[class_id], strict=False)]
        return make_captions(rng, *vals, k=k)

    def sample_style(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """Per-image style factors; image ``i`` always gets the same ones (its own generator)."""
        keys = [
            "cx",
            "cy",
            "radius",
            "rotation",
            "bg",
            "bg_tone",
            "texture",
            "light_angle",
            "light_amp",
            "brightness",
            "jitter_r",
            "jitter_g",
            "jitter_b",
            "centre_frac",
        ]
        rows = []
        for i in np.asarray(indices).tolist():
            r = np.random.default_rng(derive_seed(self.seed, "synthetic-style", int(i)))
            rows.append(
                [
                    r.uniform(-0.07, 0.07),
                    r.uniform(-0.07, 0.07),
                    r.uniform(0.40, 0.48),
                    r.uniform(0, 2 * np.pi),
                    r.integers(len(BACKGROUND_RGB)),
                    r.uniform(0.75, 1.2),
                    r.uniform(0.0, 1.0),
                    r.uniform(0, 2 * np.pi),
                    r.uniform(0.0, 0.35),
                    r.uniform(0.88, 1.08),
                    *r.normal(0.0, 0.04, 3),
                    r.uniform(0.31, 0.37),
                ]
            )
        arr = np.asarray(rows, dtype=np.float64).reshape(-1, len(keys))
        out = {k: arr[:, j].astype(np.float32) for j, k in enumerate(keys)}
        out["bg"] = arr[:, 4].astype(np.int64)
        # Noise grids for the background texture (coarse blotches + fine grain).
        out["noise_coarse"] = (
            np.stack(
                [
                    np.random.default_rng(derive_seed(self.seed, "synthetic-noise", int(i))).standard_normal((2, 6, 6))
                    for i in np.asarray(indices).tolist()
                ]
            ).astype(np.float32)
            if len(rows)
            else np.zeros((0, 2, 6, 6))
        )
        return out

    def render(self, indices: np.ndarray, class_ids: np.ndarray, size: int = 64) -> np.ndarray:
        """uint8 images ``[B, size, size, 3]`` of images ``indices`` with classes ``class_ids``."""
        indices = np.asarray(indices, dtype=np.int64)
        attrs = self.class_attributes[np.asarray(class_ids, dtype=np.int64)]
        return render_flowers(attrs, self.sample_style(indices), size)


# --- renderer ---------------------------------------------------------------------------------------------------
def _upsample_matrix(g: int, size: int) -> np.ndarray:
    """[size, g] bilinear interpolation weights from a g-point grid to ``size`` pixels."""
    pos = (np.arange(size) + 0.5) / size * (g - 1)
    lo = np.clip(np.floor(pos).astype(int), 0, g - 2)
    w = pos - lo
    m = np.zeros((size, g), dtype=np.float32)
    m[np.arange(size), lo] = 1 - w
    m[np.arange(size), lo + 1] += w
    return m


def _petal_distance(
    u: np.ndarray, v: np.ndarray, shape: np.ndarray, half_w: np.ndarray, u0: np.ndarray, length: np.ndarray
) -> np.ndarray:
    """Signed distance (pixels, negative inside) to a petal lying along +u from ``u0`` to ``u0 + length``."""
    t = np.clip((u - u0) / length, 0.0, 1.0)
    ellipse = np.sqrt(np.maximum(t * (1.0 - t), 0.0)) * 2.0  # 0 at ends, 1 in the middle
    pointed = 2.6 * np.sqrt(t) * (1.0 - t)  # round base, sharp tip
    profile = np.where(shape == 1, pointed, ellipse)
    d_side = np.abs(v) - half_w * profile
    d_end = np.maximum(u0 - u, u - (u0 + length))
    return np.maximum(d_side, d_end)


def render_flowers(attrs: np.ndarray, style: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Render a batch: ``attrs [B, 4]`` attribute indices, ``style`` from `SyntheticFlowers.sample_style`."""
    b = len(attrs)
    if b == 0:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    f32 = np.float32
    col = lambda x: np.asarray(x, dtype=f32).reshape(b, 1, 1)  # noqa: E731 - broadcast helper
    s = f32(size)
    coords = np.arange(size, dtype=f32) + 0.5
    radius = col(style["radius"]) * s
    cx = col(0.5 + style["cx"]) * s
    cy = col(0.5 + style["cy"]) * s
    x = coords[None, None, :] - cx  # [B,1,S]
    y = coords[None, :, None] - cy  # [B,S,1]
    r = np.sqrt(x * x + y * y)  # [B,S,S]
    phi = np.arctan2(y, x)

    petal_c, centre_c, shape, count_i = (attrs[:, j] for j in range(4))
    k = col(COUNTS[count_i])
    shp = col(shape)
    # Petal geometry in pixels: base hidden under the disc, tip at the flower's radius.
    u0 = 0.12 * radius
    length = np.where(shp == 0, 0.86, 0.88) * radius
    sector = np.sin(np.pi / k)
    half_round = np.minimum(0.95 * 0.55 * sector, 0.40) * radius
    half_w = np.where(shp == 2, 0.085 * radius, np.where(shp == 1, 0.9 * half_round, half_round))

    a = (phi - col(style["rotation"])) * (k / f32(2 * np.pi))
    frac = a - np.floor(a)  # position within the sector, [0, 1)
    step = f32(2 * np.pi) / k
    dist = None
    rel_best = delta_best = None
    for off in (0.0, 1.0):  # this petal and the next one
        delta = (frac - off) * step
        u = r * np.cos(delta)
        v = r * np.sin(delta)
        d = _petal_distance(u, v, shp, half_w, u0, length)
        rel = np.abs(v) / np.maximum(half_w, 1e-3)  # 0 on the midline → ~1 at the edge
        if dist is None:
            dist, rel_best, delta_best = d, rel, delta
        else:
            closer = d < dist
            dist = np.where(closer, d, dist)
            rel_best = np.where(closer, rel, rel_best)
            delta_best = np.where(closer, delta, delta_best)
    petal_alpha = np.clip(0.5 - dist, 0.0, 1.0)
    # Shading: darker towards the petal edges and base, so neighbouring petals stay countable.
    t_rad = np.clip(r / radius, 0.0, 1.0)
    petal_shade = (1.0 - 0.30 * np.clip(rel_best, 0, 1) ** 2) * (0.78 + 0.22 * t_rad)
    # Fine detail that appears with resolution (what a 64 → 256 stage adds): a darker midrib and veins fanning out
    # from the centre, faded out where they would be finer than ~2 pixels (no aliasing at 16–64 px).
    midrib = np.exp(-((rel_best * half_w / np.maximum(0.02 * radius, 0.6)) ** 2))
    vein_angle = half_w / (3.0 * 0.6 * radius)  # ~3 veins per half petal at 60 % of the radius
    vein_amp = np.clip((r * vein_angle - 2.0) / 4.0, 0.0, 1.0)
    veins = vein_amp * (0.5 + 0.5 * np.cos(f32(2 * np.pi) * delta_best / vein_angle))
    petal_shade = petal_shade * (1.0 - 0.16 * midrib) * (1.0 - 0.12 * veins)

    centre_r = col(style["centre_frac"]) * radius
    disc_alpha = np.clip(0.5 - (r - centre_r), 0.0, 1.0)
    rc = r / np.maximum(centre_r, 1e-3)
    anthers = (0.5 + 0.5 * np.cos(14.0 * phi)) ** 4 * np.exp(-(((rc - 0.72) / 0.16) ** 2))
    disc_shade = (0.80 + 0.30 * (1.0 - np.clip(rc, 0, 1) ** 2)) * (1.0 - 0.30 * anthers)

    # Background: tone × (1 + coarse blotches + fine grain), upsampled from small noise grids.
    m6 = _upsample_matrix(6, size)
    noise = np.einsum("hi,bcij,wj->bchw", m6, style["noise_coarse"].astype(f32), m6, optimize=True)
    tex = col(style["texture"])
    bg_light = 1.0 + 0.22 * tex * noise[:, 0] + 0.10 * tex * np.sign(noise[:, 1]) * noise[:, 1] ** 2
    bg_rgb = BACKGROUND_RGB[style["bg"]] * style["bg_tone"][:, None]  # [B,3]

    jitter = np.stack([style["jitter_r"], style["jitter_g"], style["jitter_b"]], 1)
    p_rgb = np.clip(PETAL_RGB[petal_c] + jitter, 0, 1)
    c_rgb = np.clip(CENTRE_RGB[centre_c] + 0.5 * jitter, 0, 1)

    ang = style["light_angle"]
    light = 1.0 + col(style["light_amp"]) * (x * col(np.cos(ang)) + y * col(np.sin(ang))) / s * 2.0
    light = light * col(style["brightness"])

    out = np.empty((b, size, size, 3), dtype=f32)
    for ch in range(3):
        img = col(bg_rgb[:, ch]) * bg_light
        img = img + petal_alpha * (col(p_rgb[:, ch]) * petal_shade - img)
        img = img + disc_alpha * (col(c_rgb[:, ch]) * disc_shade - img)
        out[..., ch] = img * light
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def preview_grid(out: str | Path, seed: int = 0, size: int = 64, n: int = 24, nrow: int = 6) -> Path:
    """Write a PNG grid of the first ``n`` synthetic flowers, numbered captions under each row."""
    from t2igan.utils.images import make_grid, save_image

    flowers = SyntheticFlowers(seed=seed)
    cls = flowers.class_ids(n)
    imgs = flowers.render(np.arange(n), cls, size)
    caps = [
        "  ".join(f"({i - r + 1}) {flowers.captions(i, int(cls[i]))[0]}" for i in range(r, min(r + nrow, n)))
        for r in range(0, n, nrow)
    ]
    scale = max(1, -(-768 // (min(nrow, n) * (size + 2))))  # wide enough for the captions
    return save_image(make_grid(imgs, nrow, row_captions=caps, scale=scale), out)


if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ imports them lazily
    from t2igan.data.synthetic_write import SYNTHETIC_VERSION, synthesize_cache, write_synthetic_dataset  # noqa: F401

_WRITERS = ("SYNTHETIC_VERSION", "synthesize_cache", "write_synthetic_dataset")


def __getattr__(name: str) -> object:
    """The on-disk and direct-to-cache writers live in `synthetic_write`; this is their documented import path."""
    if name in _WRITERS:
        from t2igan.data import synthetic_write

        return getattr(synthetic_write, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ATTRIBUTES",
    "ATTRIBUTE_NAMES",
    "SyntheticFlowers",
    "caption_attributes",
    "preview_grid",
    "render_flowers",
]
