"""The demo's figures and page: held-out-caption grid, interpolation strips, loss curves, ``index.html``.

Everything here reads a finished run (its ``pretrained/`` folder and ``logs/metrics.jsonl``) and writes files
atomically; nothing trains.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from t2igan.data.cache import PreparedCache
from t2igan.sampling import T2IPipeline
from t2igan.sampling.interpolation import interpolate_text, interpolate_z
from t2igan.utils.images import make_grid, save_image
from t2igan.utils.io import atomic_path, atomic_write_text
from t2igan.utils.seed import derive_seed
from t2igan.utils.templates import render


@dataclass
class Figure:
    """One image on the page: file name (relative to the run), title, what it shows, and caption rows."""

    file: str
    title: str
    text: str
    rows: list[str] = field(default_factory=list)


def sample_grid(
    pipe: T2IPipeline, captions: Sequence[str], labels: Sequence[str], seeds: Sequence[int], out: Path, scale: int = 1
) -> Figure:
    """One row per caption (``labels`` prefix the row captions, e.g. "seen class"), one column per seed."""
    res = pipe(list(captions), num_images_per_prompt=len(seeds), seeds=list(seeds), output_type="pt", denormalize=False)
    rows = [f"[{lab}] {cap}" for lab, cap in zip(labels, captions, strict=True)]
    grid = make_grid(res.images, nrow=len(seeds), row_captions=rows, scale=scale)
    save_image(grid, out)
    return Figure(
        out.name,
        "Held-out captions",
        f"{len(captions)} captions never seen in training (rows), seeds {seeds[0]}–{seeds[-1]} (columns). "
        "'seen' rows describe classes of the training split; 'unseen' rows describe held-out classes "
        "(new combinations of attributes).",
        rows,
    )


def interpolation_figures(
    pipe: T2IPipeline,
    caption_a: str,
    caption_b: str,
    out_dir: Path,
    seeds: Sequence[int] = (0, 1, 2),
    steps: int = 8,
    scale: int = 1,
) -> list[Figure]:
    """Text interpolation (z fixed per row) and noise interpolation (caption fixed per row), Reed 2016 §5."""
    text = interpolate_text(pipe, caption_a, caption_b, steps=steps, seeds=seeds)
    save_image(text.to_image(scale=scale), out_dir / "interpolation.png")
    noise = interpolate_z(pipe, [caption_a, caption_b], seed_a=int(seeds[0]), seed_b=int(seeds[-1]) + 7, steps=steps)
    save_image(noise.to_image(scale=scale), out_dir / "interpolation_z.png")
    return [
        Figure(
            "interpolation.png",
            "Text interpolation (GAN-INT)",
            f"φ = (1−β)·φ(A) + β·φ(B), β from 0 to 1 left to right; z fixed per row. A = “{caption_a}”, "
            f"B = “{caption_b}”. Content should change while background and pose stay.",
            text.row_labels,
        ),
        Figure(
            "interpolation_z.png",
            "Noise interpolation",
            "Caption fixed per row, z moving between two seeds: the style (background, position, rotation) "
            "changes while the flower keeps what the caption says.",
            noise.row_labels,
        ),
    ]


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def smooth(values: np.ndarray, alpha: float = 0.1) -> np.ndarray:
    """Exponential moving average (bias-corrected), for readable GAN loss curves."""
    out, m = np.empty_like(values), 0.0
    for i, v in enumerate(values):
        m = (1 - alpha) * m + alpha * v
        out[i] = m / (1 - (1 - alpha) ** (i + 1))
    return out


def loss_plot(metrics_jsonl: Path, out: Path) -> Figure | None:
    """Loss curves (raw, faint; smoothed, solid) of every ``loss_*`` key in the trainer's log, PNG via Agg."""
    rows = read_metrics(metrics_jsonl)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({k for r in rows for k, v in r.items() if k.startswith("loss") and isinstance(v, (int, float))})
    steps = np.array([r.get("step", i) for i, r in enumerate(rows)], dtype=float)
    fig, ax = plt.subplots(figsize=(7.0, 3.6), dpi=100)
    for k in keys:
        vals = np.array([float(r.get(k, math.nan)) for r in rows])
        ok = np.isfinite(vals)
        if not ok.any():
            continue
        (line,) = ax.plot(steps[ok], smooth(vals[ok]), label=k, linewidth=1.6)
        ax.plot(steps[ok], vals[ok], color=line.get_color(), alpha=0.2, linewidth=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("GAN-INT-CLS training losses (smoothed; raw faint)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Figure(
        out.name, "Loss curves", f"From logs/metrics.jsonl ({len(rows)} points): D and G losses per logged step."
    )


def write_index(out: Path, figures: Sequence[Figure], summary: dict[str, Any], intro: str, command: str) -> Path:
    """``index.html`` (``apps/templates/demo_index.html``): the summary table, then each figure with its caption
    rows."""
    page = render(
        "t2igan.apps",
        "demo_index.html",
        intro=intro,
        summary={str(k): str(v) for k, v in summary.items()},
        figures=figures,
        command=command,
        run=str(out.parent),
    )
    atomic_write_text(out, page)
    return out


# ------------------------------------------------------------------------------------------------ held-out captions
def interpolation_pair() -> tuple[str, str]:
    """Two captions that differ only in petal colour (the paper's red-bird → blue-bird strip, for flowers)."""
    return ("this flower has red petals and a yellow center.", "this flower has blue petals and a yellow center.")


def _named(caption: str, values: dict[str, str]) -> int:
    """How many of the class's attribute values the caption names (any phrase of the grammar)."""
    from t2igan.data.synthetic_captions import (
        CENTRE_COLOUR_WORDS,
        COUNT_WORDS,
        PETAL_COLOUR_WORDS,
        SHAPE_WORDS,
    )

    words = {
        "petal_colour": PETAL_COLOUR_WORDS,
        "centre_colour": CENTRE_COLOUR_WORDS,
        "petal_shape": SHAPE_WORDS,
        "petal_count": COUNT_WORDS,
    }
    text = f" {caption.lower()} "
    return sum(
        any(f" {w} " in text.replace(".", " ").replace(",", " ") for w in words[a][v])
        for a, v in values.items()
        if a in words
    )


def heldout_rows(cache: PreparedCache, *, seed: int = 0, per_split: int = 4) -> tuple[list[str], list[str]]:
    """``per_split`` seen-class and unseen-class captions that are not in the dataset, with labels.

    Captions come from the dataset's own grammar with a random stream no image used, keeping the one that names
    the most attributes; classes are picked greedily for distinct petal colours.
    """
    from t2igan.data.synthetic_captions import make_captions

    names = list(cache.attribute_names)
    values = list(cache.attribute_values)
    train_caps = set(cache.flat_captions)
    captions, labels = [], []
    for split, label in (("train", "seen class"), ("test", "unseen class")):
        idx = np.flatnonzero(np.asarray(cache.split) == split)
        by_class: dict[int, int] = {}
        for i in idx.tolist():
            by_class.setdefault(int(cache.class_ids[i]), i)
        colours: set[int] = set()
        chosen: list[int] = []
        for c in sorted(by_class, key=lambda c: (int(cache.attributes[by_class[c]][0]) in colours, c)):
            petal = int(cache.attributes[by_class[c]][0])
            if petal in colours and len(colours) < len(values[0]):
                continue
            colours.add(petal)
            chosen.append(c)
            if len(chosen) == per_split:
                break
        for c in chosen:
            vals = {
                n: values[a][int(v)] for a, (n, v) in enumerate(zip(names, cache.attributes[by_class[c]], strict=True))
            }
            rng = np.random.default_rng(derive_seed(seed, "demo-heldout", c))
            pool = [
                s
                for s in make_captions(
                    rng, vals["petal_colour"], vals["centre_colour"], vals["petal_shape"], vals["petal_count"], k=20
                )
                if s not in train_caps
            ]
            if pool:
                captions.append(max(pool, key=lambda s: (_named(s, vals), -len(s))))
                labels.append(label)
    return captions, labels
