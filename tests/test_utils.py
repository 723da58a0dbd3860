import json

import numpy as np
import pytest
import torch

from t2igan.apps.cli import main
from t2igan.utils.images import make_grid, to_uint8
from t2igan.utils.io import atomic_path, atomic_write_json, fingerprint
from t2igan.utils.seed import derive_seed, parse_seeds


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_json(target, {"x": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert json.loads(target.read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("1,5,9") == [1, 5, 9]
    assert parse_seeds("7", count=3) == [7, 8, 9]
    assert parse_seeds(None, count=2) == [0, 1]
    with pytest.raises(ValueError):
        parse_seeds("a-b")


def test_derive_seed_and_fingerprint_are_stable():
    assert derive_seed(1, "data", 2) == derive_seed(1, "data", 2) != derive_seed(1, "data", 3)
    assert fingerprint([{"a": 1}]) == fingerprint([{"a": 1}]) != fingerprint([{"a": 2}])


def test_to_uint8_and_grid():
    x = torch.linspace(-1, 1, 2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    u = to_uint8(x)
    assert u.shape == (2, 4, 4, 3) and u.dtype == np.uint8 and u.min() == 0 and u.max() == 255
    grid = make_grid(x, nrow=2, row_captions=["a flower with red petals"])
    assert grid.width == 2 * (4 + 2) + 2 and grid.height > 4 + 4


def test_cli_version(capsys):
    main(["--version"])
    assert "t2igan" in capsys.readouterr().out


def test_atomic_files_get_normal_permissions(tmp_path):
    import os

    from t2igan.utils.outputs import atomic_dir

    mask = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "f.json", {})
        with atomic_dir(tmp_path / "d", kind="test") as d:
            (d / "x").write_text("1")
    finally:
        os.umask(mask)
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_read_json_errors_name_the_file(tmp_path):
    from t2igan.utils.errors import T2IError
    from t2igan.utils.io import read_json

    bad = tmp_path / "c.json"
    bad.write_bytes(b"{oops")
    with pytest.raises(T2IError, match=r"c\.json"):
        read_json(bad)
    with pytest.raises(T2IError, match="missing"):
        read_json(tmp_path / "none.json")
    bad.write_text('{"a": 1}')
    assert read_json(bad) == {"a": 1}
