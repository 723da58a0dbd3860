"""Checkpoints under damage: truncated, bit-flipped, half-written, missing manifest, foreign format, rotation.

Every damaged checkpoint is detected by its manifest (sizes + sha256) with a one-line `T2IError` naming the file,
and `load_latest` falls back to the newest checkpoint that still verifies (the last `keep` are kept for that).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

import pytest
import torch

from t2igan.utils.checkpoint import (
    list_checkpoints,
    load_checkpoint,
    load_latest,
    save_checkpoint,
    verify_checkpoint,
)
from t2igan.utils.errors import T2IError


def _state(step: int) -> dict:
    g = torch.Generator().manual_seed(step)
    return {"nets": {"g": {"w": torch.randn(4, 3, generator=g)}}, "step": step, "opt": ({"lr": 0.1}, [1, 2])}


@pytest.fixture
def ckpts(tmp_path: Path) -> Path:
    root = tmp_path / "checkpoints"
    for step in (10, 20, 30, 40):
        save_checkpoint(root, step, _state(step), {"seed": 0}, keep=3)
    return root


def test_rotation_keeps_last_k_and_roundtrips(ckpts: Path) -> None:
    assert [p.name for p in list_checkpoints(ckpts)] == ["step_0000020", "step_0000030", "step_0000040"]
    got = load_latest(ckpts)
    assert got is not None and got["step"] == 40
    assert torch.equal(got["state"]["nets"]["g"]["w"], _state(40)["nets"]["g"]["w"])
    assert got["state"]["opt"] == ({"lr": 0.1}, [1, 2])  # tuples survive


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: _truncate(d / "state.safetensors"), "truncated"),
        (lambda d: _flip_byte(d / "state.safetensors"), "sha256 mismatch"),
        (lambda d: _flip_byte(d / "state.json"), "sha256 mismatch"),
        (lambda d: _flip_byte(d / "config.json"), "sha256 mismatch"),
        (lambda d: (d / "state.safetensors").unlink(), "missing"),
        (lambda d: (d / "manifest.json").unlink(), "no manifest.json"),
        (lambda d: (d / "manifest.json").write_text("{not json"), "not valid JSON"),
        (lambda d: (d / "manifest.json").write_text(json.dumps({"format": "other/9"})), "unknown checkpoint format"),
    ],
    ids=[
        "truncated",
        "bitflip-tensors",
        "bitflip-json",
        "bitflip-config",
        "missing-file",
        "no-manifest",
        "bad-manifest",
        "foreign-format",
    ],
)
def test_damaged_newest_is_detected_and_previous_used(ckpts: Path, damage, message: str, caplog) -> None:  # type: ignore[no-untyped-def]
    newest = list_checkpoints(ckpts)[-1]
    damage(newest)
    with pytest.raises(T2IError, match=message) as e:
        load_checkpoint(newest)
    assert "\n" not in str(e.value) and "step_0000040" in str(e.value)  # one line naming the file
    caplog.set_level(logging.WARNING, logger="t2igan")
    got = load_latest(ckpts)
    warnings = caplog.messages
    assert got is not None and got["step"] == 30
    assert torch.equal(got["state"]["nets"]["g"]["w"], _state(30)["nets"]["g"]["w"])
    assert len(warnings) == 1 and message in warnings[0]


def test_all_damaged_is_a_clear_error(ckpts: Path) -> None:
    for d in list_checkpoints(ckpts):
        _truncate(d / "state.safetensors")
    with pytest.raises(T2IError, match=r"no valid checkpoint .*\(3 corrupt\)"):
        load_latest(ckpts)


def test_no_checkpoints_means_fresh_start(tmp_path: Path) -> None:
    assert load_latest(tmp_path / "nothing") is None
    assert verify_checkpoint is not None


def test_half_written_checkpoint_is_invisible(ckpts: Path) -> None:
    """A crash during the write leaves only a hidden temporary folder, never a `step_*` name."""
    tmp = ckpts / ".step_0000050.abc.tmp"
    shutil.copytree(list_checkpoints(ckpts)[-1], tmp)
    _truncate(tmp / "state.safetensors")
    got = load_latest(ckpts)
    assert got is not None and got["step"] == 40


def test_checkpoint_is_not_a_pickle(ckpts: Path) -> None:
    """Nothing executable: safetensors + JSON only (a malicious checkpoint cannot run code)."""
    newest = list_checkpoints(ckpts)[-1]
    assert sorted(os.listdir(newest)) == [
        ".t2igan-checkpoint.json",  # the ownership marker (utils.outputs), listed in the manifest like every file
        "config.json",
        "manifest.json",
        "state.json",
        "state.safetensors",
    ]
    # A pickle planted in place of the tensors fails verification before anything parses it.
    (newest / "state.safetensors").write_bytes(b"\x80\x04\x95" + b"cos\nsystem\n" * 10)
    with pytest.raises(T2IError):
        load_checkpoint(newest)


def _edit_state_step(d: Path, step: int) -> None:
    doc = json.loads((d / "state.json").read_text())
    doc["step"] = step
    (d / "state.json").write_text(json.dumps(doc))


def _set_manifest(d: Path, **changes: object) -> None:
    manifest = json.loads((d / "manifest.json").read_text())
    manifest.update(changes)
    (d / "manifest.json").write_text(json.dumps(manifest))


def _rehash(d: Path) -> None:
    """Make the manifest's entries match the edited files (what someone forging a checkpoint would do)."""
    from t2igan.utils.io import sha256_file

    manifest = json.loads((d / "manifest.json").read_text())
    for name in manifest["files"]:
        manifest["files"][name] = {"sha256": sha256_file(d / name), "bytes": (d / name).stat().st_size}
    (d / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (_set_manifest(d, files={}), _edit_state_step(d, 5000)), "does not list config.json"),
        (lambda d: _set_manifest(d, files=None), "does not list"),
        (lambda d: (d / "extra.pt").write_bytes(b"\x80\x04planted"), "does not list (extra.pt)"),
        (lambda d: (d / ".t2igan-checkpoint.json").unlink(), "checkpoint file is missing"),
        (lambda d: (_edit_state_step(d, 5000), _rehash(d)), "steps disagree"),
        (lambda d: _set_manifest(d, files={"../../etc/passwd": {"sha256": "0", "bytes": 1}}), "does not list"),
    ],
    ids=["empty-files-and-edited-state", "files-null", "unlisted-file", "listed-file-missing", "forged-step", "escape"],
)
def test_every_file_is_listed_and_checked(ckpts: Path, damage, message: str, caplog) -> None:  # type: ignore[no-untyped-def]
    """A manifest must list every file of its folder (checked), no more and no less; else the checkpoint is invalid
    and `load_latest` falls back to the previous one with a warning."""
    newest = list_checkpoints(ckpts)[-1]
    damage(newest)
    with pytest.raises(T2IError, match=re.escape(message)):
        load_checkpoint(newest)
    caplog.set_level(logging.WARNING, logger="t2igan")
    got = load_latest(ckpts)
    warnings = caplog.messages
    assert got is not None and got["step"] == 30 and len(warnings) == 1 and message in warnings[0]


def test_rotation_keeps_checkpoints_of_other_runs(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    save_checkpoint(root, 5, _state(5), {}, {"run_id": "other"}, keep=1)
    for step in (10, 20, 30):
        save_checkpoint(root, step, _state(step), {}, {"run_id": "mine"}, keep=2)
    assert [p.name for p in list_checkpoints(root)] == ["step_0000005", "step_0000020", "step_0000030"]
    with pytest.raises(T2IError, match=r"a checkpoint of another run \(other\) is already at step 5"):
        save_checkpoint(root, 5, _state(5), {}, {"run_id": "mine"})
    assert load_checkpoint(root / "step_0000005")["meta"]["run_id"] == "other"
