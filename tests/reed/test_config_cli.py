import json

import pytest
import torch

from t2igan.apps.cli import main
from t2igan.training.config import load_config, parse_override, preset_names
from t2igan.training.reed_system import ReedSystem
from t2igan.utils.errors import T2IError


def test_presets_load_and_overrides():
    assert {"reed_paper", "reed_port", "reed_cpu", "reed_tiny"} <= set(preset_names())
    cfg = load_config("reed_paper", ["optim.lr=1e-4", "loss.variant=gan-cls", "model.ngf=64", "train.steps=10"])
    assert cfg.optim.lr == 1e-4 and cfg.loss.variant == "gan-cls" and cfg.train.steps == 10
    assert cfg.model.preset == "paper" and cfg.model.params == {"ngf": 64}
    assert parse_override("debug.nan_steps=[1, 2]") == ("debug.nan_steps", [1, 2])
    for paper in ("reed_paper",):
        c = load_config(paper)
        assert (c.optim.lr, c.optim.beta1, c.train.batch_size, c.train.epochs, c.data.k_avg) == (2e-4, 0.5, 64, 600, 4)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrr=1", "unknown config key 'optim.lrr'"),
        ("trian.steps=1", "unknown config key 'trian'"),
        ("train.steps=abc", "must be an integer"),
        ("loss.variant=gan-xyz", "loss.variant='gan-xyz' is unknown"),
        ("train.precision=fp8", "unknown"),
        ("nonsense", "bad override"),
    ],
)
def test_config_errors(override, message):
    with pytest.raises(T2IError, match=message):
        load_config("reed_tiny", [override])


def test_unknown_model_key_and_config_round_trip(tmp_path):
    cfg = load_config("reed_tiny", ["model.widht=3"])
    with pytest.raises(T2IError, match="unknown Reed model option"):
        ReedSystem(cfg, 12, torch.device("cpu"))
    cfg = load_config("reed_tiny", ["model.ngf=4"])
    cfg.save_yaml(tmp_path / "c.yaml")
    again = load_config(tmp_path / "c.yaml")
    assert again == cfg
    with pytest.raises(T2IError, match="no such config file or preset"):
        load_config("reed_nonexistent")


def test_cli_dry_run(capsys, tiny_cache):
    args = ["train", "-c", "reed_tiny", "--data", str(tiny_cache.root), "--set", "data.embeddings=attributes-onehot"]
    main([*args, "--dry-run"])
    out = capsys.readouterr().out
    assert "variant: gan-int-cls" in out and "ReedGenerator" in out and "21-d text" in out
    assert "threads: 1;" in out  # reed_tiny's train.threads: what training will use, not torch's current setting
    main([*args, "--threads", "2", "--dry-run"])
    assert "threads: 2;" in capsys.readouterr().out


def test_cli_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "-c", "reed_tiny", "--set", "optim.lrr=1", "--dry-run"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown config key") and "\n" not in err


def test_cli_train_and_resume(tmp_path, tiny_cache, capsys):
    run = tmp_path / "run"
    args = [
        "train",
        "reed_tiny",
        "--data",
        str(tiny_cache.root),
        "--out",
        str(run),
        "--set",
        "data.embeddings=attributes-onehot",
        "--set",
        "train.progress=false",
        "--set",
        "train.tensorboard=false",
        "--set",
        "train.steps=2",
    ]
    main(args)
    assert "done: step 2" in capsys.readouterr().out
    main(["train", "--out", str(run), "--resume", "--set", "train.steps=3"])  # config from the run folder
    captured = capsys.readouterr()
    assert "resumed from" in captured.err and "done: step 3" in captured.out
    assert json.loads((run / "pretrained" / "model_index.json").read_text())["step"] == 3
    main(["train", "--out", str(run), "--resume"])  # at the last step already: no NaN losses, a plain message
    assert "done: already at step 3; nothing to train" in capsys.readouterr().out


def test_precision_auto_resolves():
    from t2igan.training.system import resolve_precision

    assert resolve_precision("auto", torch.device("cpu")) in ("fp32", "bf16")
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert load_config("reed_cpu").train.precision == "auto"
