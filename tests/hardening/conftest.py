"""Fixtures for the fault and DDP tests: launching torchrun / the CLI in subprocesses with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "PYTEST_XDIST_WORKER"):
        env.pop(k, None)
    return env


def torchrun_cmd(nproc: int) -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    launcher = [str(exe)] if exe.exists() else [sys.executable, "-m", "torch.distributed.run"]
    # --standalone: a local rendezvous on a free port, so parallel tests never collide.
    return [*launcher, "--standalone", f"--nproc_per_node={nproc}"]


@pytest.fixture
def run_torchrun() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_torchrun(2, ["-m", "t2igan", "train", …], cwd=…)`` → CompletedProcess (asserting rc 0 by default)."""

    def run(
        nproc: int,
        args: list[str],
        *,
        cwd: Path | None = None,
        timeout: float = 120,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(
            [*torchrun_cmd(nproc), *args],
            cwd=cwd,
            env={**_env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and p.returncode != 0:
            pytest.fail(f"torchrun failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}", pytrace=False)
        return p

    return run


@pytest.fixture
def cli_env() -> dict[str, str]:
    """Environment for `python -m t2igan …` subprocesses (one thread, offline, not a torchrun child)."""
    return _env()


# ---------------------------------------------------------------------------------------------------------------
# A tiny real dataset (synthetic flowers → prepared cache → caption embeddings) and a reference training run.

TRAIN_STEPS = 16
TRAIN_SETS = [
    f"train.steps={TRAIN_STEPS}",
    "train.ckpt_every=4",
    "train.keep_ckpts=3",
    "train.sample_every=8",
    "train.progress=false",
    "train.threads=1",
]


def train_args(cache: Path, out: Path, *extra: str) -> list[str]:
    """`t2igan train` arguments for the tiny preset on ``cache`` into ``out``."""
    sets = [a for s in [*TRAIN_SETS, *extra] for a in ("--set", s)]
    return ["train", "-c", "reed_tiny", "--data", str(cache), "--out", str(out), *sets]


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root`` → (size, mtime_ns): a cheap "did anything change" snapshot."""
    out: dict[str, tuple[int, int]] = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (st.st_size if p.is_file() else -1, st.st_mtime_ns)
    return out


@pytest.fixture(scope="session")
def hardening_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a tiny prepared cache with char-CNN-RNN caption embeddings (48 flowers, 16 px)."""
    import torch

    from t2igan.data.cache import PreparedCache, prepare_cache
    from t2igan.data.synthetic import write_synthetic_dataset
    from t2igan.text import CharCnnRnn, CharCnnRnnConfig, encode_captions

    root = tmp_path_factory.mktemp("sandbox")
    src = write_synthetic_dataset(root / "flowers", n=48, size=16, seed=0)
    cache_dir = prepare_cache(src, sizes=(16,), progress=False)
    torch.manual_seed(0)
    enc = CharCnnRnn(CharCnnRnnConfig(conv_channels=(8, 8, 8), rnn_dim=8, embed_dim=16))
    encode_captions(PreparedCache.open(cache_dir), enc)
    for d in ("runs", "home", "tmp", "xdg"):
        (root / d).mkdir()
    return root


def cache_of(sandbox: Path) -> Path:
    return sandbox / "flowers" / ".t2igan_cache"


def sandbox_env(sandbox: Path) -> dict[str, str]:
    """HOME, TMPDIR and the XDG cache inside the sandbox, so stray writes there are visible."""
    env = _env()
    env.update(HOME=str(sandbox / "home"), TMPDIR=str(sandbox / "tmp"), XDG_CACHE_HOME=str(sandbox / "xdg"))
    return env


@pytest.fixture(scope="session")
def reference_run(hardening_sandbox: Path) -> dict[str, object]:
    """One uninterrupted single-process `python -m t2igan train` (cwd, HOME, TMPDIR in the sandbox), with the
    sandbox's state before and after — the baseline of the kill/resume, DDP-shape and output-path tests."""
    sandbox = hardening_sandbox
    run = sandbox / "runs" / "reference"
    before = tree_state(sandbox)
    p = subprocess.run(
        [sys.executable, "-m", "t2igan", *train_args(cache_of(sandbox), run, "train.tensorboard=true")],
        cwd=sandbox,
        env=sandbox_env(sandbox),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr[-4000:]
    return {"run": run, "before": before, "after": tree_state(sandbox), "stdout": p.stdout, "stderr": p.stderr}


@pytest.fixture(scope="session")
def hx() -> SimpleNamespace:
    """The helpers above for test modules (which cannot import conftest under --import-mode=importlib)."""
    return SimpleNamespace(
        train_args=train_args,
        tree_state=tree_state,
        cache_of=cache_of,
        sandbox_env=sandbox_env,
        env=_env,
        torchrun_cmd=torchrun_cmd,
        steps=TRAIN_STEPS,
    )
