"""Real dataset layouts, each built here in its exact on-disk shape: Reed (Oxford-102 jpg/, CUB images/ + bbox),
StackGAN pickles (incl. a Python 2 pickle and a malicious one) and Hugging Face imagefolder (jsonl and csv)."""

from __future__ import annotations

import io
import json
import os
import pickle
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from t2igan.data.cache import PreparedCache, prepare_cache
from t2igan.data.dataset import TextImageDataset
from t2igan.data.layouts import load_source
from t2igan.data.safe_pickle import safe_load, safe_loads
from t2igan.utils.errors import T2IError


def _img(path, size=(40, 30), colour=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _reed_common(root, classes_train, classes_test):
    root.mkdir(parents=True, exist_ok=True)
    (root / "allclasses.txt").write_text("\n".join(classes_train + classes_test) + "\n")
    (root / "trainvalclasses.txt").write_text("\n".join(classes_train) + "\n")
    (root / "testclasses.txt").write_text("\n".join(classes_test) + "\n")


def test_reed_oxford_flat_jpg(tmp_path):
    root = tmp_path / "flowers"
    _reed_common(root, ["class_00001", "class_00002"], ["class_00003"])
    k = 0
    for c in ("class_00001", "class_00002", "class_00003"):
        for _ in range(2):
            k += 1
            _img(root / "jpg" / f"image_{k:05d}.jpg", colour=(20 * k, 0, 0))
            (root / "text_c10" / c).mkdir(parents=True, exist_ok=True)
            (root / "text_c10" / c / f"image_{k:05d}.txt").write_text(f"caption a {k}\ncaption b {k}\n")
    src = load_source(root)
    assert src.kind == "reed" and len(src.items) == 6 and src.class_names[0] == "class_00001"
    c = PreparedCache.open(prepare_cache(root, sizes=(16,), progress=False))
    assert c.root == root / ".t2igan_cache" and c.n == 6 and c.captions[0] == ["caption a 1", "caption b 1"]
    assert list(c.split) == ["train"] * 4 + ["test"] * 2 and c.attributes is None


def _cub(root):
    """CUB-200-2011 in Reed's layout: images/<class>/<name>.jpg, text_c10, split files, CUB bbox files."""
    classes = ["001.Black_footed_Albatross", "002.Laysan_Albatross"]
    _reed_common(root, classes[:1], classes[1:])
    lines, boxes = [], []
    for i, c in enumerate(classes, 1):
        name = f"{c.split('.')[1]}_000{i}_1"
        im = Image.new("RGB", (200, 100), (0, 0, 255))
        im.paste((255, 0, 0), (120, 40, 140, 60))  # a 20×20 red "bird" at x=120, y=40
        (root / "images" / c).mkdir(parents=True)
        im.save(root / "images" / c / f"{name}.jpg", quality=95)
        (root / "text_c10" / c).mkdir(parents=True)
        (root / "text_c10" / c / f"{name}.txt").write_text("a small red bird\nthis bird is red\n")
        lines.append(f"{i} {c}/{name}.jpg")
        boxes.append(f"{i} 120.0 40.0 20.0 20.0")
    (root / "CUB_200_2011").mkdir()
    (root / "CUB_200_2011" / "images.txt").write_text("\n".join(lines) + "\n")
    (root / "CUB_200_2011" / "bounding_boxes.txt").write_text("\n".join(boxes) + "\n")
    return root


def test_reed_cub_bbox_crop(tmp_path):
    root = _cub(tmp_path / "cub")
    src = load_source(root)
    assert src.items[0].box == (120.0, 40.0, 20.0, 20.0)
    c = PreparedCache.open(prepare_cache(root, sizes=(30,), progress=False))
    img = c.images(30)[0].astype(int)
    # square of side 1.5 × 20 = 30 around the box: the central 20×20 is red, the 5-px border blue
    assert img[15, 15, 0] > 200 and img[15, 15, 2] < 60
    assert img[1, 1, 2] > 200 and img[1, 1, 0] < 60
    assert c.class_names == ["001.Black_footed_Albatross", "002.Laysan_Albatross"]


def test_square_crop_box_edges():
    from t2igan.data.decode import square_crop_box

    assert square_crop_box(200, 100, (0, 0, 20, 20)) == (0, 0, 30, 30)  # shifted inside
    assert square_crop_box(200, 100, (50, 10, 100, 80)) == (25, -25, 175, 125)  # taller than the image: padded
    assert square_crop_box(100, 60) == (20, 0, 80, 60)


def _stackgan(root, py2_pickles=False):
    keys = {
        "train": [
            "001.Black_footed_Albatross/Black_Footed_Albatross_0001_1",
            "001.Black_footed_Albatross/Black_Footed_Albatross_0002_1",
        ],
        "test": ["002.Laysan_Albatross/Laysan_Albatross_0003_1"],
    }
    rng = np.random.default_rng(0)
    embs = {}
    for split, ks in keys.items():
        (root / split).mkdir(parents=True)
        embs[split] = rng.standard_normal((len(ks), 10, 16)).astype(np.float32)
        dump = _py2_dumps if py2_pickles else (lambda o: pickle.dumps(o, protocol=2))
        (root / split / "filenames.pickle").write_bytes(dump(ks))
        (root / split / "char-CNN-RNN-embeddings.pickle").write_bytes(dump(embs[split]))
        (root / split / "class_info.pickle").write_bytes(dump([int(k[:3]) for k in ks]))
        for k in ks:
            _img(root / "CUB_200_2011" / "images" / f"{k}.jpg", size=(50, 50))
    # captions for the train split only; test falls back to placeholders
    for k in keys["train"]:
        (root / "text" / k).parent.mkdir(parents=True, exist_ok=True)
        (root / "text" / f"{k}.txt").write_text("\n".join(f"bird caption {j}" for j in range(10)) + "\n")
    return root, embs


class _Py2Pickler(pickle._Pickler):
    """Writes str/bytes the way Python 2 did (BINSTRING), numpy under its old numpy.core name."""

    def save_bytes(self, obj):
        self.write(pickle.BINSTRING + len(obj).to_bytes(4, "little") + obj)
        self.memoize(obj)

    def save_str(self, obj):
        self.save_bytes(obj.encode("latin1"))

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)
    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def _py2_dumps(obj):
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


@pytest.mark.parametrize("py2", [False, True])
def test_stackgan_layout_imports_embeddings(tmp_path, py2):
    root, embs = _stackgan(tmp_path / "birds", py2_pickles=py2)
    if py2:
        assert b"numpy.core.multiarray" in (root / "train" / "char-CNN-RNN-embeddings.pickle").read_bytes()
    src = load_source(root)
    assert src.kind == "stackgan" and len(src.items) == 3 and src.embeddings.shape == (3, 10, 16)
    c = PreparedCache.open(prepare_cache(root, sizes=(16,), progress=False))
    assert c.has_embeddings("precomputed")
    e = c.embeddings("precomputed")
    assert e.shape == (30, 16)
    np.testing.assert_allclose(e[:10], embs["train"][0])
    np.testing.assert_allclose(e[20:], embs["test"][0])
    assert c.captions[0][3] == "bird caption 3" and "not available" in c.captions[2][0]
    assert list(c.split) == ["train", "train", "test"]
    with pytest.warns(UserWarning, match="one class"):
        ds = TextImageDataset(c, size=16, embeddings="precomputed")
    assert ds.batch([0, 1], 0)["text_emb"].shape == (2, 16)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/t2igan_pwned",))


def test_malicious_pickle_is_refused(tmp_path):
    path = tmp_path / "filenames.pickle"
    path.write_bytes(pickle.dumps([_Evil()]))
    with pytest.raises(T2IError, match=r"refusing to load pickle.*system"):
        safe_load(path)
    assert not os.path.exists("/tmp/t2igan_pwned")
    with pytest.raises(T2IError, match="refusing"):
        safe_loads(pickle.dumps(pickle.Pickler))  # a class reference is not data either
    with pytest.raises(T2IError, match="cannot read pickle"):
        safe_loads(b"\x80\x02]q")  # truncated


def test_safe_pickle_plain_data_roundtrip():
    obj = {"a": [1, 2.5, "x", b"y", (None, True)], "arr": np.arange(6, dtype=np.float32).reshape(2, 3)}
    for proto in (2, 4, 5):
        out = safe_loads(pickle.dumps(obj, protocol=proto))
        assert out["a"] == obj["a"] and np.array_equal(out["arr"], obj["arr"])


def test_stackgan_pickle_in_tree_refused(tmp_path):
    root, _ = _stackgan(tmp_path / "birds")
    (root / "train" / "class_info.pickle").write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(T2IError, match=r"class_info\.pickle"):
        load_source(root)


def test_imagefolder_jsonl_and_csv(tmp_path):
    root = tmp_path / "hf"
    _img(root / "train" / "roses" / "a.png")
    _img(root / "train" / "tulips" / "b.png")
    (root / "train" / "metadata.jsonl").write_text(
        json.dumps({"file_name": "roses/a.png", "text": ["a red rose", "red petals"]})
        + "\n"
        + json.dumps({"file_name": "tulips/b.png", "text": "a tulip"})
        + "\n"
        + json.dumps({"file_name": "roses/a.png", "text": "one more rose caption"})
        + "\n"
    )
    _img(root / "test" / "c.jpg", size=(30, 40))
    (root / "test" / "metadata.csv").write_text(
        'file_name,text,label\nc.jpg,a yellow flower,daisy\nc.jpg,"yellow, small",daisy\n'
    )
    src = load_source(root)
    assert src.kind == "imagefolder" and len(src.items) == 3
    c = PreparedCache.open(prepare_cache(root, sizes=(16,), progress=False))
    by_name = dict(zip(c.names, c.captions, strict=True))
    assert by_name["train/roses/a"] == ["a red rose", "red petals", "one more rose caption"]
    assert by_name["test/c"] == ["a yellow flower", "yellow, small"]
    assert sorted(c.class_names) == ["daisy", "roses", "tulips"]
    assert list(c.split) == ["train", "train", "test"]


def test_imagefolder_bad_metadata(tmp_path):
    root = tmp_path / "hf"
    _img(root / "a.png")
    (root / "metadata.jsonl").write_text('{"file_name": "a.png"}\n')
    with pytest.raises(T2IError, match=r"metadata\.jsonl.*file_name or text"):
        load_source(root)
    (root / "metadata.jsonl").write_text('{"file_name": "a.png", "text": "x"}\nnot json\n')
    with pytest.raises(T2IError, match="line 2 is not JSON"):
        load_source(root)
    _img(tmp_path / "outside.png")
    (root / "metadata.jsonl").write_text('{"file_name": "../outside.png", "text": "x"}\n')
    with pytest.raises(T2IError, match="outside the dataset folder"):
        load_source(root)
    (root / "metadata.jsonl").write_text('{"file_name": "a.png", "text": ""}\n')
    with pytest.raises(T2IError, match=r"metadata\.jsonl: empty caption"):
        prepare_cache(root, sizes=(16,), progress=False)


def test_unknown_layout(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(T2IError, match="unknown dataset layout"):
        load_source(tmp_path / "x")


def test_large_jpeg_reduced_decode_keeps_the_box(tmp_path):
    """Full-size photos are decoded at a reduced JPEG scale; the bbox crop must land on the same pixels."""
    from t2igan.data.decode import load_square

    im = Image.new("RGB", (1600, 1200), (0, 0, 255))
    im.paste((255, 0, 0), (1000, 400, 1200, 600))  # 200×200 red box
    path = tmp_path / "big.jpg"
    im.save(path, quality=95)
    box = (1000.0, 400.0, 200.0, 200.0)
    fast = load_square(path, box, target=32)
    full = load_square(path, box, target=None)
    assert full.size == (300, 300) and fast.size[0] < 300 and fast.size[0] >= 64
    small = [np.asarray(x.resize((32, 32), Image.BICUBIC)).astype(int) for x in (fast, full)]
    assert np.abs(small[0] - small[1]).mean() < 3
    assert small[0][16, 16, 0] > 200 and small[0][1, 1, 2] > 200
