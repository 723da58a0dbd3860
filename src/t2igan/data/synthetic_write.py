"""Writers for the synthetic flowers: Reed's Oxford-102 layout on disk, or straight into a prepared cache."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from t2igan.data.cache import publish_permissions
from t2igan.data.synthetic import (
    ATTRIBUTE_NAMES,
    ATTRIBUTES,
    STYLE_FACTORS,
    SyntheticFlowers,
    render_flowers,
    style_columns,
)
from t2igan.utils.outputs import atomic_dir, json_says
from t2igan.utils.progress import progress_bar

# --- on disk: Reed's Oxford-102 layout --------------------------------------------------------------------------
SYNTHETIC_VERSION = 1
SYNTHETIC_KIND = "synthetic-flowers"  # the dataset folder's ownership marker (utils.outputs)
is_synthetic_folder = json_says("attributes.json", "generator.name", "t2igan.synthetic_flowers")  # older folders


def write_synthetic_dataset(
    out: str | Path,
    n: int = 8189,
    size: int = 64,
    seed: int = 0,
    *,
    n_classes: int = 102,
    n_test_classes: int = 20,
    chunk: int = 256,
    progress: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write ``n`` synthetic flowers in Reed's Oxford-102 layout under ``out`` (atomically) and return ``out``.

    Layout: ``images/image_XXXXX.png``, ``text_c10/class_XXXXX/image_XXXXX.txt`` (10 captions),
    ``allclasses.txt``, ``trainvalclasses.txt``, ``testclasses.txt`` and ``attributes.json`` (attribute names and
    values, per-class and per-image attribute indices, per-image style factors). An existing ``out`` is replaced
    only if it is an earlier synthetic-flowers folder (or empty, or ``overwrite``); anything else is a one-line error.
    """
    from t2igan.utils.io import atomic_write_json

    if n < 1:
        raise ValueError("n must be ≥ 1")
    if size < 8:
        raise ValueError("size must be ≥ 8")
    out = Path(out)
    flowers = SyntheticFlowers(seed=seed, n_classes=n_classes, n_test_classes=n_test_classes)
    names = flowers.class_names
    class_ids = flowers.class_ids(n)
    image_names = [f"image_{i + 1:05d}" for i in range(n)]
    style_rows: dict[str, list[float]] = {}
    with atomic_dir(out, kind=SYNTHETIC_KIND, overwrite=overwrite, is_own=is_synthetic_folder) as tmp:
        (tmp / "images").mkdir()
        for c in range(n_classes):  # every class folder, even if a small n leaves it empty
            (tmp / "text_c10" / names[c]).mkdir(parents=True)
        bar = progress_bar(total=n, enabled=progress, desc="synth", unit="img")
        pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1))
        for start in range(0, n, chunk):
            idx = np.arange(start, min(n, start + chunk))
            style = flowers.sample_style(idx)
            for key in STYLE_FACTORS:
                style_rows.setdefault(key, []).extend(np.round(style[key].astype(float), 4).tolist())
            imgs = render_flowers(flowers.class_attributes[class_ids[idx]], style, size)

            def save(i: int, tmp: Path = tmp, imgs: np.ndarray = imgs, start: int = start) -> None:
                Image.fromarray(imgs[i - start]).save(tmp / "images" / f"{image_names[i]}.png", compress_level=1)
                caps = flowers.captions(i, int(class_ids[i]))
                (tmp / "text_c10" / names[class_ids[i]] / f"{image_names[i]}.txt").write_text(
                    "\n".join(caps) + "\n", encoding="utf-8"
                )

            list(pool.map(save, idx.tolist()))  # PNG encoding releases the GIL
            bar.update(len(idx))
        bar.close()
        pool.shutdown()
        (tmp / "allclasses.txt").write_text("\n".join(names) + "\n")
        (tmp / "trainvalclasses.txt").write_text("\n".join(names[c] for c in flowers.trainval_classes) + "\n")
        (tmp / "testclasses.txt").write_text("\n".join(names[c] for c in flowers.test_classes) + "\n")
        atomic_write_json(
            tmp / "attributes.json",
            {
                "generator": {
                    "name": "t2igan.synthetic_flowers",
                    "version": SYNTHETIC_VERSION,
                    "seed": seed,
                    "n": n,
                    "size": size,
                    "n_classes": n_classes,
                    "n_test_classes": n_test_classes,
                },
                "attribute_names": ATTRIBUTE_NAMES,
                "attribute_values": [ATTRIBUTES[a] for a in ATTRIBUTE_NAMES],
                "classes": {names[c]: flowers.class_attributes[c].tolist() for c in range(n_classes)},
                "class_descriptions": {names[c]: flowers.describe_class(c) for c in range(n_classes)},
                "images": {image_names[i]: flowers.class_attributes[class_ids[i]].tolist() for i in range(n)},
                "image_classes": {image_names[i]: names[class_ids[i]] for i in range(n)},
                "style_names": sorted(style_rows),
                "style": style_rows,
            },
        )
        publish_permissions(tmp)
    return out


def synthesize_cache(
    out: str | Path,
    n: int = 8189,
    sizes: tuple[int, ...] | list[int] = (64,),
    seed: int = 0,
    *,
    n_classes: int = 102,
    n_test_classes: int = 20,
    chunk: int = 256,
) -> Path:
    """Render synthetic flowers straight into a prepared cache (no PNG round trip) and return its folder.

    The direct route for tests and demos: same classes, captions, split and attributes as
    `write_synthetic_dataset` + `prepare_cache`, but each size is rendered natively (so pixels differ slightly from
    a resized PNG). Idempotent: an existing cache with the same parameters and all ``sizes`` is left alone.
    """
    from t2igan.data.cache import CACHE_KIND, CacheArrays, PreparedCache, is_cache_folder, write_cache_files
    from t2igan.utils.io import fingerprint

    out = Path(out)
    sizes = sorted({int(s) for s in sizes})
    fp = fingerprint(["synthetic-cache", SYNTHETIC_VERSION, n, seed, n_classes, n_test_classes, "style"])
    if (out / "meta.json").is_file():
        try:
            old = PreparedCache.open(out)
            if old.fingerprint == fp and set(sizes) <= set(old.sizes):
                return out
        except Exception:  # damaged: rebuild
            pass
    flowers = SyntheticFlowers(seed=seed, n_classes=n_classes, n_test_classes=n_test_classes)
    class_ids = flowers.class_ids(n)
    styles = np.zeros((n, len(STYLE_FACTORS)), dtype=np.float32)
    with atomic_dir(out, kind=CACHE_KIND, is_own=is_cache_folder) as tmp:
        arrays = {
            s: np.lib.format.open_memmap(tmp / f"images_{s}.npy", mode="w+", dtype=np.uint8, shape=(n, s, s, 3))
            for s in sizes
        }
        for start in range(0, n, chunk):
            idx = np.arange(start, min(n, start + chunk))
            style = flowers.sample_style(idx)
            styles[idx] = style_columns(style)
            for s, arr in arrays.items():
                arr[idx] = render_flowers(flowers.class_attributes[class_ids[idx]], style, s)
        for arr in arrays.values():
            arr.flush()
        del arrays
        test = set(flowers.test_classes)
        write_cache_files(
            tmp,
            CacheArrays(
                names=[f"image_{i + 1:05d}" for i in range(n)],
                captions=[flowers.captions(i, int(class_ids[i])) for i in range(n)],
                class_ids=class_ids,
                class_names=flowers.class_names,
                is_test=np.array([int(c) in test for c in class_ids], dtype=bool),
                attributes=flowers.class_attributes[class_ids],
                attribute_names=ATTRIBUTE_NAMES,
                attribute_values=[ATTRIBUTES[a] for a in ATTRIBUTE_NAMES],
                style=styles,
                style_names=list(STYLE_FACTORS),
            ),
            sizes,
            fp,
            {"kind": "synthetic", "path": None, "seed": seed, "skipped": 0},
        )
        publish_permissions(tmp)
    return out
