"""Runs that blow up while staying finite stop with one line and export nothing (training/divergence.py); a full disk
while checkpointing is one line and leaves the earlier checkpoints intact (utils/io.py). Through the real CLI."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from t2igan.apps.cli import main
from t2igan.utils.checkpoint import list_checkpoints, load_checkpoint


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.endswith(errors[0]), err[-2000:]
    return errors[0]


def _args(hx: Any, sandbox: Path, run: Path, *extra: str) -> list[str]:
    return hx.train_args(hx.cache_of(sandbox), run, "train.tensorboard=false", "train.ckpt_every=1", *extra)


@pytest.mark.parametrize("lr", ["1e6", "1e38"])
def test_finite_divergence_stops_and_exports_nothing(
    lr: str, hardening_sandbox: Path, hx: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    err = _cli_error(_args(hx, hardening_sandbox, run, f"optim.lr={lr}"), capsys)
    assert "error: training diverged: " in err and "lower optim.lr" in err
    assert not (run / "pretrained").exists()
    assert list_checkpoints(run / "checkpoints") == []  # the very first step blew up: nothing diverged was saved


def test_mostly_skipped_steps_stop_the_run(
    hardening_sandbox: Path, hx: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Never 3 bad steps in a row (the NaN guard's rule), but 3 of the first 5: the share rule stops the run after
    the good checkpoints it had written."""
    run = tmp_path / "run"
    args = _args(hx, hardening_sandbox, run, "debug.nan_steps=[1,2,4,5,7]", "train.max_bad_steps=3")
    err = _cli_error(args, capsys)
    assert "training diverged: 3 of the last 5 steps were skipped as non-finite (at step 5)" in err
    assert not (run / "pretrained").exists()
    kept = [p.name for p in list_checkpoints(run / "checkpoints")]
    assert kept == ["step_0000002", "step_0000003", "step_0000004"]  # the good ones before the stop, all valid
    for p in list_checkpoints(run / "checkpoints"):
        load_checkpoint(p)


def _weights_blow_up_at(step: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the system's step multiply G's weights by 1e4 once, at ``step`` (a finite explosion)."""
    import torch

    from t2igan.training.reed_system import ReedSystem

    real = ReedSystem.train_step

    def train_step(self: Any, batch: Any, k: int) -> Any:
        out = real(self, batch, k)
        if k == step:
            with torch.no_grad():
                for p in self.G.parameters():
                    p.mul_(1e4)
        return out

    monkeypatch.setattr(ReedSystem, "train_step", train_step)


def test_divergence_keeps_the_last_good_checkpoint(
    hardening_sandbox: Path, hx: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    _weights_blow_up_at(5, monkeypatch)  # the 6th step
    run = tmp_path / "run"
    err = _cli_error(_args(hx, hardening_sandbox, run), capsys)
    assert "training diverged: the weights of G grew 1e+04× (RMS" in err and "by step 6" in err
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step_0000003", "step_0000004", "step_0000005"]
    assert not (run / "pretrained").exists()


@pytest.mark.parametrize("form", ["OSError", "SafetensorError"])
def test_disk_full_while_checkpointing(
    form: str, hardening_sandbox: Path, hx: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The 4th checkpoint's tensor file cannot be written: one line, checkpoints 1-3 intact, nothing half-written."""
    import safetensors.torch
    from safetensors import SafetensorError

    real, calls = safetensors.torch.save_file, []

    def save_file(tensors: Any, filename: str, metadata: Any = None) -> None:
        calls.append(filename)
        if len(calls) == 4:
            Path(filename).write_bytes(b"half a file")  # the disk filled up part-way
            if form == "OSError":
                raise OSError(errno.ENOSPC, "No space left on device")
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        real(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    run = tmp_path / "run"
    err = _cli_error(_args(hx, hardening_sandbox, run), capsys)
    assert "state.safetensors: could not write (No space left on device); the previous version" in err
    assert "free some space" in err
    ckpts = run / "checkpoints"
    assert [p.name for p in list_checkpoints(ckpts)] == ["step_0000001", "step_0000002", "step_0000003"]
    for p in list_checkpoints(ckpts):
        load_checkpoint(p)  # verifies every file
    assert [p.name for p in ckpts.iterdir() if p.name.startswith(".")] == []  # no temporary folder left
