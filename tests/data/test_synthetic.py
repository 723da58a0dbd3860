"""Synthetic flowers: determinism, attributes, captions, split, on-disk layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

from t2igan.data.synthetic import ATTRIBUTES, SyntheticFlowers, render_flowers, write_synthetic_dataset


def test_attribute_counts_meet_the_spec():
    assert len(ATTRIBUTES["petal_colour"]) >= 8
    assert len(ATTRIBUTES["centre_colour"]) >= 5
    assert len(ATTRIBUTES["petal_shape"]) >= 3
    assert len(ATTRIBUTES["petal_count"]) >= 4


def test_render_is_deterministic_and_batch_independent():
    f = SyntheticFlowers(seed=3)
    cls = f.class_ids(12)
    a = f.render(np.arange(12), cls, 32)
    b = f.render(np.arange(6, 12), cls[6:], 32)
    assert a.dtype == np.uint8 and a.shape == (12, 32, 32, 3)
    assert np.array_equal(a[6:], b)
    assert not np.array_equal(SyntheticFlowers(seed=4).render(np.arange(2), cls[:2], 32), a[:2])


def test_render_any_size_and_empty_batch():
    f = SyntheticFlowers()
    for s in (16, 48, 128):
        assert f.render(np.arange(2), f.class_ids(2), s).shape == (2, s, s, 3)
    assert render_flowers(np.zeros((0, 4), int), f.sample_style(np.arange(0)), 16).shape == (0, 16, 16, 3)


def test_petal_colour_dominates_the_flower():
    f = SyntheticFlowers()
    style = f.sample_style(np.arange(2))
    style["texture"][:] = 0
    imgs = render_flowers(np.array([[0, 0, 0, 3], [6, 0, 0, 3]]), style, 64).astype(float)  # red / blue petals
    yy, xx = np.mgrid[0:64, 0:64] + 0.5
    for k, (hi, lo) in enumerate([(0, 2), (2, 0)]):
        r = np.hypot(xx - (0.5 + style["cx"][k]) * 64, yy - (0.5 + style["cy"][k]) * 64) / (style["radius"][k] * 64)
        ring = imgs[k][(r > 0.45) & (r < 0.75)].mean(0)
        assert ring[hi] > ring[lo] + 40


def test_split_is_class_disjoint_and_covers_every_value():
    f = SyntheticFlowers(seed=0)
    assert len(f.class_names) == 102 and len(f.test_classes) == 20
    train = f.class_attributes[f.trainval_classes]
    for a, values in enumerate(ATTRIBUTES.values()):
        assert set(train[:, a]) == set(range(len(values)))
    assert len({tuple(r) for r in f.class_attributes.tolist()}) == 102  # classes are distinct combinations


def test_captions_vary_and_use_the_vocabulary():
    f = SyntheticFlowers()
    caps = [c for i in range(30) for c in f.captions(i, int(f.class_ids(30)[i]))]
    assert len(caps) == 300 and len(set(caps)) > 150
    text = " ".join(caps).lower()
    for word in ("petals", "this flower has", "a flower with", "the petals are"):
        assert word in text
    assert any(w in text for w in ("stamen", "pistil", "anthers", "stigma"))
    assert " a orange" not in text and "a black anthers" not in text


def test_captions_name_the_true_attributes():
    f = SyntheticFlowers()
    c = int(f.class_ids(1)[0])
    petal = ATTRIBUTES["petal_colour"][f.class_attributes[c, 0]]
    caps = f.captions(0, c)
    from t2igan.data.synthetic_captions import PETAL_COLOUR_WORDS

    assert any(any(w in cap for w in PETAL_COLOUR_WORDS[petal]) for cap in caps)


def test_written_layout(tiny_synth_dir):
    root = tiny_synth_dir
    trainval = (root / "trainvalclasses.txt").read_text().split()
    test = (root / "testclasses.txt").read_text().split()
    assert len(trainval) == 82 and len(test) == 20 and not set(trainval) & set(test)
    assert len(list((root / "images").glob("*.png"))) == 60
    txts = sorted((root / "text_c10").rglob("*.txt"))
    assert len(txts) == 60 and all(len(t.read_text().splitlines()) == 10 for t in txts[:5])
    attrs = json.loads((root / "attributes.json").read_text())
    assert attrs["attribute_names"] == list(ATTRIBUTES) and len(attrs["images"]) == 60
    classes = {t.parent.name for t in txts}
    assert classes & set(test) and classes & set(trainval)


def test_write_is_atomic_and_replaces(tmp_path):
    out = write_synthetic_dataset(tmp_path / "d", n=3, size=16, seed=1)
    write_synthetic_dataset(out, n=2, size=16, seed=1)
    assert len(list((out / "images").glob("*.png"))) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_caption_attributes_parses_the_grammar_exactly():
    from t2igan.data.synthetic import caption_attributes

    f = SyntheticFlowers()
    cls = f.class_ids(60)
    named = 0
    for i in range(60):
        truth = {a: ATTRIBUTES[a][int(v)] for a, v in zip(ATTRIBUTES, f.class_attributes[cls[i]], strict=True)}
        for cap in f.captions(i, int(cls[i])):
            got = caption_attributes(cap)
            assert got and all(truth[k] == v for k, v in got.items()), (cap, got, truth)
            named += len(got)
    assert 1.5 < named / 600 < 4  # partial descriptions: not every caption names everything


def test_caption_attributes_free_text():
    from t2igan.data.synthetic import caption_attributes

    assert caption_attributes("A flower with pinkish purple petals and a black center") == {
        "petal_colour": "magenta",
        "centre_colour": "black",
    }
    assert caption_attributes("five thin white petals") == {
        "petal_colour": "white",
        "petal_shape": "thin",
        "petal_count": "5",
    }
    assert caption_attributes("a photo of a cat") == {}


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    import t2igan.data.synthetic_write as sw

    calls = {"n": 0}
    real = sw.render_flowers

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sw, "render_flowers", flaky)
    with pytest.raises(KeyboardInterrupt):
        write_synthetic_dataset(tmp_path / "d", n=6, size=16, chunk=3)
    assert list(tmp_path.iterdir()) == []
