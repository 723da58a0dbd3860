"""Evaluation during training (train.eval_every): records, the best checkpoint, its export, the validation subset,
and the style heads it reads z's effect with."""

import json

import numpy as np
import pytest

from t2igan.data.cache import PreparedCache
from t2igan.data.oracle_text import save_attribute_onehot
from t2igan.data.synthetic import synthesize_cache
from t2igan.metrics.context import EvalContext
from t2igan.metrics.evaluator import train_evaluator
from t2igan.metrics.style_factors import TARGETS, spread, style_targets
from t2igan.metrics.training_eval import EvalHook
from t2igan.training.config import load_config
from t2igan.training.trainer import Trainer


@pytest.fixture(scope="module")
def cache_with_evaluator(tmp_path_factory):
    """300 synthetic flowers at 16 px (enough for a few validation images per split) with one-hot embeddings."""
    root = synthesize_cache(tmp_path_factory.mktemp("evalhook") / "cache", n=300, sizes=(16,))
    cache = PreparedCache.open(root)
    save_attribute_onehot(cache)
    ev = train_evaluator(cache, size=16, steps=30, seed=0, batch=32, width=8, progress=False)
    ev.save_pretrained(root / "evaluator")
    return cache


def _cfg(cache, run, *extra):
    return load_config(
        None,
        [
            "model.preset=tiny",
            "data.size=16",
            f"data.cache={cache.root}",
            "data.embeddings=attributes-onehot",
            "train.batch_size=8",
            "train.steps=4",
            "train.progress=false",
            "train.tensorboard=false",
            "train.sample_every=1000",
            "train.ckpt_every=2",
            "train.threads=1",
            "train.eval_every=2",
            "train.eval_n=8",
            f"run_dir={run}",
            *extra,
        ],
    )


def test_eval_hook_records_keeps_and_exports_the_best(cache_with_evaluator, tmp_path):
    cfg = _cfg(cache_with_evaluator, tmp_path / "run")
    hook = EvalHook.for_trainer_config(cfg)
    trainer = Trainer(cfg, callbacks=[hook])
    trainer.fit()
    lines = [json.loads(ln) for ln in (tmp_path / "run" / "logs" / "eval.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [2, 4]
    for r in lines:
        assert 0.0 <= r["attr_unseen"] <= 1.0 and r["fid_evaluator"] >= 0.0
        assert "attr_seen_petal_colour" in r and "style_position" in r and r["protocol"].endswith("-val_16px-bicubic")
    best = max(lines, key=lambda r: r["score"])
    (best_dir,) = (tmp_path / "run" / "checkpoints" / "best").iterdir()
    assert best_dir.name == f"step_{best['step']:07d}"
    index = json.loads((tmp_path / "run" / "pretrained" / "model_index.json").read_text())
    assert index["step"] == best["step"]  # what is exported is what was selected

    # A resumed run keeps the best score so far (a worse evaluation after resuming does not replace it).
    cfg2 = _cfg(cache_with_evaluator, tmp_path / "run", "train.steps=6")
    hook2 = EvalHook.for_trainer_config(cfg2)
    Trainer(cfg2, callbacks=[hook2], resume=True).fit()
    assert hook2.records[0]["step"] == 6
    assert hook2.best == max(best["score"], hook2.records[0]["score"])


def test_validation_and_reported_subsets_are_disjoint(cache_with_evaluator):
    for split in ("train", "test"):
        val = EvalContext(cache_with_evaluator, None, subset="val").pool(split)
        rep = EvalContext(cache_with_evaluator, None, subset="eval").pool(split)
        full = EvalContext(cache_with_evaluator, None, subset="all").pool(split)
        assert len(val) and len(rep)
        assert not set(val) & set(rep) and set(val) | set(rep) == set(full)


def test_style_targets_see_only_the_visible_rotation(cache_with_evaluator):
    cache = cache_with_evaluator
    targets, bg = style_targets(cache)
    assert targets.shape == (cache.n, len(TARGETS)) and bg.shape == (cache.n,)
    # Turning a k-petal flower by 2π/k gives the same picture: the rotation targets must not change.
    style = np.asarray(cache.style).copy()
    k = np.array([float(v) for v in cache.attribute_values[3]])[np.asarray(cache.attributes)[:, 3]]
    style[:, list(cache.style_names).index("rotation")] += 2 * np.pi / k

    class Turned:
        style_names, attribute_names = cache.style_names, cache.attribute_names
        attribute_values, attributes = cache.attribute_values, cache.attributes

    Turned.style = style
    turned, _ = style_targets(Turned)
    rot = [TARGETS.index("rotation_cos"), TARGETS.index("rotation_sin")]
    assert np.allclose(turned[:, rot], targets[:, rot], atol=1e-4)


def test_spread_is_zero_for_identical_samples_and_grows_with_variation():
    same = np.ones((3, 4, len(TARGETS)), np.float32)
    bg_same = np.zeros((3, 4), np.int64)
    s = spread(same, bg_same)
    assert all(v == 0.0 for v in s.values())
    rng = np.random.default_rng(0)
    varied = spread(rng.normal(size=(3, 4, len(TARGETS))), rng.integers(0, 8, (3, 4)))
    assert all(v > 0.0 for v in varied.values())


def test_evaluator_style_heads_read_real_style(cache_with_evaluator):
    ev = train_evaluator(cache_with_evaluator, size=16, steps=60, seed=0, batch=32, width=8, progress=False)
    report = ev.report["heldout_accuracy"]
    assert set(report["style_r2"]) == set(TARGETS) and 0.0 <= report["background_accuracy"] <= 1.0
    reg, bg = ev.predict_style(np.asarray(cache_with_evaluator.images(16))[:10])
    assert reg.shape == (10, len(TARGETS)) and bg.shape == (10,)
