"""kill -9 a real `t2igan train` process — once in the middle of a training step, once in the middle of writing a
checkpoint — resume twice, and end with weights identical (bit for bit) to an uninterrupted run with the same seed.

The kills land at exact points: the training subprocess runs the real CLI through a tiny wrapper that, at the chosen
step or checkpoint, writes a marker file and sleeps; the test then sends SIGKILL. Nothing in t2igan is changed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from t2igan.utils.checkpoint import list_checkpoints, load_checkpoint

WRAPPER = r"""
import os, sys, time
from pathlib import Path

kind, _, at = os.environ.get("T2IGAN_TEST_BLOCK", "").partition(":")
marker = Path(os.environ["T2IGAN_TEST_MARKER"])
if kind == "ckpt":  # hang after the checkpoint's data files are written, before its manifest
    import t2igan.utils.checkpoint as ck
    _write = ck.atomic_write_json
    def write(path, obj):
        if Path(path).name == "manifest.json" and obj.get("step") == int(at):
            marker.write_text("blocked")
            time.sleep(3600)
        return _write(path, obj)
    ck.atomic_write_json = write
elif kind == "step":  # hang inside a training step
    from t2igan.training.reed_system import ReedSystem
    _step = ReedSystem.train_step
    def train_step(self, batch, step):
        if step == int(at):
            marker.write_text("blocked")
            time.sleep(3600)
        return _step(self, batch, step)
    ReedSystem.train_step = train_step
from t2igan.apps.cli import main
main(sys.argv[1:])
"""


def _kill_at(block: str, args: list[str], sandbox: Path, env: dict[str, str], wrapper: Path) -> None:
    marker = sandbox / "tmp" / f"marker-{block.replace(':', '-')}"
    env = {**env, "T2IGAN_TEST_BLOCK": block, "T2IGAN_TEST_MARKER": str(marker)}
    proc = subprocess.Popen(
        [sys.executable, str(wrapper), *args], cwd=sandbox, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():
            if proc.poll() is not None:
                pytest.fail(f"training ended before {block}: {proc.stderr.read().decode()[-3000:]}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"training did not reach {block} in 90 s", pytrace=False)
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        marker.unlink(missing_ok=True)


def _tensors(ckpt_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(ckpt_dir / "state.safetensors"))


def _metrics(run: Path) -> list[dict[str, Any]]:
    rows = [json.loads(x) for x in (run / "logs" / "metrics.jsonl").read_text().splitlines() if x.strip()]
    for r in rows:
        r.pop("time", None)
        r.pop("images_per_s", None)
    return rows


def test_kill9_resume_is_bit_identical(hardening_sandbox: Path, reference_run: dict, hx: Any, tmp_path: Path) -> None:
    sandbox = hardening_sandbox
    run = sandbox / "runs" / "killed"
    args = hx.train_args(hx.cache_of(sandbox), run, "train.tensorboard=false")  # (TB on or off: same numbers)
    env = hx.sandbox_env(sandbox)
    wrapper = tmp_path / "train_and_hang.py"
    wrapper.write_text(WRAPPER)

    # 1. kill -9 inside step 10 (0-based index 9): checkpoint 8 is the newest, no export.
    _kill_at("step:9", args, sandbox, env, wrapper)
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step_0000004", "step_0000008"]
    assert not (run / "pretrained").exists()

    # 2. resume; kill -9 while checkpoint 12 is being written (data files there, manifest not yet).
    _kill_at("ckpt:12", [*args, "--resume"], sandbox, env, wrapper)
    half = [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".step_0000012")]
    assert half, "the half-written checkpoint should be left under its temporary name"
    assert list_checkpoints(run / "checkpoints")[-1].name == "step_0000008"

    # 3. resume again, uninterrupted, to the end.
    p = subprocess.run(
        [sys.executable, "-m", "t2igan", *args, "--resume"],
        cwd=sandbox,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert not [q.name for q in (run / "checkpoints").iterdir() if q.name.startswith(".")]  # temp folder tidied

    # Identical to the run that was never interrupted: every tensor of the final checkpoint (G, D, optimiser
    # moments, RNG states), the exported generator's bytes and the metrics log (minus wall-clock fields).
    ref: Path = reference_run["run"]  # type: ignore[assignment]
    last, ref_last = list_checkpoints(run / "checkpoints")[-1], list_checkpoints(ref / "checkpoints")[-1]
    assert last.name == ref_last.name == f"step_{hx.steps:07d}"
    got, want = _tensors(last), _tensors(ref_last)
    assert got.keys() == want.keys()
    # (`/rng/…` are the process-global RNG states, saved for code t2igan does not control; training draws nothing
    # from them — every random choice comes from generators seeded by (seed, step, rank) — and they start
    # differently in every process, so they are not compared.)
    differ = sorted(k for k in want if not k.startswith("/rng/") and not torch.equal(got[k], want[k]))
    assert differ == [], differ
    assert load_checkpoint(last)["state"] is not None  # verifies checksums too
    gen = Path("pretrained/generator/model.safetensors")
    assert (run / gen).read_bytes() == (ref / gen).read_bytes()
    assert _metrics(run) == _metrics(ref)
