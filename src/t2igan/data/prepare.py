"""The decoding pass of `prepare_cache`: captions checked, images decoded/cropped/resized into ``images_<S>.npy``."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from t2igan.data.cache import CacheArrays, PreparedCache, copy_into, write_cache_files
from t2igan.data.decode import load_square, resize_square
from t2igan.data.layouts import Source, SourceItem, problem
from t2igan.utils.errors import T2IError
from t2igan.utils.io import atomic_write_json
from t2igan.utils.outputs import MARKER_PREFIX
from t2igan.utils.progress import progress_bar


def build_cache(
    source: Source,
    folder: Path,
    sizes: Sequence[int],
    fp: str,
    skip_bad: bool,
    progress: bool,
    reuse: PreparedCache | None = None,
    workers: int | None = None,
) -> None:
    """Fill the empty ``folder`` with a cache of ``source`` at ``sizes`` (reusing ``reuse``'s files if given)."""
    source_info = {"kind": source.kind, "path": str(source.root.resolve()), "skipped": len(source.skipped)}
    if reuse is not None:
        _extend(source, folder, sizes, fp, reuse, source_info, progress)
        return
    # Pass 1: captions (cheap) — decide which items are usable.
    items, captions = [], []
    for it in source.items:
        try:
            captions.append(source.read_captions(it))
            items.append(it)
        except T2IError as e:
            problem(e, skip_bad, source.skipped)
    # Pass 2: images, straight into memory-mapped .npy files.
    n = len(items)
    arrays = {
        s: np.lib.format.open_memmap(folder / f"images_{s}.npy", mode="w+", dtype=np.uint8, shape=(n, s, s, 3))
        for s in sizes
    }
    ok = np.ones(n, dtype=bool)
    for k, res in _decode_all(items, sizes, progress, workers):
        if isinstance(res, T2IError):
            problem(res, skip_bad, source.skipped)
            ok[k] = False
            continue
        for s, arr in arrays.items():
            arr[k] = res[s]
    for arr in arrays.values():
        arr.flush()
    del arrays
    keep = np.flatnonzero(ok)
    if len(keep) == 0:
        raise T2IError("empty dataset: every item was bad", path=source.root, hint="fix the files listed above")
    if len(keep) < n:
        for s in sizes:
            _compact(folder / f"images_{s}.npy", keep)
    items = [items[k] for k in keep]
    captions = [captions[k] for k in keep]
    class_index = {c: i for i, c in enumerate(source.class_names)}
    attrs = None
    if source.attribute_names and all(it.attributes is not None for it in items):
        attrs = np.array([it.attributes for it in items], dtype=np.int64)
    style = None
    if source.style_names and all(it.style is not None for it in items):
        style = np.array([it.style for it in items], dtype=np.float32)
    source_info["skipped"] = len(source.skipped)
    write_cache_files(
        folder,
        CacheArrays(
            names=[it.name for it in items],
            captions=captions,
            class_ids=np.array([class_index[it.class_name] for it in items], dtype=np.int64),
            class_names=source.class_names,
            is_test=np.array([it.split == "test" for it in items], dtype=bool),
            attributes=attrs,
            attribute_names=source.attribute_names or None,
            attribute_values=source.attribute_values or None,
            style=style,
            style_names=source.style_names or None,
        ),
        sizes,
        fp,
        source_info,
    )
    if source.embeddings is not None:
        _save_precomputed(folder, source, keep, captions)


def _decode_one(item: SourceItem, sizes: Sequence[int]) -> dict[int, np.ndarray] | T2IError:
    try:
        square = load_square(item.image, item.box, max(sizes))
    except T2IError as e:
        return e
    return {s: resize_square(square, s) for s in sizes}


def _decode_all(
    items: list[SourceItem], sizes: Sequence[int], progress: bool, workers: int | None
) -> Iterator[tuple[int, dict[int, np.ndarray] | T2IError]]:
    """Decode in a thread pool (Pillow releases the GIL while decoding/resizing), in order, with a progress bar."""
    workers = workers or min(4, os.cpu_count() or 1)
    bar = progress_bar(total=len(items), enabled=progress and len(items) >= 500, desc="prepare", unit="img")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(items), 256):  # bounded memory: one chunk in flight
            chunk = items[start : start + 256]
            yield from enumerate(pool.map(_decode_one, chunk, [sizes] * len(chunk)), start)
            bar.update(len(chunk))
    bar.close()


def _compact(path: Path, keep: np.ndarray) -> None:
    full = np.load(path, mmap_mode="r")
    tmp = path.with_name(path.name + ".part.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(keep), *full.shape[1:]))
    out[:] = full[keep]
    out.flush()
    del out, full
    tmp.replace(path)


def _save_precomputed(folder: Path, source: Source, keep: np.ndarray, captions: list[list[str]]) -> None:
    """Precomputed caption embeddings shipped with the dataset (StackGAN pickles) → key ``precomputed``."""
    emb = source.embeddings
    assert emb is not None
    rows = [np.asarray(emb[k], dtype=np.float32)[: len(caps)] for k, caps in zip(keep, captions, strict=False)]
    flat = np.concatenate(rows, 0)
    if flat.shape[0] != sum(len(c) for c in captions):
        raise T2IError(
            "fewer precomputed embeddings than captions",
            path=source.root,
            hint="each image needs one embedding per caption",
        )
    np.save(folder / "embeddings" / "precomputed.npy", flat)
    atomic_write_json(
        folder / "embeddings" / "precomputed.json",
        {**source.embedding_meta, "key": "precomputed", "dim": int(flat.shape[1]), "n": int(flat.shape[0])},
    )


def _extend(
    source: Source,
    folder: Path,
    sizes: Sequence[int],
    fp: str,
    reuse: PreparedCache,
    source_info: dict[str, Any],
    progress: bool,
) -> None:
    """Same inputs, more sizes: hard-link everything of the old cache and decode only the new sizes."""
    by_name = {it.name: it for it in source.items}
    for p in reuse.root.iterdir():
        if p.is_file() and p.name != "meta.json" and not p.name.startswith(MARKER_PREFIX):
            copy_into(p, folder / p.name)
    (folder / "embeddings").mkdir(exist_ok=True)
    for p in (reuse.root / "embeddings").glob("*"):
        copy_into(p, folder / "embeddings" / p.name)
    new = [s for s in sizes if s not in reuse.sizes]
    arrays = {
        s: np.lib.format.open_memmap(folder / f"images_{s}.npy", mode="w+", dtype=np.uint8, shape=(reuse.n, s, s, 3))
        for s in new
    }
    for k, res in _decode_all([by_name[name] for name in reuse.names], new, progress, None):
        if isinstance(res, T2IError):
            raise res
        for s, arr in arrays.items():
            arr[k] = res[s]
    for arr in arrays.values():
        arr.flush()
    meta = dict(reuse.meta)
    meta.update(sizes=sorted(int(s) for s in sizes), fingerprint=fp, source={**meta["source"], **source_info})
    atomic_write_json(folder / "meta.json", meta)
