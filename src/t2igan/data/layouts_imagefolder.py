"""The Hugging Face *imagefolder* convention: images + ``metadata.jsonl`` or ``metadata.csv``.

Each row has ``file_name`` (relative to the metadata file's folder) and ``text`` (a caption, or in JSON lines a list
of captions); several rows may name the same file (their captions are merged). Optional columns: ``label`` /
``class`` (else the file's first folder, else one class ``default``) and ``split`` (``train``/``test``). Metadata in
``train/``, ``test/`` or ``validation/`` sub-folders sets the split (validation counts as test).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from t2igan.data.layouts import Source, SourceItem, _find_metadata, problem
from t2igan.utils.errors import T2IError


def _rows(meta: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        text = meta.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise T2IError(f"metadata is not UTF-8 (byte {e.start})", path=meta, hint="re-save it as UTF-8") from None
    rows: list[tuple[int, dict[str, Any]]] = []
    if meta.suffix == ".jsonl":
        for no, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise T2IError(f"line {no} is not JSON ({e.msg})", path=meta, hint="one JSON object per line") from None
            if not isinstance(row, dict):
                raise T2IError(f"line {no} is not a JSON object", path=meta, hint='e.g. {"file_name": …, "text": …}')
            rows.append((no, row))
    else:
        reader = csv.DictReader(text.splitlines())
        rows = [(no, dict(r)) for no, r in enumerate(reader, 2)]
        if reader.fieldnames is None:
            rows = []
    for no, row in rows:
        if "file_name" not in row or "text" not in row:
            raise T2IError(
                f"row {no} lacks a file_name or text column",
                path=meta,
                hint="imagefolder metadata needs the columns file_name and text",
            )
    return rows


def load_imagefolder(root: Path, skip_bad: bool = False) -> Source:
    source = Source("imagefolder", root, [], [])
    by_file: dict[Path, SourceItem] = {}
    for meta in _find_metadata(root):
        source.extra_files.append(meta)
        folder = meta.parent
        folder_split = {"test": "test", "validation": "test"}.get(folder.name, "train") if folder != root else None
        for no, row in _rows(meta):
            rel = str(row["file_name"] or "").strip()
            img = folder / rel
            if rel and not img.resolve().is_relative_to(root.resolve()):
                problem(
                    T2IError(
                        f"row {no}: file_name {rel!r} points outside the dataset folder",
                        path=meta,
                        hint="use paths relative to the metadata file's folder, inside the dataset",
                    ),
                    skip_bad,
                    source.skipped,
                )
                continue
            if not rel or not img.is_file():
                problem(
                    T2IError(
                        f"row {no}: image {rel!r} not found",
                        path=meta,
                        hint="file_name is relative to the metadata file's folder; or pass --skip-bad",
                    ),
                    skip_bad,
                    source.skipped,
                )
                continue
            text = row["text"]
            caps = [str(t) for t in text] if isinstance(text, list) else [] if text is None else [str(text)]
            if img.resolve() in by_file:
                item = by_file[img.resolve()]
                item.captions = (item.captions or []) + caps
                continue
            label = row.get("label", row.get("class"))
            if label is None or str(label).strip() == "":
                parts = Path(rel).parts
                label = parts[0] if len(parts) > 1 else "default"
            split = str(row.get("split") or folder_split or "train").strip().lower()
            item = SourceItem(
                name=(folder.relative_to(root) / rel).with_suffix("").as_posix(),
                image=img,
                class_name=str(label),
                split="test" if split in ("test", "validation") else "train",
                captions=caps,
                caption_file=meta,
            )
            by_file[img.resolve()] = item
            source.items.append(item)
    source.class_names = sorted({it.class_name for it in source.items})
    return source
