"""Published char-CNN-RNN embeddings (Reed et al., CVPR 2016) in their three distribution formats.

- StackGAN pickles: ``char-CNN-RNN-embeddings.pickle``, float32 ``[N, 10, 1024]`` (Python 2 pickles, read with
  ``encoding="latin1"`` through ``t2igan.data.safe_pickle.safe_load`` — never plain ``pickle``);
- Reed's Lua Torch ``.t7`` files, one per image (a table whose ``txt`` field is ``[10, 1024]``), read with
  ``torchfile``;
- the HDF5 file of the popular PyTorch port: ``<split>/<example>/{name, img, embeddings [1024], class, txt}``, one
  example per (image, caption) pair.

A model trained on such files has no encoder for new text; ``PrecomputedEmbeddings`` is the marker saved in its
place, and its ``encode`` raises a ``T2IError`` that says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2igan.data.types import CacheLike
from t2igan.text.base import TextEncoder, check_captions
from t2igan.utils.errors import T2IError


def _need(module: str) -> Any:
    import importlib

    from t2igan.utils.optional import require

    require(module, extra="formats", what="reading this file")
    return importlib.import_module(module)


def read_stackgan_pickle(path: str | Path) -> np.ndarray:
    """``char-CNN-RNN-embeddings.pickle`` → float32 ``[N, K, D]`` (K captions per image, D = 1024)."""
    from t2igan.data.safe_pickle import safe_load

    path = Path(path)
    if not path.exists():
        raise T2IError(
            "embedding pickle not found", path=path, hint="point to StackGAN's char-CNN-RNN-embeddings.pickle"
        )
    obj = safe_load(path)
    try:
        arr = np.asarray(obj, dtype=np.float32)
    except (TypeError, ValueError):
        arr = np.empty(0)
    if arr.ndim == 2:  # one caption per image
        arr = arr[:, None, :]
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise T2IError(
            f"expected an N×10×1024 float array, found {type(obj).__name__} {getattr(arr, 'shape', '')}",
            path=path,
            hint="use StackGAN's char-CNN-RNN-embeddings.pickle",
        )
    return arr


def read_reed_t7(path: str | Path, field: str = "txt") -> np.ndarray:
    """One image's Reed ``.t7`` file → float32 ``[K, D]`` caption embeddings (its ``txt`` field)."""
    torchfile = _need("torchfile")
    path = Path(path)
    try:
        obj = torchfile.load(str(path), utf8_decode_strings=True)
    except Exception as e:
        raise T2IError(f"not a readable Lua Torch .t7 file ({type(e).__name__}: {e})", path=path) from None
    value = None
    if isinstance(obj, dict):
        value = obj.get(field, obj.get(field.encode()))
    elif isinstance(obj, np.ndarray):
        value = obj
    if value is None:
        keys = sorted(str(k) for k in obj) if isinstance(obj, dict) else type(obj).__name__
        raise T2IError(
            f"no '{field}' tensor in this .t7 file (found {keys})",
            path=path,
            hint="expected Reed's per-image files with a 10×1024 'txt' field",
        )
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2:
        raise T2IError(f"'{field}' has shape {arr.shape}, expected [captions, dim]", path=path)
    if arr.shape[0] >= 256 > arr.shape[1]:  # stored dim × captions
        arr = arr.T
    return np.ascontiguousarray(arr)


def read_reed_t7_dir(root: str | Path, field: str = "txt") -> dict[str, np.ndarray]:
    """A folder of ``<class>/<image>.t7`` files → ``{"<class>/<image>": [K, D]}`` (sorted keys)."""
    root = Path(root)
    files = sorted(root.rglob("*.t7"))
    if not files:
        raise T2IError("no .t7 files found", path=root, hint="point to Reed's embedding folder (e.g. flowers_icml)")
    return {f.relative_to(root).with_suffix("").as_posix(): read_reed_t7(f, field) for f in files}


def _open_hdf5(path: Path) -> Any:
    """``h5py.File(path, "r")``, or a one-line `T2IError` when it is missing or not HDF5."""
    h5py = _need("h5py")
    if not path.is_file():
        raise T2IError("HDF5 embedding file not found", path=path, hint="point to the port's .h5 embedding file")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        first = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise T2IError(
            f"not a readable HDF5 file ({first})", path=path, hint="point to the port's .h5 embedding file"
        ) from None


def read_hdf5_embeddings(path: str | Path, split: str = "train") -> dict[str, Any]:
    """The PyTorch port's HDF5 → ``{"names": [M], "embeddings": [M, D], "classes": [M], "captions": [M]}``.

    One row per example (an image–caption pair), in the file's key order.
    """
    path = Path(path)
    with _open_hdf5(path) as f:
        if split not in f:
            raise T2IError(
                f"no split '{split}' in this HDF5 file (found {sorted(f.keys())})",
                path=path,
                hint="pass split='train', 'valid' or 'test'",
            )
        names, embs, classes, caps = [], [], [], []

        def text(v: Any) -> str:
            v = v[()] if hasattr(v, "shape") else v
            if isinstance(v, np.ndarray):
                v = v.reshape(-1)[0] if v.size else b""
            return v.decode("utf-8", "replace") if isinstance(v, (bytes, np.bytes_)) else str(v)

        for key in f[split]:
            ex = f[split][key]
            if "embeddings" not in ex:
                raise T2IError(
                    f"example '{split}/{key}' has no 'embeddings'",
                    path=path,
                    hint="expected the layout split/<name>/{name, img, embeddings, class, txt}",
                )
            names.append(text(ex["name"]) if "name" in ex else key)
            embs.append(np.asarray(ex["embeddings"][()], dtype=np.float32).reshape(-1))
            classes.append(text(ex["class"]) if "class" in ex else "")
            caps.append(text(ex["txt"]) if "txt" in ex else "")
    if not embs:
        raise T2IError(f"split '{split}' is empty", path=path)
    dims = {e.shape[0] for e in embs}
    if len(dims) != 1:
        raise T2IError(f"embeddings have different sizes {sorted(dims)}", path=path)
    return {"names": names, "embeddings": np.stack(embs), "classes": classes, "captions": caps}


def read_embeddings(path: str | Path, split: str = "train") -> np.ndarray | dict[str, Any]:
    """Read any of the three formats by kind: ``.pickle``/``.pkl``, ``.t7`` (file or folder), ``.h5``/``.hdf5``."""
    path = Path(path)
    if path.is_dir():
        return read_reed_t7_dir(path)
    suffix = path.suffix.lower()
    if suffix in (".pickle", ".pkl"):
        return read_stackgan_pickle(path)
    if suffix == ".t7":
        return read_reed_t7(path)
    if suffix in (".h5", ".hdf5"):
        return read_hdf5_embeddings(path, split)
    raise T2IError("unknown embedding file kind", path=path, hint="expected .pickle, .t7 (file or folder) or .h5")


class PrecomputedEmbeddings(TextEncoder):
    """Marker for a model trained on published embeddings: knows ``dim`` and ``source``, cannot encode new text."""

    type_name = "precomputed"
    name = "precomputed"

    def __init__(self, dim: int = 1024, source: str = "published char-CNN-RNN embeddings") -> None:
        super().__init__()
        self._dim = int(dim)
        self.source = str(source)

    @property
    def dim(self) -> int:
        return self._dim

    def get_config(self) -> dict[str, Any]:
        return {"dim": self._dim, "source": self.source}

    def encode(self, captions: Sequence[str] | str, batch_size: int = 256) -> torch.Tensor:
        check_captions(captions)
        raise T2IError(
            f"this model was trained on precomputed text embeddings ({self.source}) and has no text encoder, "
            "so it cannot encode new captions",
            hint="retrain it with an encoder (`t2igan encode train DATA --out DIR`, or --encoder minilm), "
            "or sample from the dataset's stored embeddings",
        )

    def _encode_batch(self, captions: list[str]) -> torch.Tensor:  # pragma: no cover - encode() refuses first
        raise AssertionError("unreachable")


def store_precomputed(cache: CacheLike, per_image: Sequence[np.ndarray] | np.ndarray, source: str) -> str:
    """Put published per-image embeddings (``[K_i, D]`` each, aligned with the cache's images) into the cache.

    Caption j of image i gets row j of ``per_image[i]`` (images with more rows than captions keep the first ones).
    Returns the embedding key (``precomputed-<fingerprint>``) for ``TextImageDataset(embeddings=KEY)``.
    """
    from t2igan.utils.io import fingerprint

    if len(per_image) != cache.n:
        raise T2IError(
            f"{len(per_image)} embedding rows for {cache.n} images",
            path=source,
            hint="the embedding file must list the same images in the same order as the dataset",
        )
    offsets = np.asarray(cache.caption_offsets)
    dim = int(np.asarray(per_image[0]).shape[-1])
    out = np.empty((int(offsets[-1]), dim), dtype=np.float32)
    for i in range(cache.n):
        rows = np.asarray(per_image[i], dtype=np.float32).reshape(-1, dim)
        need = int(offsets[i + 1] - offsets[i])
        if len(rows) < need:
            raise T2IError(f"image {i} has {len(rows)} embeddings for {need} captions", path=source)
        out[offsets[i] : offsets[i + 1]] = rows[:need]
    key = "precomputed-" + fingerprint([source, cache.fingerprint, dim, out[:: max(1, len(out) // 64)].tolist()])
    if not cache.has_embeddings(key):
        cache.save_embeddings(key, out, {"encoder": "precomputed", "source": str(source), "dim": dim})
    return key


def _image_key(name: str) -> str:
    """``"class_00001/image_06734.jpg"`` → ``"image_06734"`` (how files of the three formats name an image)."""
    p = Path(str(name))
    return p.stem if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".t7", ".txt") else p.name


def import_precomputed(cache: CacheLike, path: str | Path) -> str:
    """Put a published embedding file into ``cache`` and return its key (``precomputed-<fingerprint>``).

    A StackGAN pickle must list the cache's images in order; Reed ``.t7`` folders and the port's HDF5 (all splits) are
    matched to the cache's images by image name (``image_06734``), so every cached image needs an entry.
    """
    path = Path(path)
    data = read_embeddings(path) if path.suffix.lower() not in (".h5", ".hdf5") else None
    if isinstance(data, np.ndarray):
        return store_precomputed(cache, data, str(path))
    by_name: dict[str, list[np.ndarray]] = {}
    if data is None:  # HDF5: one row per (image, caption) example, in every split
        with _open_hdf5(path) as f:
            splits = list(f.keys())
        for split in splits:
            d = read_hdf5_embeddings(path, split)
            for name, row in zip(d["names"], d["embeddings"], strict=True):
                by_name.setdefault(_image_key(name), []).append(row)
    else:
        for key, rows in data.items():
            by_name.setdefault(_image_key(key), []).extend(list(rows))
    names = [_image_key(n) for n in cache.names]
    missing = [n for n in names if n not in by_name]
    if missing:
        raise T2IError(
            f"no embeddings for {len(missing)} of {len(names)} images (e.g. {missing[0]!r})",
            path=path,
            hint="the embedding file must come from the same dataset as DATA",
        )
    return store_precomputed(cache, [np.stack(by_name[n]) for n in names], str(path))
