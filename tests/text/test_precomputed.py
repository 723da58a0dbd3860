"""Published embeddings: StackGAN pickle, Reed .t7 (a fixture written byte by byte), the port's HDF5; the marker."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from t2igan.text import PrecomputedEmbeddings, load_text_encoder
from t2igan.text.precomputed import (
    read_embeddings,
    read_hdf5_embeddings,
    read_reed_t7,
    read_reed_t7_dir,
    read_stackgan_pickle,
    store_precomputed,
)
from t2igan.utils.errors import T2IError


def _t7_float_table(arrays: dict[str, np.ndarray]) -> bytes:
    """A minimal Lua Torch 7 binary file: a table {name = torch.FloatTensor} (what torch.save writes)."""
    out = bytearray()
    ints = lambda *v: struct.pack(f"<{len(v)}i", *v)  # noqa: E731
    longs = lambda *v: struct.pack(f"<{len(v)}q", *v)  # noqa: E731

    def string(s: bytes) -> bytes:
        return ints(2, len(s)) + s  # TYPE_STRING, length, bytes

    def raw_string(s: bytes) -> bytes:
        return ints(len(s)) + s

    out += ints(3, 1, len(arrays))  # TYPE_TABLE, object index, number of entries
    index = 2
    for key, arr in arrays.items():
        a = np.ascontiguousarray(arr, dtype=np.float32)
        out += string(key.encode())
        out += ints(4, index) + raw_string(b"V 1") + raw_string(b"torch.FloatTensor")  # TYPE_TORCH
        strides = [int(np.prod(a.shape[i + 1 :])) for i in range(a.ndim)]
        out += ints(a.ndim) + longs(*a.shape) + longs(*strides) + longs(1)  # sizes, strides, 1-based offset
        out += ints(4, index + 1) + raw_string(b"V 1") + raw_string(b"torch.FloatStorage") + longs(a.size)
        out += a.tobytes()
        index += 2
    return bytes(out)


def test_reed_t7_file_and_folder(tmp_path: Path) -> None:
    txt = np.random.default_rng(0).normal(size=(10, 1024)).astype(np.float32)
    folder = tmp_path / "flowers_icml" / "class_00001"
    folder.mkdir(parents=True)
    (folder / "image_06734.t7").write_bytes(_t7_float_table({"txt": txt, "img": np.zeros((1024, 10))}))
    np.testing.assert_array_equal(read_reed_t7(folder / "image_06734.t7"), txt)
    (folder / "image_06735.t7").write_bytes(_t7_float_table({"txt": txt[:5].T.copy()}))  # stored dim × captions
    assert read_reed_t7(folder / "image_06735.t7").shape == (5, 1024)
    both = read_reed_t7_dir(tmp_path / "flowers_icml")
    assert list(both) == ["class_00001/image_06734", "class_00001/image_06735"]
    assert isinstance(read_embeddings(tmp_path / "flowers_icml"), dict)
    (folder / "bad.t7").write_bytes(_t7_float_table({"img": txt}))
    with pytest.raises(T2IError, match="no 'txt' tensor"):
        read_reed_t7(folder / "bad.t7")
    (folder / "junk.t7").write_bytes(b"\x07\x00\x00\x00garbage")
    with pytest.raises(T2IError, match="not a readable"):
        read_reed_t7(folder / "junk.t7")


def test_stackgan_pickle(tmp_path: Path) -> None:
    emb = np.random.default_rng(1).normal(size=(3, 10, 1024)).astype(np.float32)
    (tmp_path / "char-CNN-RNN-embeddings.pickle").write_bytes(pickle.dumps(emb, protocol=2))
    got = read_stackgan_pickle(tmp_path / "char-CNN-RNN-embeddings.pickle")
    np.testing.assert_array_equal(got, emb)
    (tmp_path / "list.pickle").write_bytes(pickle.dumps([list(map(float, r)) for r in emb[:, 0]], protocol=2))
    assert read_embeddings(tmp_path / "list.pickle").shape == (3, 1, 1024)
    (tmp_path / "str.pickle").write_bytes(pickle.dumps("hello"))
    with pytest.raises(T2IError, match="N×10×1024"):
        read_stackgan_pickle(tmp_path / "str.pickle")


def test_stackgan_pickle_with_code_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pickle").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(T2IError):
        read_stackgan_pickle(tmp_path / "evil.pickle")


def test_hdf5_port_layout(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "flowers.hdf5"
    rng = np.random.default_rng(2)
    with h5py.File(path, "w") as f:
        for i in range(3):
            ex = f.create_group(f"train/image_{i:05d}_{i}")
            ex.create_dataset("name", data=f"image_{i:05d}".encode())
            ex.create_dataset("img", data=np.void(b"\xff\xd8 not really a jpeg"))
            ex.create_dataset("embeddings", data=rng.normal(size=1024).astype(np.float32))
            ex.create_dataset("class", data=b"class_00001")
            ex.create_dataset("txt", data=b"this flower has pink petals")
    d = read_hdf5_embeddings(path, "train")
    assert d["embeddings"].shape == (3, 1024) and d["names"][0] == "image_00000"
    assert d["classes"] == ["class_00001"] * 3 and d["captions"][2] == "this flower has pink petals"
    with pytest.raises(T2IError, match="no split 'valid'"):
        read_embeddings(path, split="valid")


def test_marker_cannot_encode_new_text(tmp_path: Path) -> None:
    PrecomputedEmbeddings(dim=1024, source="char-CNN-RNN-embeddings.pickle").save_pretrained(tmp_path / "te")
    enc = load_text_encoder(tmp_path / "te")
    assert isinstance(enc, PrecomputedEmbeddings) and enc.dim == 1024
    with pytest.raises(T2IError, match=r"precomputed text embeddings.*cannot encode new captions"):
        enc.encode(["a flower with pink petals"])


def test_store_precomputed_into_cache(fake_cache) -> None:
    per_image = np.random.default_rng(3).normal(size=(fake_cache.n, 10, 8)).astype(np.float32)
    key = store_precomputed(fake_cache, per_image, "emb.pickle")
    emb = fake_cache.embeddings(key)
    assert emb.shape == (len(fake_cache.flat_captions), 8)
    np.testing.assert_array_equal(emb[fake_cache.caption_offsets[1]], per_image[1, 0])
    assert store_precomputed(fake_cache, per_image, "emb.pickle") == key
    with pytest.raises(T2IError, match="rows for"):
        store_precomputed(fake_cache, per_image[:-1], "emb.pickle")


def test_import_reed_t7_folder_and_hdf5_into_real_cache(tiny_cache, tmp_path: Path) -> None:
    from t2igan.text.precomputed import import_precomputed

    rng = np.random.default_rng(4)
    root = tmp_path / "flowers_icml"
    per_image = {}
    for name, cls in zip(tiny_cache.names, tiny_cache.class_ids, strict=True):
        per_image[name] = rng.normal(size=(10, 8)).astype(np.float32)
        (root / f"class_{cls + 1:05d}").mkdir(parents=True, exist_ok=True)
        (root / f"class_{cls + 1:05d}" / f"{name}.t7").write_bytes(_t7_float_table({"txt": per_image[name]}))
    key = import_precomputed(tiny_cache, root)
    emb = tiny_cache.embeddings(key)
    off = tiny_cache.caption_offsets
    np.testing.assert_array_equal(emb[off[7] : off[8]], per_image[tiny_cache.names[7]][: off[8] - off[7]])
    from click.testing import CliRunner

    from t2igan.apps.cli import cli

    r = CliRunner().invoke(cli, ["encode", "import", str(tiny_cache.root), "--embeddings", str(root)])
    assert r.exit_code == 0 and r.stdout.strip() == key, r.output

    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "part.h5", "w") as f:
        ex = f.create_group(f"train/{tiny_cache.names[0]}_0")
        ex.create_dataset("name", data=tiny_cache.names[0].encode())
        ex.create_dataset("embeddings", data=np.zeros(8, np.float32))
    with pytest.raises(T2IError, match=r"no embeddings for 119 of 120 images"):
        import_precomputed(tiny_cache, tmp_path / "part.h5")
