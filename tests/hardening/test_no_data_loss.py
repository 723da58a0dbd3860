"""Nothing t2igan did not create is deleted or replaced (utils/outputs.py, utils/io.py).

Every command that writes a whole folder (`data prepare`, `data synth`, `evaluator train`, `demo`) refuses an existing,
non-empty output that is not its own kind of t2igan output, in one line, before any work; its own earlier output is
replaced as before. File writers replace only regular files. A writer killed half-way leaves a hidden temporary folder
that the next write to the same place removes — only when it can prove it is such a leftover.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from t2igan.apps.cli import main
from t2igan.utils.errors import T2IError


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI in-process; assert exit 2 with a one-line `error: …` as the last thing printed; return it."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.endswith(errors[0]), err[-2000:]
    return errors[0]


def _user_folder(path: Path) -> dict[str, bytes]:
    """A folder of the user's: two files, one in a subfolder. Returns its content for comparison."""
    (path / "sub").mkdir(parents=True)
    (path / "notes.txt").write_text("my notes\n")
    (path / "sub" / "data.bin").write_bytes(b"\x00\x01precious")
    return _content(path)


def _content(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _no_temp_left(parent: Path) -> None:
    left = [p.name for p in parent.iterdir() if p.name.endswith((".tmp", ".old"))]
    assert left == [], left


# -- data prepare ---------------------------------------------------------------------------------------------------
def test_prepare_never_replaces_a_foreign_folder(tiny_synth_dir: Path, tmp_path: Path, capsys: Any) -> None:
    mine = tmp_path / "mine"
    before = _user_folder(mine)
    err = _cli_error(["data", "prepare", str(tiny_synth_dir), "--size", "16", "--out", str(mine)], capsys)
    assert "is not empty and is not a t2igan cache" in err and "--overwrite" in err
    assert _content(mine) == before
    _no_temp_left(tmp_path)
    # an empty folder, and the tool's own cache on a rerun with a new size, are fine
    (tmp_path / "empty").mkdir()
    main_ok(["data", "prepare", str(tiny_synth_dir), "--size", "16", "--out", str(tmp_path / "empty")], capsys)
    main_ok(["data", "prepare", str(tiny_synth_dir), "--size", "8", "--out", str(tmp_path / "empty")], capsys)
    assert (tmp_path / "empty" / "images_8.npy").is_file() and (tmp_path / "empty" / ".t2igan-cache.json").is_file()
    # --overwrite replaces the foreign folder when the user asks for it
    main_ok(["data", "prepare", str(tiny_synth_dir), "--size", "16", "--out", str(mine), "--overwrite"], capsys)
    assert not (mine / "notes.txt").exists() and (mine / "meta.json").is_file()


def main_ok(argv: list[str], capsys: Any) -> None:
    try:
        main(argv)
    except SystemExit as e:  # main() exits only on failure
        raise AssertionError(capsys.readouterr().err[-2000:]) from e


def test_prepare_never_touches_the_dataset_itself(tiny_synth_dir: Path, tmp_path: Path, capsys: Any) -> None:
    ds = tmp_path / "flowers"
    shutil.copytree(tiny_synth_dir, ds)
    before = _content(ds)
    for out, extra in ((ds, []), (ds, ["--overwrite"]), (tmp_path, ["--overwrite"])):  # itself, or a folder holding it
        err = _cli_error(["data", "prepare", str(ds), "--size", "16", "--out", str(out), *extra], capsys)
        assert "would replace the dataset it is made from" in err
    assert _content(ds) == before


def test_a_cache_from_before_the_marker_is_still_ours(tiny_synth_dir: Path, tmp_path: Path) -> None:
    from t2igan.data.cache import prepare_cache

    out = prepare_cache(tiny_synth_dir, sizes=(16,), out=tmp_path / "c", progress=False)
    (out / ".t2igan-cache.json").unlink()  # as an older t2igan wrote it
    prepare_cache(tiny_synth_dir, sizes=(8,), out=out, progress=False)
    assert (out / "images_8.npy").is_file()


# -- data synth, evaluator train, demo ------------------------------------------------------------------------------
def test_synth_never_replaces_a_foreign_folder(tmp_path: Path, capsys: Any) -> None:
    mine = tmp_path / "mine"
    before = _user_folder(mine)
    err = _cli_error(["data", "synth", "--out", str(mine), "--n", "4", "--size", "16", "--no-preview"], capsys)
    assert "is not empty and is not a t2igan synthetic-flowers" in err and "--overwrite" in err
    assert _content(mine) == before
    _no_temp_left(tmp_path)
    own = tmp_path / "own"
    for seed in ("0", "1"):  # a rerun into its own folder replaces it
        main_ok(
            ["data", "synth", "--out", str(own), "--n", "4", "--size", "16", "--seed", seed, "--no-preview"], capsys
        )
    (own / ".t2igan-synthetic-flowers.json").unlink()  # a folder from before the marker: recognised by attributes.json
    main_ok(["data", "synth", "--out", str(own), "--n", "5", "--size", "16", "--no-preview"], capsys)
    assert len(list((own / "images").iterdir())) == 5


def test_synth_refuses_another_kind_of_t2igan_output(tiny_cache: Any, capsys: Any) -> None:
    before = _content(Path(tiny_cache.root))
    err = _cli_error(["data", "synth", "--out", str(tiny_cache.root), "--n", "4", "--size", "16"], capsys)
    assert "holds t2igan's cache output, not a synthetic-flowers" in err
    assert _content(Path(tiny_cache.root)) == before


def test_evaluator_train_checks_out_before_training(tiny_cache: Any, tmp_path: Path, capsys: Any) -> None:
    mine = tmp_path / "mine"
    before = _user_folder(mine)
    argv = ["evaluator", "train", str(tiny_cache.root), "--out", str(mine), "--size", "16", "--steps", "100000"]
    err = _cli_error(argv, capsys)  # 100000 steps would take minutes: the check comes first
    assert "is not empty and is not a t2igan evaluator" in err and "--overwrite" in err
    assert _content(mine) == before


def test_demo_refuses_a_folder_that_is_not_a_demo(tmp_path: Path, capsys: Any) -> None:
    run = tmp_path / "runs" / "full"  # e.g. a training run's folder: its checkpoints must survive
    (run / "checkpoints" / "step_0000010").mkdir(parents=True)
    (run / "checkpoints" / "step_0000010" / "state.safetensors").write_bytes(b"weights")
    (run / "config.yaml").write_text("seed: 0\n")
    before = _content(run)
    err = _cli_error(["demo", "--out", str(run), "--quick"], capsys)
    assert "is not empty and is not a t2igan demo" in err
    assert _content(run) == before


def test_claimed_demo_folder_is_reused(tmp_path: Path, tiny_synth_dir: Path) -> None:
    from t2igan.data.synthetic_write import is_synthetic_folder
    from t2igan.utils.outputs import claim_folder, read_marker

    claim_folder(tmp_path / "d", "demo")
    (tmp_path / "d" / "data").mkdir()
    claim_folder(tmp_path / "d", "demo")  # a rerun: fine
    assert read_marker(tmp_path / "d", "demo") is not None
    old = tmp_path / "old-demo"  # a demo folder from before the marker: recognised by its synthetic data
    shutil.copytree(tiny_synth_dir, old / "data" / "flowers")
    claim_folder(old, "demo", is_own=lambda f: is_synthetic_folder(f / "data" / "flowers"))
    assert read_marker(old, "demo") is not None


# -- only regular files are replaced --------------------------------------------------------------------------------
def _special_paths(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.png"
    folder.mkdir()
    link = tmp_path / "link.png"
    link.symlink_to(fifo)
    paths = {"fifo": fifo, "folder": folder, "symlink-to-fifo": link}
    if os.geteuid() == 0:  # a character device like /dev/null (made in tmp_path, never the real one)
        dev = tmp_path / "null.png"
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        paths["device"] = dev
    return paths


def test_atomic_writes_replace_only_regular_files(tmp_path: Path) -> None:
    from t2igan.utils.io import atomic_write_bytes

    for name, path in _special_paths(tmp_path).items():
        mode = path.lstat().st_mode
        with pytest.raises(T2IError, match="not a regular file"):
            atomic_write_bytes(path, b"x")
        assert path.lstat().st_mode == mode, name
    target = tmp_path / "real.txt"
    target.write_text("old")
    (tmp_path / "to-real.txt").symlink_to(target)
    atomic_write_bytes(tmp_path / "to-real.txt", b"new")  # a link to a regular file: its target is written
    assert (tmp_path / "to-real.txt").is_symlink() and target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from t2igan.models.reed import ReedGenerator, reed_config
    from t2igan.sampling import T2IPipeline
    from t2igan.text import CharCnnRnn, CharCnnRnnConfig

    torch.manual_seed(0)
    enc = CharCnnRnn(CharCnnRnnConfig(conv_channels=(8, 8, 8), rnn_dim=8, embed_dim=12))
    gen = ReedGenerator(reed_config("tiny", text_dim=12))
    return T2IPipeline(gen, enc).save_pretrained(tmp_path_factory.mktemp("model") / "pretrained")


def test_sample_out_must_be_a_regular_file(tiny_model: Path, tmp_path: Path, capsys: Any) -> None:
    for name, path in _special_paths(tmp_path).items():
        if name == "folder":  # click itself refuses a folder for --out (dir_okay=False)
            continue
        mode = path.lstat().st_mode
        err = _cli_error(["sample", str(tiny_model), "red petals", "-n", "1", "--out", str(path)], capsys)
        assert "not a regular file; t2igan only replaces regular files" in err, name
        assert path.lstat().st_mode == mode, name


# -- leftovers of killed writers ------------------------------------------------------------------------------------
_KILLED_WRITER = """
import os, sys
from t2igan.utils.outputs import atomic_dir
with atomic_dir(sys.argv[1], kind="cache") as tmp:
    (tmp / "images_16.npy").write_bytes(b"half")
    os.kill(os.getpid(), 9)
"""


def test_a_killed_writers_temp_folder_is_removed_by_the_next_write(tiny_synth_dir: Path, tmp_path: Path) -> None:
    from t2igan.data.cache import prepare_cache

    out = tmp_path / "cache"
    p = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(out)], capture_output=True, timeout=60)
    assert p.returncode == -9
    stale = [q for q in tmp_path.iterdir() if q.name.startswith(".cache.") and q.name.endswith(".tmp")]
    assert len(stale) == 1 and not out.exists()
    # two look-alikes that cannot be proven ours: no partial marker, and a live process's
    (tmp_path / ".cache.users.tmp").mkdir()
    live = tmp_path / ".cache.live.tmp"
    live.mkdir()
    (live / ".t2igan-partial.json").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getppid()}))
    prepare_cache(tiny_synth_dir, sizes=(16,), out=out, progress=False)
    left = sorted(q.name for q in tmp_path.iterdir() if q.name.endswith(".tmp"))
    assert left == [".cache.live.tmp", ".cache.users.tmp"]
    assert (out / "meta.json").is_file()
