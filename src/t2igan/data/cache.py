"""The preparation cache: images decoded, cropped and resized once; training reads only this.

Folder layout (all written atomically; the whole folder is built in a temporary sibling and renamed)::

    meta.json                format, version, n, sizes, fingerprint, source, class names, attribute names/values
    images_<S>.npy           uint8 [n, S, S, 3], memory-mapped on read
    captions.json            {"names": [...], "captions": [[...], ...]}
    class_ids.npy            int64 [n]
    is_test.npy              bool [n]  (class-disjoint split from trainval/test class files)
    attributes.npy           int64 [n, A]  (synthetic flowers only)
    embeddings/<key>.npy     float32 [n_captions, D] — one row per flat caption (`save_embeddings`)
    embeddings/<key>.json    its metadata; written last, so a key exists only when complete

`prepare_cache` is idempotent: the fingerprint covers every input file (path, size, mtime) and the cache format
version; asking for a size the cache lacks adds it and keeps the stored embeddings. `open_cache` is what a command
taking DATA calls: a cache folder, or a dataset folder (prepared on first use).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from t2igan.utils.errors import T2IError
from t2igan.utils.io import atomic_path, atomic_write_json, fingerprint, fingerprint_tree
from t2igan.utils.outputs import atomic_dir, json_says

CACHE_FORMAT = "t2igan-cache"
CACHE_VERSION = 1
DEFAULT_CACHE_DIR = ".t2igan_cache"  # where `t2igan data prepare SRC` writes unless --out is given
CACHE_KIND = "cache"  # its ownership marker: .t2igan-cache.json (utils.outputs)
is_cache_folder = json_says("meta.json", "format", CACHE_FORMAT)  # caches written before the marker existed
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass
class CacheArrays:
    """Everything but the images, in memory, for `write_cache`."""

    names: list[str]
    captions: list[list[str]]
    class_ids: np.ndarray
    class_names: list[str]
    is_test: np.ndarray
    attributes: np.ndarray | None = None
    attribute_names: list[str] | None = None
    attribute_values: list[list[str]] | None = None
    style: np.ndarray | None = None  # float32 [n, F] style factors (synthetic flowers)
    style_names: list[str] | None = None


def write_cache_files(folder: Path, arrays: CacheArrays, sizes: Sequence[int], fp: str, source: dict[str, Any]) -> None:
    """Write every file of a cache except ``images_<S>.npy`` (written by the caller) into ``folder``."""
    n = len(arrays.names)
    if not (len(arrays.captions) == len(arrays.class_ids) == len(arrays.is_test) == n):
        raise ValueError("cache arrays disagree in length")
    atomic_write_json(folder / "captions.json", {"names": arrays.names, "captions": arrays.captions})
    np.save(folder / "class_ids.npy", np.asarray(arrays.class_ids, dtype=np.int64))
    np.save(folder / "is_test.npy", np.asarray(arrays.is_test, dtype=bool))
    if arrays.attributes is not None:
        np.save(folder / "attributes.npy", np.asarray(arrays.attributes, dtype=np.int64))
    if arrays.style is not None:
        np.save(folder / "style.npy", np.asarray(arrays.style, dtype=np.float32))
    (folder / "embeddings").mkdir(exist_ok=True)
    atomic_write_json(
        folder / "meta.json",
        {
            "format": CACHE_FORMAT,
            "version": CACHE_VERSION,
            "n": n,
            "n_captions": int(sum(len(c) for c in arrays.captions)),
            "sizes": sorted(int(s) for s in sizes),
            "fingerprint": fp,
            "source": source,
            "class_names": arrays.class_names,
            "attribute_names": arrays.attribute_names or [],
            "attribute_values": arrays.attribute_values or [],
            "style_names": arrays.style_names or [],
        },
    )


def _is_int(v: Any, lo: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


_META_FIELDS: dict[str, tuple[Any, str, bool]] = {  # key → (check, what it must be, required)
    "n": (_is_int, "a non-negative integer", True),
    "sizes": (lambda v: isinstance(v, list) and bool(v) and all(_is_int(x, 1) for x in v), "a list of sizes", True),
    "fingerprint": (lambda v: isinstance(v, str), "a string", True),
    "class_names": (_is_str_list, "a list of strings", True),
    "n_captions": (_is_int, "a non-negative integer", False),
    "attribute_names": (_is_str_list, "a list of strings", False),
    "attribute_values": (lambda v: isinstance(v, list) and all(_is_str_list(x) for x in v), "lists of strings", False),
    "source": (lambda v: isinstance(v, dict), "an object", False),
}


def meta_problem(meta: Any) -> str | None:
    """What is wrong with the types of a cache's ``meta.json`` (None when nothing is)."""
    if not isinstance(meta, dict):
        return f"a JSON object was expected, not {type(meta).__name__}"
    if "format" not in meta or "version" not in meta:
        return None  # reported as an unsupported format by the caller
    for key, (ok, what, required) in _META_FIELDS.items():
        if key not in meta:
            if required:
                return f"{key!r} is missing"
        elif not ok(meta[key]):
            return f"{key!r} must be {what}, got {json.dumps(meta[key])[:40]}"
    return None


class PreparedCache:
    """Read side of a cache folder (see module docstring). Open with `PreparedCache.open(dir)`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not (self.root / "meta.json").is_file() and (self.root / DEFAULT_CACHE_DIR / "meta.json").is_file():
            self.root = self.root / DEFAULT_CACHE_DIR  # a dataset folder: its default cache
        meta_path = self.root / "meta.json"
        if not meta_path.is_file():
            raise T2IError(
                "not a prepared cache (no meta.json)", path=self.root, hint="run: t2igan data prepare SRC --out DIR"
            )
        try:
            self.meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        except ValueError:
            raise T2IError(
                "damaged cache metadata", path=meta_path, hint="delete the folder and prepare again"
            ) from None
        wrong = meta_problem(self.meta)
        if wrong:
            raise T2IError(
                f"damaged cache metadata: {wrong}", path=meta_path, hint="delete the folder and prepare again"
            )
        if self.meta.get("format") != CACHE_FORMAT or self.meta.get("version") != CACHE_VERSION:
            raise T2IError(
                f"cache format {self.meta.get('format')} v{self.meta.get('version')} is not supported",
                path=self.root,
                hint="delete the folder and run t2igan data prepare again",
            )
        self.n: int = int(self.meta["n"])
        self.sizes: list[int] = [int(s) for s in self.meta["sizes"]]
        self.fingerprint: str = self.meta["fingerprint"]
        self.class_names: list[str] = list(self.meta["class_names"])
        self.attribute_names: list[str] = list(self.meta.get("attribute_names") or [])
        self.attribute_values: list[list[str]] = [list(v) for v in self.meta.get("attribute_values") or []]
        self.class_ids: np.ndarray = self._load(self.root / "class_ids.npy", rows=self.n)
        self.is_test: np.ndarray = self._load(self.root / "is_test.npy", rows=self.n)
        self.split: np.ndarray = np.where(self.is_test, "test", "train")
        attr = self.root / "attributes.npy"
        self.attributes: np.ndarray | None = self._load(attr, rows=self.n) if attr.is_file() else None
        style = self.root / "style.npy"
        self.style_names: list[str] = list(self.meta.get("style_names") or [])
        self.style: np.ndarray | None = self._load(style, rows=self.n) if style.is_file() and self.style_names else None

    def _load(self, path: Path, *, rows: int | None = None, mmap: bool = False) -> np.ndarray:
        """``np.load`` (never pickles) with a damaged or missing file turned into a one-line ``T2IError``."""
        try:
            arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            reason = "missing" if isinstance(e, FileNotFoundError) else f"damaged ({str(e).splitlines()[0][:80]})"
            raise T2IError(f"cache file is {reason}", path=path, hint=f"delete {self.root} and prepare again") from None
        if rows is not None and (arr.ndim == 0 or arr.shape[0] != rows):
            raise T2IError(
                f"cache file has shape {arr.shape}, expected {rows} rows",
                path=path,
                hint=f"delete {self.root} and prepare again",
            )
        return arr

    @classmethod
    def open(cls, root: str | Path) -> PreparedCache:
        """Open a cache folder, or a dataset folder prepared with the default ``--out`` (``<src>/.t2igan_cache``)."""
        return cls(root)

    def __repr__(self) -> str:
        return f"PreparedCache({str(self.root)!r}, n={self.n}, sizes={self.sizes})"

    # --- images ---------------------------------------------------------------------------------------------------
    def images(self, size: int) -> np.ndarray:
        """uint8 ``[n, size, size, 3]``, memory-mapped (read-only)."""
        if size not in self.sizes:
            raise T2IError(
                f"cache has no {size}px images (has {self.sizes})",
                path=self.root,
                hint=f"run: t2igan data prepare SRC --size {size} --out {self.root}",
            )
        return self._load(self.root / f"images_{size}.npy", rows=self.n, mmap=True)

    # --- captions -------------------------------------------------------------------------------------------------
    @cached_property
    def _captions_json(self) -> dict[str, Any]:
        path = self.root / "captions.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if len(data["captions"]) != self.n:
                raise ValueError(f"{len(data['captions'])} caption lists for {self.n} images")
        except FileNotFoundError:
            raise T2IError("cache file is missing", path=path, hint=f"delete {self.root} and prepare again") from None
        except (OSError, ValueError, KeyError, TypeError) as e:
            hint = f"delete {self.root} and prepare again"
            raise T2IError(f"cache file is damaged ({e})", path=path, hint=hint) from None
        return data

    @property
    def names(self) -> list[str]:
        return self._captions_json["names"]

    @property
    def captions(self) -> list[list[str]]:
        return self._captions_json["captions"]

    @cached_property
    def caption_offsets(self) -> np.ndarray:
        counts = np.array([len(c) for c in self.captions], dtype=np.int64)
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    @cached_property
    def flat_captions(self) -> list[str]:
        return [c for caps in self.captions for c in caps]

    @property
    def n_captions(self) -> int:
        return int(self.caption_offsets[-1])

    def train_indices(self) -> np.ndarray:
        return np.flatnonzero(~self.is_test).astype(np.int64)

    def test_indices(self) -> np.ndarray:
        return np.flatnonzero(self.is_test).astype(np.int64)

    # --- embeddings -----------------------------------------------------------------------------------------------
    def _emb_paths(self, key: str) -> tuple[Path, Path]:
        if not _KEY.match(key):
            raise T2IError(f"bad embedding key {key!r}", path=self.root, hint="use letters, digits, '.', '_', '-'")
        return self.root / "embeddings" / f"{key}.npy", self.root / "embeddings" / f"{key}.json"

    def save_embeddings(self, key: str, array: np.ndarray, meta: dict[str, Any] | None = None) -> None:
        """Store one float32 row per flat caption under ``key`` (atomically; metadata written last)."""
        arr = np.asarray(array, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != self.n_captions:
            raise ValueError(f"embeddings must be [n_captions={self.n_captions}, D], got {tuple(arr.shape)}")
        npy, js = self._emb_paths(key)
        if js.exists():
            js.unlink()  # the key stops existing while its array is being replaced
        with atomic_path(npy) as tmp, open(tmp, "wb") as f:
            np.save(f, arr)
        atomic_write_json(
            js,
            {
                **(meta or {}),
                "key": key,
                "dim": int(arr.shape[1]),
                "n": int(arr.shape[0]),
                "cache_fingerprint": self.fingerprint,
            },
        )
        publish_permissions(npy.parent)

    def has_embeddings(self, key: str) -> bool:
        npy, js = self._emb_paths(key)
        return npy.is_file() and js.is_file()

    def embedding_keys(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "embeddings").glob("*.json") if self.has_embeddings(p.stem))

    def embeddings(self, key: str) -> np.ndarray:
        """float32 ``[n_captions, D]``, memory-mapped."""
        npy, _ = self._emb_paths(key)
        if not self.has_embeddings(key):
            have = ", ".join(self.embedding_keys()) or "none"
            raise T2IError(
                f"no caption embeddings {key!r} in the cache (has: {have})",
                path=self.root,
                hint="encode the captions first: t2igan encode captions DATA --encoder minilm",
            )
        return self._load(npy, rows=self.n_captions, mmap=True)

    def embedding_meta(self, key: str) -> dict[str, Any]:
        _, js = self._emb_paths(key)
        if not js.is_file():
            raise T2IError(
                f"no caption embeddings {key!r} in the cache",
                path=self.root,
                hint="encode the captions first: t2igan encode captions DATA --encoder minilm",
            )
        try:
            meta = json.loads(js.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise T2IError(f"damaged embedding metadata ({e})", path=js, hint="encode the captions again") from None
        if not isinstance(meta, dict):
            raise T2IError("damaged embedding metadata (not a JSON object)", path=js, hint="encode the captions again")
        return meta


def source_fingerprint(source: Any) -> str:
    """Fingerprint of every input file of a `Source` (path, size, mtime) + the cache format version."""
    files = {it.image for it in source.items} | {it.caption_file for it in source.items if it.caption_file}
    files |= set(source.extra_files)
    rel = [os.path.relpath(f, source.root) for f in files]
    inline = [it.captions for it in source.items if it.captions is not None]
    return fingerprint(
        [
            CACHE_FORMAT,
            CACHE_VERSION,
            "style" if getattr(source, "style_names", None) else "",  # caches made before style factors: re-prepare
            source.kind,
            fingerprint_tree(source.root, rel),
            fingerprint(inline),
            [(it.name, it.box) for it in source.items],
        ]
    )


def open_cache(path: str | Path, *, prepare: bool = True, sizes: Sequence[int] = (64,)) -> PreparedCache:
    """A `PreparedCache` from a cache folder or a dataset folder: the dataset's default cache, else (``prepare``)
    ``prepare_cache(path, sizes)`` first (no work when it is already prepared)."""
    path = Path(path)
    if not path.exists():
        hint = "pass a dataset folder or its prepared cache (make one: t2igan data synth --out data/flowers)"
        raise T2IError("no such data folder", path=path, hint=hint)
    try:
        return PreparedCache.open(path)
    except T2IError:
        if not prepare:
            raise
    return PreparedCache.open(prepare_cache(path, sizes=sizes))


def prepare_cache(
    src: str | Path,
    sizes: Sequence[int] = (64,),
    out: str | Path | None = None,
    skip_bad: bool = False,
    progress: bool = True,
    workers: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Decode, crop and resize the dataset at ``src`` into a cache folder (default ``<src>/.t2igan_cache``).

    Re-running with unchanged inputs does nothing; asking for new sizes adds them. With ``skip_bad`` unreadable
    items are warned about, counted and left out; otherwise the first problem raises a one-line `T2IError`.
    ``workers`` decoding threads (default min(4, CPUs)); the result does not depend on it. An existing ``out`` that
    is not a cache is never replaced (a one-line error) unless ``overwrite``; ``out`` may never be ``src`` or a
    folder holding it.
    """
    from t2igan.data.layouts import load_source
    from t2igan.data.prepare import build_cache

    sizes = sorted({int(s) for s in sizes})
    if not sizes or min(sizes) < 4:
        raise T2IError(f"bad sizes {sizes}", hint="pass --size 64 (and more --size for more resolutions)")
    src = Path(src)
    out = Path(out) if out is not None else src / DEFAULT_CACHE_DIR
    _check_not_source(src, out)
    source = load_source(src, skip_bad=skip_bad)
    fp = source_fingerprint(source)
    old = _existing(out)
    if old is not None and old.fingerprint == fp and set(sizes) <= set(old.sizes):
        return out
    keep = old if old is not None and old.fingerprint == fp else None
    with atomic_dir(out, kind=CACHE_KIND, overwrite=overwrite, is_own=is_cache_folder) as tmp:
        build_cache(
            source,
            tmp,
            sorted(set(sizes) | set(keep.sizes if keep else [])),
            fp,
            skip_bad,
            progress,
            reuse=keep,
            workers=workers,
        )
        publish_permissions(tmp)
    if source.skipped:
        warnings.warn(f"{len(source.skipped)} bad item(s) skipped while preparing {src}", stacklevel=2)
    return out


def _check_not_source(src: Path, out: Path) -> None:
    """The cache replaces ``out`` as a whole: it must not be the dataset folder or one that contains it."""
    s, o = src.resolve(), out.resolve()
    if o == s or o in s.parents:
        raise T2IError(
            "the cache folder would replace the dataset it is made from",
            path=out,
            hint=f"choose a --out outside {src} (or leave it out: the cache goes to {src / DEFAULT_CACHE_DIR})",
        )


def _existing(out: Path) -> PreparedCache | None:
    if not (out / "meta.json").is_file():
        return None
    try:
        return PreparedCache(out)
    except (T2IError, OSError, ValueError, KeyError):
        return None


def publish_permissions(folder: Path) -> None:
    """Give a finished temporary folder the modes a normal ``mkdir``/``open`` would (mkdtemp/mkstemp use 0700/0600)."""
    mask = os.umask(0)
    os.umask(mask)
    for dirpath, _, files in os.walk(folder):
        with contextlib.suppress(OSError):  # a file another process is replacing may vanish meanwhile
            os.chmod(dirpath, 0o777 & ~mask)
        for f in files:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(dirpath, f), 0o666 & ~mask)


def copy_into(src: Path, dst: Path) -> None:
    """Hard-link (or copy) ``src`` to ``dst`` — for reusing unchanged files of an old cache."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
