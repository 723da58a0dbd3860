"""Cache preparation (idempotent, atomic) and the dataset's samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from t2igan.data.cache import PreparedCache, prepare_cache
from t2igan.data.dataset import TextImageDataset
from t2igan.data.synthetic import synthesize_cache
from t2igan.utils.errors import T2IError


def test_prepare_reed_synthetic(tiny_synth_dir, tmp_path):
    out = prepare_cache(tiny_synth_dir, sizes=(16,), out=tmp_path / "c", progress=False)
    c = PreparedCache.open(out)
    assert c.n == 60 and c.sizes == [16]
    assert c.images(16).shape == (60, 16, 16, 3) and c.images(16).dtype == np.uint8
    assert len(c.captions) == 60 and all(len(x) == 10 for x in c.captions)
    assert c.caption_offsets[-1] == len(c.flat_captions) == 600
    assert c.flat_captions[c.caption_offsets[5] + 2] == c.captions[5][2]
    assert c.attributes is not None and c.attributes.shape == (60, 4)
    assert set(c.split) == {"train", "test"}
    tr, te = c.train_indices(), c.test_indices()
    assert not set(c.class_ids[tr]) & set(c.class_ids[te])
    assert len(c.class_names) == 102


def test_prepare_is_idempotent_and_adds_sizes(tiny_synth_dir, tmp_path):
    out = prepare_cache(tiny_synth_dir, sizes=(16,), out=tmp_path / "c", progress=False)
    c = PreparedCache.open(out)
    c.save_embeddings("e", np.ones((c.n_captions, 3), np.float32), {"encoder": "ones"})
    mtime = (out / "meta.json").stat().st_mtime_ns
    assert prepare_cache(tiny_synth_dir, sizes=(16,), out=out, progress=False) == out
    assert (out / "meta.json").stat().st_mtime_ns == mtime
    prepare_cache(tiny_synth_dir, sizes=(16, 32), out=out, progress=False)
    c2 = PreparedCache.open(out)
    assert c2.sizes == [16, 32] and c2.has_embeddings("e")
    assert np.array_equal(c2.images(16), c.images(16))
    assert c2.fingerprint == c.fingerprint


def test_prepare_matches_png_pixels(tiny_synth_dir, tmp_path):
    from PIL import Image

    c = PreparedCache.open(prepare_cache(tiny_synth_dir, sizes=(32,), out=tmp_path / "c", progress=False))
    k = c.names.index("image_00007")
    png = np.asarray(Image.open(tiny_synth_dir / "images" / "image_00007.png"))
    assert np.array_equal(c.images(32)[k], png)


def test_embeddings_roundtrip_and_errors(tiny_cache):
    e = tiny_cache.embeddings("attributes-onehot")
    assert e.shape == (tiny_cache.n_captions, 21) and e.dtype == np.float32
    assert tiny_cache.embedding_meta("attributes-onehot")["dim"] == 21
    with pytest.raises(T2IError, match="no caption embeddings"):
        tiny_cache.embeddings("nope")
    with pytest.raises(ValueError):
        tiny_cache.save_embeddings("bad", np.zeros((3, 2), np.float32), {})
    with pytest.raises(T2IError):
        tiny_cache.has_embeddings("../evil")
    with pytest.raises(T2IError, match="64px"):
        tiny_cache.images(64)


def test_tiny_cache_fixture(tiny_cache):
    assert tiny_cache.n == 120 and tiny_cache.sizes == [16, 32]
    assert len(set(tiny_cache.class_ids.tolist())) == 102
    assert len(tiny_cache.train_indices()) and len(tiny_cache.test_indices())


def test_synthesize_cache_idempotent(tmp_path):
    out = synthesize_cache(tmp_path / "s", n=5, sizes=(16,), seed=2)
    m = (out / "meta.json").stat().st_mtime_ns
    synthesize_cache(tmp_path / "s", n=5, sizes=(16,), seed=2)
    assert (out / "meta.json").stat().st_mtime_ns == m


def test_batch_contract(tiny_cache):
    ds = TextImageDataset(tiny_cache, size=16, split="train", embeddings="attributes-onehot", k_avg=4, seed=1)
    b = ds.batch(np.arange(8), epoch=2)
    assert b["image"].shape == (8, 3, 16, 16) and b["image"].dtype == torch.float32
    assert b["image"].min() >= -1.0 and b["image"].max() <= 1.0
    assert b["text_emb"].shape == (8, 21) and b["wrong_emb"].shape == (8, 21)
    for key in ("class_id", "index", "caption_idx"):
        assert b[key].shape == (8,) and b[key].dtype == torch.int64
    cls = tiny_cache.class_ids
    assert (cls[b["wrong_index"].numpy()] != b["class_id"].numpy()).all()
    # oracle embeddings: every caption of an image is the image's attribute code → the average is exact
    assert torch.allclose(b["text_emb"].sum(1), torch.full((8,), 4.0))
    assert not torch.equal(b["text_emb"], b["wrong_emb"])
    assert (~tiny_cache.is_test[b["index"].numpy()]).all()


def test_batch_is_deterministic_and_order_free(tiny_cache):
    ds = TextImageDataset(tiny_cache, size=32, embeddings="attributes-onehot", seed=5)
    a = ds.batch(np.arange(10), 3)
    b = ds.batch(np.arange(9, -1, -1), 3)
    for k in ("image", "text_emb", "wrong_emb", "caption_idx", "index"):
        assert torch.equal(a[k], b[k].flip(0))
    c = ds.batch(np.arange(10), 4)
    assert not torch.equal(a["caption_idx"], c["caption_idx"]) or not torch.equal(a["image"], c["image"])
    single = ds[3]
    assert torch.equal(single["image"], ds.batch([3], 0)["image"][0])


def test_k_avg_averages_distinct_captions(tiny_cache, tmp_path):
    n = tiny_cache.n_captions
    # embedding = flat caption index → the mean tells which captions were averaged
    key = "test-index-emb"
    if not tiny_cache.has_embeddings(key):
        tiny_cache.save_embeddings(key, np.arange(n, dtype=np.float32)[:, None], {"encoder": "index"})
    ds = TextImageDataset(tiny_cache, size=16, embeddings=key, k_avg=4, flip=False)
    b = ds.batch(np.arange(len(ds)), 0)
    off = tiny_cache.caption_offsets[b["index"].numpy()]
    mean = b["text_emb"][:, 0].numpy()
    assert ((mean >= off) & (mean <= off + 9)).all()
    assert not np.allclose(mean, b["caption_idx"].numpy())  # really an average of several


def test_flip_and_raw_captions(tiny_cache):
    ds = TextImageDataset(tiny_cache, size=16, split="test", embeddings=None, flip=True, seed=0)
    noflip = TextImageDataset(tiny_cache, size=16, split="test", embeddings=None, flip=False, seed=0)
    idx = np.arange(len(ds))
    a, b = ds.batch(idx, 0), noflip.batch(idx, 0)
    flipped = [not torch.equal(a["image"][i], b["image"][i]) for i in range(len(idx))]
    assert any(flipped) and not all(flipped)
    i = flipped.index(True)
    assert torch.equal(a["image"][i], b["image"][i].flip(-1))
    assert isinstance(a["caption"][0], str) and "text_emb" not in a
    assert a["caption"][0] in tiny_cache.captions[int(a["index"][0])]


def test_epoch_order_is_a_permutation(tiny_cache):
    ds = TextImageDataset(tiny_cache, size=16)
    o = ds.epoch_order(0)
    assert sorted(o.tolist()) == list(range(len(ds))) and not np.array_equal(o, ds.epoch_order(1))


@pytest.mark.parametrize("split", ["train", "test", "all"])
def test_wrong_is_always_another_class_of_the_same_split(tiny_cache, split):
    ds = TextImageDataset(tiny_cache, size=16, split=split, embeddings="attributes-onehot")
    allowed = set(ds.indices.tolist())
    seen = set()
    for epoch in range(3):
        b = ds.batch(np.arange(len(ds)), epoch)
        w, own = b["wrong_index"].numpy(), b["index"].numpy()
        assert (tiny_cache.class_ids[w] != tiny_cache.class_ids[own]).all()
        assert set(w.tolist()) <= allowed
        seen |= set(w.tolist())
        off = tiny_cache.caption_offsets
        wc = b["wrong_caption_idx"].numpy()
        assert ((wc >= off[w]) & (wc < off[w + 1])).all()
    assert len(seen) > len(allowed) // 2  # spread over the split, not a few favourites


def test_single_class_split_falls_back_to_other_images(tmp_path):
    from t2igan.data.cache import CacheArrays, write_cache_files

    root = tmp_path / "one"
    root.mkdir()
    np.save(root / "images_16.npy", np.zeros((3, 16, 16, 3), np.uint8))
    caps = [["a"], ["b", "c"], ["d"]]
    write_cache_files(
        root,
        CacheArrays(["x", "y", "z"], caps, np.zeros(3, np.int64), ["only"], np.zeros(3, bool)),
        [16],
        "fp",
        {"kind": "test"},
    )
    with pytest.warns(UserWarning, match="one class"):
        ds = TextImageDataset(root, size=16, embeddings=None)
    b = ds.batch(np.arange(3), 0)
    assert (b["wrong_index"].numpy() != b["index"].numpy()).all()
    assert b["caption"][1] in ("b", "c")


def test_open_a_dataset_folder_finds_its_default_cache(tiny_synth_dir, tmp_path):
    import shutil

    src = shutil.copytree(tiny_synth_dir, tmp_path / "flowers")
    with pytest.raises(T2IError, match="not a prepared cache"):
        PreparedCache.open(src)
    prepare_cache(src, sizes=(16,), progress=False)  # default --out: <src>/.t2igan_cache
    c = PreparedCache.open(src)
    assert c.root == src / ".t2igan_cache" and c.n == 60
