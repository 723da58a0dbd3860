"""`t2igan evaluate --stage N`: one stage / branch of a multi-stage generator is evaluated (StackGAN++ branches)."""

from __future__ import annotations

import json

import pytest

from t2igan.apps.cli import main

QUIET = [
    "--set", "data.embeddings=attributes-onehot", "--set", "model.preset=tiny", "--set", "train.progress=false",
    "--set", "train.tensorboard=false", "--set", "train.steps=2", "--set", "train.batch_size=8",
    "--set", "train.sample_every=100", "--set", "train.ckpt_every=100", "--set", "data.size=32",
]  # fmt: skip


@pytest.fixture(scope="module")
def tree_run(tiny_cache, tmp_path_factory):
    run = tmp_path_factory.mktemp("sgpp") / "pp"
    main(["train", "--model", "stackgan++", "--data", str(tiny_cache.root), "--out", str(run), *QUIET])
    return run


def test_pipeline_generate_picks_the_stage(tree_run, tiny_cache) -> None:
    from t2igan.metrics.sources import pipeline_generate
    from t2igan.utils.errors import T2IError

    captions, ids = [tiny_cache.flat_captions[0]] * 2, [0, 0]
    fine, snap = pipeline_generate(tree_run, tiny_cache)
    coarse, snap1 = pipeline_generate(tree_run, tiny_cache, stage=1)
    assert fine(captions, [0, 1], ids).shape[-1] == 32 and "stage" not in snap
    assert coarse(captions, [0, 1], ids).shape[-1] == 16 and snap1["stage"] == 1
    with pytest.raises(T2IError, match="stage 3 does not exist: this generator has 2"):
        pipeline_generate(tree_run, tiny_cache, stage=3)


def test_evaluate_cli_stage_writes_its_own_metrics(tree_run, tiny_cache, tmp_path) -> None:
    ev = tmp_path / "ev16"
    main(["evaluator", "train", str(tiny_cache.root), "--out", str(ev), "--size", "16", "--steps", "2", "--width", "8"])
    args = ["evaluate", str(tree_run), "--metrics", "attr_acc,fid", "--n", "10", "--evaluator", str(ev)]
    main([*args, "--stage", "1", "--report", str(tmp_path / "r1")])
    m1 = json.loads((tree_run / "metrics_stage1.json").read_text())
    assert "fid_evaluator" in m1 and not (tree_run / "metrics.json").exists()
    line = json.loads((tree_run / "metrics.jsonl").read_text().splitlines()[-1])
    assert line["snapshot"]["stage"] == 1
    assert (tree_run / "eval_stage1" / "samples.png").is_file()


def test_sharpness_reports_every_branch_at_its_own_size(tree_run, load_benchmark) -> None:
    import math

    bench = load_benchmark("stackgan_step")
    out = bench.sharpness(tree_run, n=4)
    assert out["sizes"] == [16, 32] and len(out["stage_hf_shares"]) == 2 and len(out["real_hf_shares"]) == 2
    assert all(0 <= v <= 1 for v in out["stage_hf_shares"]) and all(math.isfinite(v) for v in out["real_hf_shares"])
    assert (
        out["stage2_hf_share"] == out["stage_hf_shares"][-1]
        and out["real_images_hf_share"] == out["real_hf_shares"][-1]
    )
    peaks = out["stage_peak_ratios"] + out["real_peak_ratios"]
    assert len(out["stage_peak_ratios"]) == 2 and all(v >= 1 for v in peaks)
    assert out["stage2_peak_ratio"] == out["stage_peak_ratios"][-1] and out["stage1_upsampled_peak_ratio"] >= 1
    with pytest.raises(SystemExit, match="needs at least 2 captions"):
        bench.main(["--sharpness", str(tree_run), "--sharpness-n", "1"])
