"""The COCO captions layout: annotations/captions_*.json + image folders, one class, val → test split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from t2igan.apps.cli import main
from t2igan.data.cache import PreparedCache, prepare_cache
from t2igan.data.layouts import load_source
from t2igan.utils.errors import T2IError


def make_coco(root: Path, n_train: int = 4, n_val: int = 2, year: str = "2014") -> Path:
    """A tiny COCO-style folder: COCO_<split><year>_<id>.jpg images and ~2 captions each, as the real files."""
    for split, n, start in (("train", n_train, 9), ("val", n_val, 100)):
        name = f"{split}{year}"
        images, annotations = [], []
        for k in range(n):
            iid = start + k
            file_name = f"COCO_{name}_{iid:012d}.jpg"
            (root / name).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (48, 32), (40 * k, 200 - 30 * k, 90)).save(root / name / file_name)
            images.append({"id": iid, "file_name": file_name, "width": 48, "height": 32})
            annotations += [
                {"id": 2 * iid, "image_id": iid, "caption": f"A photo of thing {iid}."},
                {"id": 2 * iid + 1, "image_id": iid, "caption": f"Something number {iid} on a table"},
            ]
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        doc = {"info": {}, "images": images, "annotations": annotations[::-1]}  # annotations in any order
        (root / "annotations" / f"captions_{name}.json").write_text(json.dumps(doc))
    return root


def test_coco_is_detected_one_class_val_is_test(tmp_path) -> None:
    root = make_coco(tmp_path / "coco")
    src = load_source(root)
    assert src.kind == "coco" and src.class_names == ["coco"] and len(src.items) == 6
    cache = PreparedCache.open(prepare_cache(root, sizes=(16,), progress=False))
    assert cache.n == 6 and len(cache.class_names) == 1
    assert len(cache.train_indices()) == 4 and len(cache.test_indices()) == 2
    k = cache.names.index("train2014/COCO_train2014_000000000010")
    assert sorted(cache.captions[k]) == ["A photo of thing 10.", "Something number 10 on a table"]
    assert cache.images(16).shape == (6, 16, 16, 3)
    assert PreparedCache.open(prepare_cache(root, sizes=(16,), progress=False)).fingerprint == cache.fingerprint


def test_coco_2017_names_and_cli_prepare(tmp_path, capsys) -> None:
    root = make_coco(tmp_path / "coco17", n_train=3, n_val=1, year="2017")
    main(["data", "prepare", str(root), "--size", "16"])
    out = capsys.readouterr().out
    assert "4 images, 8 captions" in out and "3 train / 1 test" in out


def test_coco_bad_files_are_one_line_errors(tmp_path) -> None:
    root = make_coco(tmp_path / "coco")
    (root / "train2014" / "COCO_train2014_000000000010.jpg").unlink()
    with pytest.raises(T2IError, match=r"file not found|cannot be read"):
        load_source(root)
    with pytest.warns(UserWarning, match=r"skipping: .*file not found"):
        assert len(load_source(root, skip_bad=True).items) == 5
    ann = root / "annotations" / "captions_val2014.json"
    ann.write_text("{not json")
    with pytest.raises(T2IError, match="not valid JSON") as e:
        load_source(root)
    assert "\n" not in str(e.value) and "captions_val2014.json" in str(e.value)
    ann.write_text(json.dumps({"images": [{"id": 1, "file_name": "../../x.jpg"}], "annotations": []}))
    with pytest.raises(T2IError, match="outside the dataset folder"):
        load_source(root)
    ann.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1}]}))
    with pytest.raises(T2IError, match="lacks an image_id or a caption"):
        load_source(root)
