"""The MS-COCO captions layout (Chen et al. 2015, "Microsoft COCO Captions"): annotation files + image folders.

    annotations/captions_train2014.json   {"images": [{"id", "file_name", …}], "annotations": [{"image_id", "caption"}]}
    annotations/captions_val2014.json
    train2014/COCO_train2014_000000000009.jpg …
    val2014/…

Each ``captions_<name>.json`` reads its images from the folder ``<name>/`` (else ``images/<name>/``, else
``images/``). An image's captions are merged (COCO has about five). COCO has no classes: every image is in one class,
``coco``. Files whose name contains ``val`` or ``test`` are the test split, the others train (``captions_train2017``
+ ``captions_val2017`` work the same way).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from t2igan.data.layouts import Source, SourceItem, problem
from t2igan.utils.errors import T2IError

COCO_CLASS = "coco"


def find_coco(root: Path) -> list[Path]:
    """The caption annotation files of a COCO-style folder (sorted; [] if it is not one)."""
    folder = root / "annotations"
    return sorted(p for p in folder.glob("captions_*.json") if p.is_file()) if folder.is_dir() else []


def _read(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as e:
        raise T2IError(f"not UTF-8 (byte {e.start})", path=path, hint="re-save it as UTF-8") from None
    except ValueError as e:
        raise T2IError(f"not valid JSON ({e})", path=path, hint="use the captions_*.json files of COCO") from None
    ok = isinstance(doc, dict) and isinstance(doc.get("images"), list) and isinstance(doc.get("annotations"), list)
    if not ok:
        raise T2IError(
            "expected a COCO captions file (an object with 'images' and 'annotations' lists)",
            path=path,
            hint="use the captions_*.json files of COCO's annotations",
        )
    return doc["images"], doc["annotations"]


def _image_folder(root: Path, name: str) -> Path:
    for cand in (root / name, root / "images" / name, root / "images"):
        if cand.is_dir():
            return cand
    return root / name


def load_coco(root: Path, skip_bad: bool = False) -> Source:
    source = Source("coco", root, [], [COCO_CLASS])
    for ann_file in find_coco(root):
        source.extra_files.append(ann_file)
        name = ann_file.stem[len("captions_") :]
        split = "test" if ("val" in name or "test" in name) else "train"
        folder = _image_folder(root, name)
        images, annotations = _read(ann_file)
        captions: dict[Any, list[str]] = {}
        for k, a in enumerate(annotations):
            if not isinstance(a, dict) or "image_id" not in a or not isinstance(a.get("caption"), str):
                raise T2IError(f"annotation {k} lacks an image_id or a caption string", path=ann_file)
            captions.setdefault(a["image_id"], []).append(a["caption"])
        for k, im in enumerate(images):
            if not isinstance(im, dict) or "id" not in im or not isinstance(im.get("file_name"), str):
                raise T2IError(f"image entry {k} lacks an id or a file_name", path=ann_file)
            rel = im["file_name"].strip()
            path = folder / rel
            if not rel or not path.resolve().is_relative_to(root.resolve()):
                problem(
                    T2IError(f"image {k}: file_name {rel!r} points outside the dataset folder", path=ann_file),
                    skip_bad,
                    source.skipped,
                )
                continue
            caps = captions.get(im["id"])
            if not caps:
                problem(
                    T2IError(f"image {rel!r} has no caption", path=ann_file, hint="pass --skip-bad to leave it out"),
                    skip_bad,
                    source.skipped,
                )
                continue
            source.items.append(
                SourceItem(
                    name=f"{name}/{Path(rel).with_suffix('').as_posix()}",
                    image=path,
                    class_name=COCO_CLASS,
                    split=split,
                    captions=caps,
                    caption_file=ann_file,
                )
            )
    return source
