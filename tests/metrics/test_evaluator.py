"""The attribute evaluator, caption parsing and the metrics that run on an EvalContext (fake flowers)."""

import json

import numpy as np
import pytest

from t2igan.metrics.captions import VocabularyParser, named_attribute_targets
from t2igan.metrics.context import EvalContext
from t2igan.metrics.evaluator import load_evaluator
from t2igan.metrics.registry import REGISTRY, load_all, resolve
from t2igan.utils.errors import T2IError

from .conftest import NAMES, oracle_generator


def test_vocabulary_parser_disambiguates_shared_colour_words():
    p = VocabularyParser(["petal_color", "center_color"], [NAMES, NAMES])
    assert p("this flower has red petals and a blue center") == {"petal_color": "red", "center_color": "blue"}
    assert p("a blue center and red petals") == {"petal_color": "red", "center_color": "blue"}
    assert p("a flower with yellow petals") == {"petal_color": "yellow"}
    named = named_attribute_targets(["a flower"], ["petal_color", "center_color"], [NAMES, NAMES], parser=p)
    assert named.tolist() == [[-1, -1]]


def test_evaluator_learns_and_round_trips(trained_evaluator, fake_cache, tmp_path):
    acc = trained_evaluator.report["heldout_accuracy"]
    assert acc["all"]["overall"] > 0.9, acc
    trained_evaluator.save_pretrained(tmp_path / "ev")
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert report["heldout_accuracy"]["all"]["overall"] == acc["all"]["overall"]
    loaded = load_evaluator(tmp_path / "ev")
    assert loaded.report == report and loaded.fingerprint == trained_evaluator.fingerprint
    imgs = fake_cache.images(32)[:20]
    a, b = trained_evaluator.predict(imgs), loaded.predict(imgs)
    assert all((a[k] == b[k]).all() for k in a)
    with pytest.raises(T2IError, match="evaluator train"):
        load_evaluator(tmp_path)


def test_resolve_metric_names():
    load_all()
    assert "attr_acc" in resolve("all", {"evaluator"}) and "rprec_sje" not in resolve("all", {"evaluator"})
    assert resolve("attr,fid") == ["attr_acc", "fid_evaluator"]
    with pytest.raises(T2IError, match="unknown metric"):
        resolve("fdi")


def _ctx(cache, evaluator, tmp_path, wrong=False):
    return EvalContext(
        cache,
        oracle_generator(cache, wrong=wrong),
        n=60,
        evaluator=evaluator,
        out_dir=tmp_path,
        feature_cache_dir=tmp_path / "feat",
        progress=False,
    )


def test_metrics_separate_a_right_from_a_wrong_generator(fake_cache, trained_evaluator, tmp_path):
    load_all()
    good, bad = _ctx(fake_cache, trained_evaluator, tmp_path), _ctx(fake_cache, trained_evaluator, tmp_path, True)
    g, b = REGISTRY["attr_acc"].fn(good), REGISTRY["attr_acc"].fn(bad)
    assert g["unseen"]["overall"] > 0.9 and g["seen"]["overall"] > 0.9
    assert b["unseen"]["per_attribute"]["petal_color"] < 0.2
    assert g["protocol"].startswith("attr_acc_60_")
    assert REGISTRY["fid_evaluator"].fn(good)["value"] < REGISTRY["fid_evaluator"].fn(bad)["value"]
    is_good = REGISTRY["is_evaluator"].fn(good)
    assert 1.0 <= is_good["value"] <= 9.0 and is_good["splits"] == 10
    assert is_good["real_test"] == pytest.approx(is_good["value"], rel=0.2)  # the oracle draws what real images show
    kid = REGISTRY["kid_evaluator"].fn(good)
    assert np.isfinite(kid["value"])
    cached = list((tmp_path / "feat").glob("evaluator_test_*.npz"))
    assert len(cached) == 1


def test_nearest_neighbours_and_diversity(fake_cache, trained_evaluator, tmp_path):
    load_all()
    ctx = _ctx(fake_cache, trained_evaluator, tmp_path)
    nn = REGISTRY["nn_evaluator"].fn(ctx)
    assert nn["value"] > 0 and (tmp_path / "nn_evaluator.png").exists()
    div = REGISTRY["diversity_evaluator"].fn(ctx)
    assert not div["mode_collapse"]

    def collapsed(captions, seeds):
        return oracle_generator(fake_cache)(captions, [0] * len(seeds))

    ctx2 = EvalContext(
        fake_cache, collapsed, n=60, evaluator=trained_evaluator, progress=False, feature_cache_dir=tmp_path / "feat"
    )
    assert REGISTRY["diversity_evaluator"].fn(ctx2)["mode_collapse"]


def test_named_attributes_of_synthetic_captions_match_the_images(tiny_cache):
    offsets = tiny_cache.caption_offsets
    owner = np.repeat(np.arange(tiny_cache.n), np.diff(offsets))
    named = named_attribute_targets(tiny_cache.flat_captions, tiny_cache.attribute_names, tiny_cache.attribute_values)
    mask = named >= 0
    assert mask.any(axis=1).all()  # every caption names something
    assert (named[mask] == tiny_cache.attributes[owner][mask]).all()
