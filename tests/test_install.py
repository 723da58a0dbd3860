"""`make test` on a fresh machine: .ci/ensure-chromium installs Debian's chromium as root (apt-get), else says in one
line what to install, and never fails the build itself. Run here against stand-in `apt-get`/`id` commands."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "ensure-chromium"


def _bin(tmp_path: Path, *, uid: int, apt: bool) -> Path:
    """A PATH folder with the few tools the script uses, a stand-in `id` and (optionally) a recording `apt-get`."""
    b = tmp_path / "bin"
    b.mkdir()
    for tool in ("bash", "env"):
        (b / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
    (b / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    if apt:
        (b / "apt-get").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "apt.log"}\n')
    for f in b.iterdir():
        if not f.is_symlink():
            f.chmod(0o755)
    return b


def _run(
    tmp_path: Path, *, uid: int, apt: bool, chromium: str = "/nonexistent/chromium"
) -> subprocess.CompletedProcess:
    env = {"PATH": str(_bin(tmp_path, uid=uid, apt=apt)), "T2IGAN_CHROMIUM": chromium}
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)


def test_installs_with_apt_get_as_root(tmp_path: Path) -> None:
    p = _run(tmp_path, uid=0, apt=True)
    assert p.returncode == 0, p.stderr
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert calls[0].startswith("update") and "install -y -qq chromium chromium-driver" in calls[1]


def test_not_root_prints_one_line_and_installs_nothing(tmp_path: Path) -> None:
    p = _run(tmp_path, uid=1000, apt=True)
    assert p.returncode == 0 and not (tmp_path / "apt.log").exists()
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "sudo apt-get install -y chromium chromium-driver" in lines[0]


def test_no_apt_get_says_what_to_do(tmp_path: Path) -> None:
    p = _run(tmp_path, uid=0, apt=False)
    assert p.returncode == 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "T2IGAN_CHROMIUM" in lines[0]


def test_present_chromium_needs_nothing(tmp_path: Path) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    p = _run(tmp_path, uid=0, apt=True, chromium=str(fake))
    assert p.returncode == 0 and p.stderr == "" and not (tmp_path / "apt.log").exists()


def test_make_test_runs_it_and_ci_runs_make_test() -> None:
    """The README's test command is `make test`; CI runs exactly that, and `make test` prepares Chromium first."""
    make = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, env={**os.environ})
    if make.returncode != 0:
        pytest.fail(f"make -n test failed: {make.stderr}")
    lines = [ln for ln in make.stdout.splitlines() if ln.strip()]
    ensure = next(i for i, ln in enumerate(lines) if "ensure-chromium" in ln)
    pytest_line = next(i for i, ln in enumerate(lines) if "pytest" in ln)
    assert ensure < pytest_line
    commands = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith("#")]
    assert commands[-1] == "make test" and "make test" in (ROOT / "README.md").read_text()
