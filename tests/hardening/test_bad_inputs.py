"""Bad user files not covered elsewhere (audit of tests/data, tests/text, tests/reed, tests/sampling at 10:30):
damaged prepared caches, truncated/empty pickles, broken HDF5 and .t7 files, broken config files, and resuming
with a config that does not fit the checkpoint. Each must give one clear line (`error: …`, exit 2) and write nothing.

Covered in other folders (not repeated here): corrupt/odd images, missing/empty/non-UTF-8 captions, missing split
files (tests/data/test_bad_input.py); code-executing pickles (tests/data/test_layouts.py, tests/text); t7 without
'txt' or garbage, HDF5 missing split (tests/text/test_precomputed.py); unknown config keys/values
(tests/reed/test_config_cli.py); pretrained folders (tests/sampling/test_pipeline.py::test_bad_folders); checkpoints
(tests/hardening/test_checkpoint_faults.py); web uploads (tests/apps).
"""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from t2igan.apps.cli import main
from t2igan.text.precomputed import read_hdf5_embeddings, read_reed_t7, read_stackgan_pickle
from t2igan.utils.errors import T2IError


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI in-process; assert exit 2 with a one-line `error: …`; return that line."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.endswith(errors[0]), err[-2000:]  # one line, the last thing printed
    return errors[0]


# -- embedding files ------------------------------------------------------------------------------------------------
def test_truncated_and_empty_pickles(tmp_path: Path) -> None:
    full = pickle.dumps(np.zeros((3, 10, 1024), np.float32), protocol=2)
    (tmp_path / "cut.pickle").write_bytes(full[: len(full) // 3])
    (tmp_path / "empty.pickle").write_bytes(b"")
    with pytest.raises(T2IError, match="truncated"):
        read_stackgan_pickle(tmp_path / "cut.pickle")
    with pytest.raises(T2IError, match="cannot read pickle"):
        read_stackgan_pickle(tmp_path / "empty.pickle")


def test_broken_hdf5_files(tmp_path: Path) -> None:
    h5py = pytest.importorskip("h5py")
    (tmp_path / "junk.h5").write_bytes(b"not an HDF5 file at all")
    with pytest.raises(T2IError, match="not a readable HDF5 file"):
        read_hdf5_embeddings(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "nofield.h5", "w") as f:
        f.create_group("train/image_1").create_dataset("name", data=b"image_1")
    with pytest.raises(T2IError, match="has no 'embeddings'"):
        read_hdf5_embeddings(tmp_path / "nofield.h5")
    with h5py.File(tmp_path / "dims.h5", "w") as f:
        for i, dim in enumerate((1024, 512)):
            g = f.create_group(f"train/image_{i}")
            g.create_dataset("name", data=f"image_{i}".encode())
            g.create_dataset("embeddings", data=np.zeros(dim, np.float32))
            g.create_dataset("class", data=b"class_00001")
            g.create_dataset("txt", data=b"a flower")
    with pytest.raises(T2IError, match="different sizes"):
        read_hdf5_embeddings(tmp_path / "dims.h5")
    full = (tmp_path / "dims.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(full[: len(full) // 2])
    with pytest.raises(T2IError):
        read_hdf5_embeddings(tmp_path / "cut.h5")


def test_empty_and_truncated_t7(tmp_path: Path) -> None:
    (tmp_path / "empty.t7").write_bytes(b"")
    with pytest.raises(T2IError, match=r"not a readable Lua Torch \.t7 file"):
        read_reed_t7(tmp_path / "empty.t7")
    (tmp_path / "cut.t7").write_bytes(b"\x04\x00\x00\x00\x01\x00\x00\x00\x03")  # a table header, then nothing
    with pytest.raises(T2IError):
        read_reed_t7(tmp_path / "cut.t7")


# -- config files ---------------------------------------------------------------------------------------------------
CONFIGS: dict[str, tuple[bytes, str]] = {
    "invalid-yaml": (b"train: [1, 2\n", "not valid YAML"),
    "not-a-mapping": (b"- a\n- b\n", "must be a mapping"),
    "wrong-type": (b"train:\n  steps: lots\n", "train.steps must be an integer"),
    "unknown-section": (b"trian:\n  steps: 3\n", "unknown config key 'trian'"),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_broken_config_files(
    name: str, tmp_path: Path, hardening_sandbox: Path, hx: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    data, message = CONFIGS[name]
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(data)
    run = tmp_path / "run"
    err = _cli_error(
        ["train", "-c", str(cfg), "--data", str(hx.cache_of(hardening_sandbox)), "--out", str(run)], capsys
    )
    assert message in err
    assert not run.exists()


def test_binary_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(b"\xff\xfe\x00\x01binary")
    err = _cli_error(["train", "-c", str(cfg), "--out", str(tmp_path / "run")], capsys)
    assert "c.yaml" in err and "not a text file" in err
    assert not (tmp_path / "run").exists()


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _cli_error(["train", "-c", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "run")], capsys)
    assert "no such config file or preset" in err and "reed_tiny" in err
    assert not (tmp_path / "run").exists()


# -- resuming with a config that does not fit the checkpoint -------------------------------------------------------
def test_resume_with_a_different_architecture_is_refused(
    tmp_path: Path, hardening_sandbox: Path, hx: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from t2igan.utils.checkpoint import list_checkpoints

    run = tmp_path / "run"
    cache = hx.cache_of(hardening_sandbox)
    base = [*hx.train_args(cache, run, "train.tensorboard=false"), "--set", "train.steps=4"]
    main(base)
    capsys.readouterr()
    before = {p.name: p.stat().st_mtime_ns for p in list_checkpoints(run / "checkpoints")}
    err = _cli_error([*base, "--set", "train.steps=8", "--set", "model.ngf=16", "--resume"], capsys)
    assert "the config differs from this run's config.yaml (model.ngf: None → 16)" in err  # (run_folder.py)
    assert {p.name: p.stat().st_mtime_ns for p in list_checkpoints(run / "checkpoints")} == before


# -- damaged prepared caches ---------------------------------------------------------------------------------------
def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])


DAMAGE: dict[str, Callable[[Path], None]] = {
    "images-truncated": lambda d: _truncate(d / "images_16.npy"),
    "embeddings-truncated": lambda d: [_truncate(p) for p in (d / "embeddings").glob("*.npy")],  # type: ignore[dict-item]
    "captions-missing": lambda d: (d / "captions.json").unlink(),
    "class-ids-garbage": lambda d: (d / "class_ids.npy").write_bytes(b"garbage"),
    "meta-bad-json": lambda d: (d / "meta.json").write_text("{oops"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_cache_is_a_clear_error(
    damage: str,
    tmp_path: Path,
    hardening_sandbox: Path,
    hx: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(hx.cache_of(hardening_sandbox), cache)
    DAMAGE[damage](cache)
    run = tmp_path / "run"
    err = _cli_error(hx.train_args(cache, run, "train.tensorboard=false"), capsys)
    assert str(cache) in err or "cache" in err
    assert not (run / "checkpoints").exists() or not any((run / "checkpoints").iterdir())
