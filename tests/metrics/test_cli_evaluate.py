"""End to end on the data layer's tiny cache: train the evaluator, train two tiny Reed runs, evaluate and compare."""

import json

import pytest

from t2igan.apps.cli import main


@pytest.fixture(scope="module")
def two_runs(tiny_cache, tmp_path_factory):
    from t2igan.training.config import load_config
    from t2igan.training.trainer import Trainer

    root = tmp_path_factory.mktemp("runs")
    runs = []
    for variant in ("gan", "gan-int-cls"):
        cfg = load_config(
            "reed_tiny",
            overrides=[
                f"data.cache={tiny_cache.root}",
                "data.embeddings=attributes-onehot",
                f"run_dir={root / variant}",
                f"loss.variant={variant}",
                "train.progress=false",
                "train.tensorboard=false",
            ],
        )
        Trainer(cfg).fit()
        runs.append(root / variant)
    return runs


def _train_tiny_evaluator(cache, out):
    main(["evaluator", "train", str(cache.root), "--out", str(out), "--size", "16", "--steps", "5", "--width", "8"])


def test_evaluator_train_cli(tiny_cache, tmp_path, capsys):
    _train_tiny_evaluator(tiny_cache, tmp_path / "ev")
    out = capsys.readouterr().out
    assert "held-out real" in out and (tmp_path / "ev" / "model.safetensors").exists()
    with pytest.raises(SystemExit) as e:
        main(["evaluator", "train", str(tiny_cache.root), "--out", str(tmp_path / "ev2"), "--size", "48"])
    assert e.value.code == 2


def test_evaluate_two_runs(two_runs, tiny_cache, tmp_path, capsys):
    _train_tiny_evaluator(tiny_cache, tmp_path / "ev")
    report = tmp_path / "cmp"
    main(
        [
            "evaluate",
            *map(str, two_runs),
            "--metrics",
            "all",
            "--n",
            "20",
            "--evaluator",
            str(tmp_path / "ev"),
            "--report",
            str(report),
        ]
    )
    for run in two_runs:
        m = json.loads((run / "metrics.json").read_text())
        assert {
            "attr_acc",
            "fid_evaluator",
            "is_evaluator",
            "kid_evaluator",
            "nn_evaluator",
            "diversity_evaluator",
        } <= set(m)
        assert m["fid_evaluator"]["protocol"] == "fid_evaluator_20_test-eval_16px-bicubic"
        line = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
        assert line["snapshot"]["name"].endswith("pretrained") and "attr_acc" in line["results"]
        assert (run / "eval" / "nn_evaluator.png").exists() and (run / "eval" / "samples.png").exists()
        assert m["nn_evaluator"]["grid_discriminator"].endswith("nn_discriminator.png")  # the run's own D space
    md = (report / "comparison.md").read_text()
    assert "| gan |" in md and "| gan-int-cls |" in md and "attr acc unseen" in md
    assert "bar_fid_evaluator.png" in (report / "comparison.html").read_text()
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(two_runs[0]), "--metrics", "rprec", "--n", "20", "--evaluator", str(tmp_path / "ev")])
    assert e.value.code == 2 and "--sje" in capsys.readouterr().err


def test_attribute_accuracy_for_the_demo(two_runs, tiny_cache, tmp_path):
    from t2igan.metrics import attribute_accuracy_for
    from t2igan.sampling import T2IPipeline

    ev_dir = tmp_path / "ev"
    a = attribute_accuracy_for(two_runs[1], tiny_cache, evaluator_dir=ev_dir, n=20, evaluator_steps=3)
    assert {"seen", "unseen", "chance", "ceiling", "per_attribute", "protocol"} <= set(a)
    assert 0.0 <= a["unseen"] <= 1.0 and a["protocol"].startswith("attr_acc_20_test+train-eval_32px")
    stamp = (ev_dir / "model.safetensors").stat().st_mtime_ns
    pipe = T2IPipeline.from_pretrained(two_runs[1] / "pretrained")
    b = attribute_accuracy_for(pipe, tiny_cache, evaluator_dir=ev_dir, n=20, evaluator_steps=3)
    assert b["unseen"] == a["unseen"]  # same samples, same evaluator (reused, not retrained)
    assert (ev_dir / "model.safetensors").stat().st_mtime_ns == stamp


def test_open_cache_prepares_a_dataset_folder(tiny_synth_dir, tmp_path):
    import shutil

    from t2igan.data.cache import open_cache
    from t2igan.utils.errors import T2IError

    src = tmp_path / "flowers"
    shutil.copytree(tiny_synth_dir, src)
    cache = open_cache(src)
    assert cache.n == 60 and cache.attributes is not None
    assert open_cache(cache.root).fingerprint == cache.fingerprint
    with pytest.raises(T2IError, match="no such data folder"):
        open_cache(tmp_path / "missing")


def test_default_report_dir_stays_with_the_runs():
    from pathlib import Path

    from t2igan.metrics.evaluate import default_report_dir

    assert default_report_dir([Path("runs/a")]) == Path("runs/a/eval")
    assert default_report_dir([Path("runs/a"), Path("runs/b")]) == Path("runs/comparison")
    assert default_report_dir([Path("a"), Path("b")]) == Path("comparison")  # nothing in common: the current folder
    assert default_report_dir([Path("/x/runs/a"), Path("/x/runs/b")]) == Path("/x/runs/comparison")
