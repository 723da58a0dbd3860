"""StackGAN's data layout (Zhang et al. 2017, github.com/hanzhanggit/StackGAN), read without running pickled code.

::

    <root>/train/filenames.pickle                 list of keys, e.g. "002.Laysan_Albatross/Laysan_Albatross_0002_1027"
    <root>/train/char-CNN-RNN-embeddings.pickle   float32 [N, 10, 1024] (or a list of [10, 1024] arrays)
    <root>/train/class_info.pickle                list of N class ids
    <root>/test/…                                 the same for the test classes
    <root>/CUB_200_2011/images/<key>.jpg          birds (+ images.txt, bounding_boxes.txt → bbox crop)
    <root>/jpg/<name>.jpg                         flowers
    <root>/text/<key>.txt | text_c10/<class>/<name>.txt   captions (optional)

The embeddings are imported into the cache under the key ``"precomputed"``, one row per caption. Without caption
text, each image gets placeholder captions (one per embedding) so the embedding rows still line up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from t2igan.data.layouts import Source, SourceItem, index_images, problem, read_cub_boxes
from t2igan.data.safe_pickle import safe_load
from t2igan.utils.errors import T2IError

PLACEHOLDER = "(caption text not available; precomputed embedding {j})"


def _embeddings(path: Path, n: int) -> np.ndarray:
    raw = safe_load(path)
    try:
        arr = np.asarray(raw, dtype=np.float32)
    except (ValueError, TypeError):
        raise T2IError(
            "embeddings are not a numeric array", path=path, hint="expected N×10×1024 float32 char-CNN-RNN embeddings"
        ) from None
    if arr.ndim == 2:
        arr = arr[:, None, :]
    if arr.ndim != 3 or arr.shape[0] != n:
        raise T2IError(
            f"embeddings have shape {arr.shape}, expected ({n}, 10, D) to match filenames.pickle",
            path=path,
            hint="use the pickles of the same split and release",
        )
    return arr


def _image_for(root: Path, key: str, index: dict[str, Path]) -> Path | None:
    for base in (root / "CUB_200_2011" / "images", root / "images", root):
        for ext in (".jpg", ".jpeg", ".png"):
            p = base / f"{key}{ext}"
            if p.is_file():
                return p
    return index.get(key) or index.get(Path(key).name)


def _caption_file(root: Path, key: str, class_name: str) -> Path | None:
    name = Path(key).name
    for p in (
        root / "text" / f"{key}.txt",
        root / "text_c10" / class_name / f"{name}.txt",
        root / "text" / class_name / f"{name}.txt",
    ):
        if p.is_file():
            return p
    return None


def load_stackgan(root: Path, skip_bad: bool = False) -> Source:
    """Items of both splits (train first), with their precomputed embeddings aligned to ``source.items``."""
    from t2igan.data.decode import read_caption_file

    image_root = next(
        (p for p in (root / "CUB_200_2011" / "images", root / "images", root / "jpg") if p.is_dir()), root
    )
    index = index_images(image_root)
    boxes = read_cub_boxes(root)
    source = Source("stackgan", root, [], [])
    rows: list[np.ndarray] = []
    for split in ("train", "test"):
        folder = root / split
        if not (folder / "filenames.pickle").is_file():
            continue
        names = safe_load(folder / "filenames.pickle")
        if not isinstance(names, (list, tuple)) or not all(isinstance(k, (str, bytes)) for k in names):
            raise T2IError(
                "expected a list of file keys", path=folder / "filenames.pickle", hint="use StackGAN's filenames.pickle"
            )
        keys = [k.decode("utf-8") if isinstance(k, bytes) else str(k) for k in names]
        emb_path = folder / "char-CNN-RNN-embeddings.pickle"
        if not emb_path.is_file():
            raise T2IError(
                "embeddings file missing",
                path=emb_path,
                hint="StackGAN layout needs char-CNN-RNN-embeddings.pickle next to filenames.pickle",
            )
        emb = _embeddings(emb_path, len(keys))
        class_info = safe_load(folder / "class_info.pickle") if (folder / "class_info.pickle").is_file() else None
        if class_info is not None and len(class_info) != len(keys):
            raise T2IError(
                f"{len(class_info)} class ids for {len(keys)} files",
                path=folder / "class_info.pickle",
                hint="use the class_info.pickle of the same split",
            )
        source.extra_files += [
            p for p in (folder / "filenames.pickle", emb_path, folder / "class_info.pickle") if p.is_file()
        ]
        for i, key in enumerate(keys):
            prefix = key.split("/")[0] if "/" in key else ""
            if prefix and prefix not in ("jpg", "images"):
                cls = prefix
            elif class_info is not None:
                cls = f"class_{int(class_info[i]):05d}"
            else:
                cls = "default"
            img = _image_for(root, key, index)
            if img is None:
                problem(
                    T2IError(
                        f"no image for key {key!r}",
                        path=folder / "filenames.pickle",
                        hint=f"expected {image_root}/{key}.jpg, or pass --skip-bad",
                    ),
                    skip_bad,
                    source.skipped,
                )
                continue
            e = emb.shape[1]
            txt = _caption_file(root, key, cls)
            caps: list[str] = []
            if txt is not None:
                try:
                    caps = read_caption_file(txt)[:e]
                except T2IError as err:
                    problem(err, skip_bad, source.skipped)
                    continue
            caps += [PLACEHOLDER.format(j=j + 1) for j in range(len(caps), e)]
            source.items.append(
                SourceItem(
                    name=Path(key).as_posix(),
                    image=img,
                    class_name=cls,
                    split=split,
                    captions=caps,
                    caption_file=txt,
                    box=boxes.get(Path(key).name),
                )
            )
            rows.append(emb[i])
    if not source.extra_files:
        raise T2IError("no train/ or test/ filenames.pickle", path=root, hint="see docs/datasets.md")
    source.class_names = sorted({it.class_name for it in source.items})
    if rows:
        source.embeddings = np.stack(rows)
        source.embedding_meta = {
            "encoder": "char-CNN-RNN (precomputed, StackGAN pickles)",
            "source": str(root.resolve()),
        }
    overlap = {it.class_name for it in source.items if it.split == "train"} & {
        it.class_name for it in source.items if it.split == "test"
    }
    if overlap:
        raise T2IError(
            f"classes in both train/ and test/: {sorted(overlap)[:3]}",
            path=root,
            hint="the StackGAN split must be class-disjoint",
        )
    return source
