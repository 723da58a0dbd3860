"""Dataset layouts on disk → one in-memory `Source` that `prepare_cache` reads.

`load_source(path)` detects:

- **Reed** (Oxford-102, CUB-200-2011, synthetic flowers): ``images/`` or ``jpg/``, ``text_c10/<class>/<image>.txt``,
  ``allclasses.txt``, ``trainvalclasses.txt``, ``testclasses.txt``; CUB bounding boxes from ``images.txt`` +
  ``bounding_boxes.txt`` (in the root or ``CUB_200_2011/``); ``attributes.json`` for synthetic flowers.
- **StackGAN**: ``train|test/filenames.pickle``, ``char-CNN-RNN-embeddings.pickle``, ``class_info.pickle``
  (see `layouts_stackgan`).
- **Hugging Face imagefolder**: images + ``metadata.jsonl`` / ``metadata.csv`` with ``file_name`` and ``text``
  (see `layouts_imagefolder`).
- **COCO captions**: ``annotations/captions_*.json`` + image folders ``train2014/``, ``val2014/`` (see `layouts_coco`).

Problems are `T2IError`s naming the file; with ``skip_bad=True`` a per-item problem is recorded in
``source.skipped`` (and warned about) instead, and that item is left out.
"""

from __future__ import annotations

import errno
import json
import math
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from t2igan.data.decode import Box, read_caption_file
from t2igan.utils.errors import T2IError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass
class SourceItem:
    """One image: where it is, its class, its captions (inline or a file) and an optional crop box."""

    name: str
    image: Path
    class_name: str
    split: str = "train"
    captions: list[str] | None = None
    caption_file: Path | None = None
    box: Box | None = None
    attributes: list[int] | None = None
    style: list[float] | None = None  # synthetic flowers: per-image style factors (``Source.style_names``)


@dataclass
class Source:
    """A dataset as found on disk, before decoding."""

    kind: str
    root: Path
    items: list[SourceItem]
    class_names: list[str]
    attribute_names: list[str] = field(default_factory=list)
    attribute_values: list[list[str]] = field(default_factory=list)
    style_names: list[str] = field(default_factory=list)
    embeddings: np.ndarray | None = None  # [len(items), E, D] precomputed caption embeddings
    embedding_meta: dict[str, Any] = field(default_factory=dict)
    extra_files: list[Path] = field(default_factory=list)  # metadata files that also feed the fingerprint
    skipped: list[str] = field(default_factory=list)

    def read_captions(self, item: SourceItem) -> list[str]:
        if item.captions is not None:
            from t2igan.data.decode import clean_captions

            return clean_captions(item.captions, item.caption_file or item.image)
        if item.caption_file is None:
            raise T2IError("no captions for image", path=item.image, hint="add a caption file or pass --skip-bad")
        return read_caption_file(item.caption_file)


def problem(err: T2IError, skip_bad: bool, skipped: list[str]) -> None:
    """Raise ``err``, or with ``skip_bad`` warn and record it."""
    if not skip_bad:
        raise err
    warnings.warn(f"skipping: {err}", stacklevel=3)
    skipped.append(str(err))


def load_source(path: str | Path, skip_bad: bool = False) -> Source:
    """Detect the layout of the dataset folder ``path`` and list its items (no image is decoded here)."""
    root = Path(path)
    if not root.is_dir():
        raise T2IError(
            "dataset folder not found",
            path=root,
            hint="pass a folder in Reed, StackGAN, imagefolder or COCO layout (t2igan data synth makes one)",
        )
    if (root / "train" / "filenames.pickle").is_file() or (root / "test" / "filenames.pickle").is_file():
        from t2igan.data.layouts_stackgan import load_stackgan

        source = load_stackgan(root, skip_bad)
    elif (root / "text_c10").is_dir():
        source = load_reed(root, skip_bad)
    elif _find_metadata(root):
        from t2igan.data.layouts_imagefolder import load_imagefolder

        source = load_imagefolder(root, skip_bad)
    elif (root / "annotations").is_dir() and any((root / "annotations").glob("captions_*.json")):
        from t2igan.data.layouts_coco import load_coco

        source = load_coco(root, skip_bad)
    else:
        raise T2IError(
            "unknown dataset layout (no text_c10/, train/filenames.pickle, metadata.jsonl/metadata.csv or "
            "annotations/captions_*.json)",
            path=root,
            hint="see docs/datasets.md for the supported layouts",
        )
    check_item_files(source, skip_bad)
    if not source.items:
        raise T2IError(
            "empty dataset: no usable image with captions",
            path=root,
            hint="check the folder layout (docs/datasets.md)" + (" — every item was skipped" if source.skipped else ""),
        )
    return source


def regular_file_problem(path: Path, what: str) -> T2IError | None:
    """None when ``path`` is a regular file (after symlinks), else the error saying what it is instead.

    Checked with ``stat`` before anything opens the file: a FIFO or device would block a read forever, a symlink
    loop or a directory would fail deep inside Pillow or the fingerprint.
    """
    try:
        st = path.stat()
    except OSError as e:
        missing = "a dangling symlink" if path.is_symlink() else "file not found"
        reasons = {errno.ELOOP: "a symlink loop", errno.ENOENT: missing}
        reason = reasons.get(e.errno or 0, e.strerror or str(e))
        return T2IError(f"{what} cannot be read: {reason}", path=path, hint="fix or remove it, or pass --skip-bad")
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "not a file"
        return T2IError(f"{what} is {kind}, not a regular file", path=path, hint="fix or remove it, or pass --skip-bad")
    return None


def check_item_files(source: Source, skip_bad: bool) -> None:
    """Drop (with ``skip_bad``) or refuse items whose image or caption file is not a readable regular file."""
    kept = []
    for it in source.items:
        err = regular_file_problem(it.image, "image")
        if err is None and it.caption_file is not None and it.captions is None:
            err = regular_file_problem(it.caption_file, "caption file")
        if err is None:
            kept.append(it)
        else:
            problem(err, skip_bad, source.skipped)
    source.items = kept


def _find_metadata(root: Path) -> list[Path]:
    out = []
    for d in [root, *(root / s for s in ("train", "test", "validation"))]:
        out += [d / m for m in ("metadata.jsonl", "metadata.csv") if (d / m).is_file()]
    return out


# --- Reed ------------------------------------------------------------------------------------------------------
def read_class_list(path: Path) -> list[str]:
    if not path.is_file():
        raise T2IError(
            "split file missing",
            path=path,
            hint="Reed layout needs allclasses.txt, trainvalclasses.txt and testclasses.txt "
            "(class folder names of text_c10, one per line)",
        )
    try:
        names = [ln.strip() for ln in path.read_text(encoding="utf-8-sig").splitlines() if ln.strip()]
    except UnicodeDecodeError:
        raise T2IError("split file is not UTF-8", path=path, hint="re-save it as UTF-8") from None
    return names


def image_dir(root: Path) -> Path:
    for name in ("images", "jpg", "CUB_200_2011/images"):
        if (root / name).is_dir():
            return root / name
    raise T2IError(
        "no image folder (images/ or jpg/)", path=root, hint="put the images in images/ or jpg/ next to text_c10/"
    )


def index_images(folder: Path) -> dict[str, Path]:
    """Map both ``stem`` and ``<parent>/<stem>`` (relative to ``folder``) to each image file."""
    index: dict[str, Path] = {}
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith("."):
            rel = p.relative_to(folder).with_suffix("").as_posix()
            index.setdefault(rel, p)
            index.setdefault(p.stem, p)
    return index


def read_cub_boxes(root: Path) -> dict[str, Box]:
    """CUB ``images.txt`` + ``bounding_boxes.txt`` → {image stem: (x, y, w, h)}; empty when absent."""
    for base in (root, root / "CUB_200_2011"):
        images_txt, boxes_txt = base / "images.txt", base / "bounding_boxes.txt"
        if images_txt.is_file() and boxes_txt.is_file():
            break
    else:
        return {}
    ids = {}
    for ln in _read_text_lines(images_txt):
        parts = ln.split()
        if len(parts) >= 2:
            ids[parts[0]] = Path(parts[1]).stem
    boxes: dict[str, Box] = {}
    for k, ln in enumerate(_read_text_lines(boxes_txt), 1):
        parts = ln.split()
        if len(parts) < 5:
            continue
        try:
            x, y, w, h = (float(v) for v in parts[1:5])
        except ValueError:
            raise T2IError(
                f"bad line {ln!r}: expected 'id x y w h'",
                path=boxes_txt,
                hint="use the bounding_boxes.txt shipped with CUB-200-2011",
            ) from None
        if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
            raise T2IError(
                f"line {k}: box {x} {y} {w} {h} is not finite with a positive width and height",
                path=boxes_txt,
                hint="fix that line (x y width height in pixels) or delete bounding_boxes.txt to use centre crops",
            )
        if parts[0] in ids:
            boxes[ids[parts[0]]] = (x, y, w, h)
    return boxes


def _read_text_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 metadata file, or a one-line `T2IError` naming it."""
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise T2IError(
            f"not UTF-8 text (byte {e.start})", path=path, hint="re-save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from None
    except OSError as e:
        raise T2IError(f"cannot read ({e.strerror or e})", path=path) from None


def load_reed(root: Path, skip_bad: bool = False) -> Source:
    """Reed et al.'s layout (cvpr2016_flowers / cvpr2016_cub and the synthetic flowers)."""
    trainval = read_class_list(root / "trainvalclasses.txt")
    test = read_class_list(root / "testclasses.txt")
    allc = read_class_list(root / "allclasses.txt") if (root / "allclasses.txt").exists() else trainval + test
    overlap = set(trainval) & set(test)
    if overlap:
        raise T2IError(
            f"classes in both trainval and test: {sorted(overlap)[:3]}",
            path=root / "testclasses.txt",
            hint="the split must be class-disjoint",
        )
    classes = [c for c in allc if c in set(trainval) | set(test)] or trainval + test
    images = index_images(image_dir(root))
    boxes = read_cub_boxes(root)
    attrs = _read_attributes(root)
    source = Source("reed", root, [], classes)
    style = _style_rows(attrs) if attrs else {}
    if attrs:
        source.attribute_names = attrs["attribute_names"]
        source.attribute_values = attrs["attribute_values"]
        source.extra_files.append(root / "attributes.json")
        if style:
            from t2igan.data.synthetic import STYLE_FACTORS

            source.style_names = list(STYLE_FACTORS)
    source.extra_files += [
        root / f for f in ("allclasses.txt", "trainvalclasses.txt", "testclasses.txt") if (root / f).exists()
    ]
    test_set = set(test)
    seen: set[str] = set()
    for cls in classes:
        text_dir = root / "text_c10" / cls
        if not text_dir.is_dir():
            problem(
                T2IError(
                    "class folder missing",
                    path=text_dir,
                    hint="every class in the split files needs a text_c10/<class>/ folder",
                ),
                skip_bad,
                source.skipped,
            )
            continue
        for txt in sorted(text_dir.glob("*.txt")):
            stem = txt.stem
            img = images.get(f"{cls}/{stem}") or images.get(stem)
            if img is None:
                problem(
                    T2IError(
                        "no image for caption file",
                        path=txt,
                        hint=f"expected {stem}.jpg/.png under {image_dir(root).name}/, or pass --skip-bad",
                    ),
                    skip_bad,
                    source.skipped,
                )
                continue
            seen.add(stem)
            source.items.append(
                SourceItem(
                    name=stem,
                    image=img,
                    class_name=cls,
                    split="test" if cls in test_set else "train",
                    caption_file=txt,
                    box=boxes.get(stem),
                    attributes=attrs["images"].get(stem) if attrs else None,
                    style=style.get(stem),
                )
            )
    for stem, img in images.items():
        if "/" not in stem and stem not in seen and img.parent.name in set(classes) | {"images", "jpg"}:
            problem(
                T2IError(
                    "image has no caption file",
                    path=img,
                    hint=f"add text_c10/<class>/{stem}.txt or remove the image, or pass --skip-bad",
                ),
                skip_bad,
                source.skipped,
            )
    return source


def _style_rows(attrs: dict[str, Any]) -> dict[str, list[float]]:
    from t2igan.data.synthetic import STYLE_FACTORS

    """image name → its style factors (``STYLE_FACTORS`` order); {} when attributes.json has none. The per-factor
    lists of attributes.json follow the order of its ``images`` table."""
    table = attrs.get("style")
    if not isinstance(table, dict) or not all(k in table for k in STYLE_FACTORS):
        return {}
    names = list(attrs["images"])
    columns = [table[k] for k in STYLE_FACTORS]
    if not all(isinstance(c, list) and len(c) == len(names) for c in columns):
        return {}
    try:
        return {name: [float(c[i]) for c in columns] for i, name in enumerate(names)}
    except (TypeError, ValueError):
        return {}


def _read_attributes(root: Path) -> dict[str, Any] | None:
    path = root / "attributes.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        _ = data["attribute_names"], data["attribute_values"], data["images"]
    except (ValueError, KeyError, TypeError) as e:
        raise T2IError(
            f"bad attributes file ({e})", path=path, hint="regenerate it with t2igan data synth, or delete it"
        ) from None
    return data
