"""`t2igan train --model stackgan --stage 1`, then `--stage1 DIR`, and `--model stackgan++` (the issue's commands)."""

from __future__ import annotations

import json

import pytest

from t2igan.apps.cli import main

QUIET = [
    "--set", "data.embeddings=attributes-onehot", "--set", "model.preset=tiny", "--set", "train.progress=false",
    "--set", "train.tensorboard=false", "--set", "train.steps=2", "--set", "train.batch_size=8",
    "--set", "train.sample_every=100", "--set", "train.ckpt_every=100",
]  # fmt: skip


def _index(run) -> dict:
    return json.loads((run / "pretrained" / "model_index.json").read_text())


def test_model_and_stage_flags_train_both_stages_and_the_tree(tmp_path, tiny_cache, capsys) -> None:
    data = ["--data", str(tiny_cache.root)]
    s1, s2, pp = tmp_path / "s1", tmp_path / "s2", tmp_path / "pp"
    main(["train", "--model", "stackgan", "--stage", "1", *data, "--out", str(s1), *QUIET, "--set", "data.size=16"])
    assert "training stackgan for 2 steps" in capsys.readouterr().err  # no Reed variant printed
    stage2 = ["--model", "stackgan", "--stage1", str(s1)]
    main(["train", *stage2, *data, "--out", str(s2), *QUIET, "--set", "data.size=32"])
    assert "done: step 2" in capsys.readouterr().out
    config = (s2 / "config.yaml").read_text()
    assert "stage: 2" in config and f"stage1: {s1}" in config
    assert _index(s2)["step"] == 2
    main(["train", "--model", "stackgan++", *data, "--out", str(pp), *QUIET, "--set", "data.size=32"])
    assert "training stackgan++" in capsys.readouterr().err and _index(pp)["step"] == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "reed", "--stage", "2"], "--stage/--stage1 are StackGAN options"),
        (["--model", "stackgan++", "--config", "reed_cpu"], "is a reed config"),
        (["--model", "stackgan", "--stage", "1", "--stage1", "runs/x"], "--stage1 is for Stage-II"),
        (["--model", "vqgan"], "no CPU preset for --model 'vqgan'"),
    ],
)
def test_model_flag_errors_are_one_line(args, message, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["train", *args, "--dry-run"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("error:")
