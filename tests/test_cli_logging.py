"""`t2igan -q/-v`: library log lines go to stderr through one handler (warnings prefixed `warning: `), the results a
command prints stay on stdout, `--quiet` hides info lines and progress bars (not warnings), `--verbose` adds debug
lines; the options work before and after the subcommand."""

from __future__ import annotations

from pathlib import Path

import pytest

from t2igan.apps.cli import main


def _train(run: Path, cache_root: Path, *extra: str, steps: int = 2) -> list[str]:
    return [
        "train",
        "reed_tiny",
        "--data",
        str(cache_root),
        "--out",
        str(run),
        "--set",
        "data.embeddings=attributes-onehot",
        "--set",
        "train.tensorboard=false",
        "--set",
        f"train.steps={steps}",
        "--set",
        "train.ckpt_every=1",
        *extra,
    ]


def test_quiet_and_verbose_before_and_after_the_subcommand(tmp_path, tiny_cache, capsys: pytest.CaptureFixture[str]):
    main(_train(tmp_path / "a", tiny_cache.root))
    out, err = capsys.readouterr()
    assert "done: step 2" in out and "training reed" not in out  # results on stdout, log lines on stderr
    assert "training reed/gan-int-cls for 2 steps" in err and "train: 100%" in err  # info line and progress bar
    assert "ReedSystem on cpu" not in err  # a debug line

    main(["-q", *_train(tmp_path / "b", tiny_cache.root)])
    out, err = capsys.readouterr()
    assert "done: step 2" in out and err == ""  # no info lines, no bar

    main([*_train(tmp_path / "c", tiny_cache.root), "--quiet"])
    out, err = capsys.readouterr()
    assert "done: step 2" in out and err == ""

    main([*_train(tmp_path / "d", tiny_cache.root), "-v"])
    err = capsys.readouterr().err
    assert "ReedSystem on cpu" in err and "training reed" in err

    main(["-v", "data", "show", str(tiny_cache.root), "--out", str(tmp_path / "show.png"), "-q"])  # last one wins
    out, err = capsys.readouterr()
    assert "wrote" in out and err == ""


def test_warnings_are_prefixed_and_survive_quiet(tmp_path, tiny_cache, capsys: pytest.CaptureFixture[str]):
    run = tmp_path / "run"
    main(_train(run, tiny_cache.root))
    capsys.readouterr()
    newest = run / "checkpoints" / "step_0000002" / "state.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])  # truncated: resuming falls back to step 1, with a warning
    main(["-q", *_train(run, tiny_cache.root, "--resume", steps=3)])
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: skipping bad checkpoint") and "done: step 3" in out
