"""A torchrun worker leaves through `os._exit` after flushing (no interpreter finalisation, where a gloo worker
thread can abort the process), with the CLI's usual exit codes and none of its output lost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = r"""
import atexit, sys
atexit.register(lambda: print("finalised", flush=True))  # runs on a normal exit, not after os._exit
from t2igan.apps.cli import main
main(sys.argv[1:])
"""


def _run(tmp_path: Path, args: list[str], worker: bool) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    env = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "0"}
    if worker:
        env.update(RANK="1", WORLD_SIZE="2", LOCAL_RANK="1")
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env, timeout=120)


def test_worker_exits_hard_with_flushed_output_and_codes(tmp_path: Path) -> None:
    ok = _run(tmp_path, ["--version"], worker=True)
    assert ok.returncode == 0
    assert "t2igan" in ok.stdout  # block-buffered pipe, flushed before os._exit
    assert "finalised" not in ok.stdout

    bad = _run(tmp_path, ["sample", str(tmp_path / "missing"), "a red flower"], worker=True)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error:")
    assert "finalised" not in bad.stdout


def test_plain_process_exits_normally(tmp_path: Path) -> None:
    ok = _run(tmp_path, ["--version"], worker=False)
    assert ok.returncode == 0
    assert "finalised" in ok.stdout
    bad = _run(tmp_path, ["sample", str(tmp_path / "missing"), "a red flower"], worker=False)
    assert bad.returncode == 2
    assert "finalised" in bad.stdout
