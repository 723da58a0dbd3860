"""Run folders: one trainer at a time (a lock that a killed process does not leave behind), one run per folder
(a run id in the folder and in every checkpoint, checked on --resume and by rotation), and no new or different
config into an existing run (training/run_folder.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from t2igan.training.run_folder import open_run
from t2igan.training.trainer import Trainer
from t2igan.utils.checkpoint import list_checkpoints, load_checkpoint
from t2igan.utils.config import config_diff
from t2igan.utils.errors import T2IError
from t2igan.utils.outputs import read_marker


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file (but the lock, which holds the pid of the last process that took it) → (size, mtime)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and p.name != ".t2igan-run.lock"
    }


def _checkpoints_of(run: Path) -> dict[str, tuple[int, int]]:
    return {k: v for k, v in _snapshot(run).items() if k.startswith("checkpoints/")}


def test_second_trainer_on_a_locked_folder_is_refused(tiny_config, fake_dataset) -> None:
    cfg = tiny_config("train.export=false")
    with open_run(cfg.run_dir, cfg.to_dict(), resume=False):  # another trainer holds the folder
        with pytest.raises(T2IError, match=r"another t2igan process \(pid \d+\) is training in this run folder"):
            Trainer(cfg, fake_dataset).fit()
        assert not (Path(cfg.run_dir) / "checkpoints").exists()
    out = Trainer(cfg, fake_dataset).fit()  # released: now it trains
    assert out["step"] == 4


_HOLD_LOCK = """
import os, sys, time
from t2igan.training.run_folder import _lock
_lock(__import__("pathlib").Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(60)
"""


def test_a_killed_trainers_lock_does_not_block(tiny_config, fake_dataset) -> None:
    cfg = tiny_config("train.export=false")
    Path(cfg.run_dir).mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, cfg.run_dir], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(T2IError, match=f"pid {holder.pid}"):
            Trainer(cfg, fake_dataset).fit()
    finally:
        holder.kill()
        holder.wait()
    t0 = time.perf_counter()
    assert Trainer(cfg, fake_dataset).fit()["step"] == 4  # the lock file stays; its lock died with pid
    assert time.perf_counter() - t0 < 30


def test_new_run_into_a_run_with_checkpoints_is_refused(tiny_config, fake_dataset) -> None:
    cfg = tiny_config("train.ckpt_every=2", "train.export=false")
    Trainer(cfg, fake_dataset).fit()
    run = Path(cfg.run_dir)
    before = _snapshot(run)
    for other in (cfg, tiny_config("train.ckpt_every=2", "train.export=false", "seed=7")):
        with pytest.raises(T2IError, match=r"already holds a training run with checkpoints \(newest: step 4\)"):
            Trainer(other, fake_dataset).fit()
    assert _snapshot(run) == before  # nothing deleted, rotated or rewritten


def test_resume_needs_the_same_config_except_length_and_logging(tiny_config, fake_dataset) -> None:
    cfg = tiny_config("train.ckpt_every=2", "train.export=false")
    Trainer(cfg, fake_dataset).fit()
    run = Path(cfg.run_dir)
    before = _checkpoints_of(run)
    changed = tiny_config("train.ckpt_every=2", "train.export=false", "train.steps=6", "optim.lr=0.1")
    with pytest.raises(T2IError, match=r"config differs from this run's config.yaml \(optim.lr: 0.0002 → 0.1\)"):
        Trainer(changed, fake_dataset, resume=True).fit()
    assert _checkpoints_of(run) == before
    longer = tiny_config("train.ckpt_every=2", "train.export=false", "train.steps=6", "train.log_every=3")
    assert Trainer(longer, fake_dataset, resume=True).fit()["step"] == 6


def test_resume_of_a_run_from_an_older_t2igan_fills_keys_added_since(tiny_config, fake_dataset) -> None:
    """A config.yaml written before a key existed (here optim.g_warmup_steps) resumes: the key takes its default;
    setting it to something else is still a change."""
    import yaml

    cfg = tiny_config("train.ckpt_every=2", "train.export=false")
    Trainer(cfg, fake_dataset).fit()
    path = Path(cfg.run_dir) / "config.yaml"
    saved = yaml.safe_load(path.read_text())
    del saved["optim"]["g_warmup_steps"]
    path.write_text(yaml.safe_dump(saved))
    with pytest.raises(T2IError, match=r"optim.g_warmup_steps: 0 → 3"):
        Trainer(tiny_config("train.ckpt_every=2", "train.export=false", "train.steps=6", "optim.g_warmup_steps=3"),
                fake_dataset, resume=True).fit()  # fmt: skip
    longer = tiny_config("train.ckpt_every=2", "train.export=false", "train.steps=6")
    assert Trainer(longer, fake_dataset, resume=True).fit()["step"] == 6


def test_resume_refuses_a_checkpoint_of_another_run(tiny_config, fake_dataset) -> None:
    a = tiny_config("train.ckpt_every=2", "train.export=false", run="a")
    b = tiny_config("train.ckpt_every=2", "train.export=false", "train.steps=2", run="b")
    Trainer(a, fake_dataset).fit()
    Trainer(b, fake_dataset).fit()
    run_a, run_b = Path(a.run_dir), Path(b.run_dir)
    assert read_marker(run_a, "run")["run_id"] != read_marker(run_b, "run")["run_id"]
    shutil.copytree(run_a / "checkpoints" / "step_0000004", run_b / "checkpoints" / "step_0000004")
    resumed = tiny_config("train.ckpt_every=2", "train.export=false", "train.steps=8", run="b")
    with pytest.raises(T2IError, match="checkpoint belongs to run"):
        Trainer(resumed, fake_dataset, resume=True).fit()


def test_rotation_never_deletes_another_runs_checkpoint(tiny_config, fake_dataset) -> None:
    a = tiny_config("train.ckpt_every=1", "train.steps=1", "train.export=false", run="a")
    Trainer(a, fake_dataset).fit()
    b = tiny_config("train.ckpt_every=2", "train.keep_ckpts=1", "train.steps=2", "train.export=false", run="b")
    Trainer(b, fake_dataset).fit()
    run_b = Path(b.run_dir)
    shutil.copytree(Path(a.run_dir) / "checkpoints" / "step_0000001", run_b / "checkpoints" / "step_0000001")
    more = tiny_config("train.ckpt_every=2", "train.keep_ckpts=1", "train.steps=6", "train.export=false", run="b")
    Trainer(more, fake_dataset, resume=True).fit()
    assert [p.name for p in list_checkpoints(run_b / "checkpoints")] == ["step_0000001", "step_0000006"]
    ids = {p.name: load_checkpoint(p)["meta"]["run_id"] for p in list_checkpoints(run_b / "checkpoints")}
    assert ids["step_0000001"] == read_marker(a.run_dir, "run")["run_id"]
    assert ids["step_0000006"] == read_marker(run_b, "run")["run_id"]


def test_training_into_a_folder_that_is_not_a_run_is_refused(tiny_config, fake_dataset) -> None:
    cfg = tiny_config()
    run = Path(cfg.run_dir)
    run.mkdir()
    (run / "config.yaml").write_text("my own notes\n")
    (run / "logs").mkdir()
    (run / "logs" / "metrics.jsonl").write_text('{"mine": 1}\n')
    before = _snapshot(run)
    with pytest.raises(T2IError, match="is not empty and is not a t2igan run"):
        Trainer(cfg, fake_dataset).fit()
    assert _snapshot(run) == before


def test_config_diff_ignores_only_the_listed_keys() -> None:
    old = {"train": {"steps": 1, "batch_size": 8}, "debug": {"nan_steps": []}, "model": {"name": "reed"}}
    new = {"train": {"steps": 9, "batch_size": 4}, "debug": {"nan_steps": [3]}, "model": {"name": "reed", "ngf": 8}}
    assert config_diff(old, new, ignore=("train.steps", "debug.*")) == [
        ("model.ngf", None, 8),
        ("train.batch_size", 8, 4),
    ]
