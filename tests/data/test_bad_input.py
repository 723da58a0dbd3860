"""Bad input: each problem is a one-line T2IError naming the file, or with skip_bad a warning and a count."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from t2igan.data.cache import PreparedCache, prepare_cache
from t2igan.data.synthetic import write_synthetic_dataset
from t2igan.utils.errors import T2IError


@pytest.fixture(scope="module")
def small_reed(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("bad") / "base", n=8, size=16, seed=0)


@pytest.fixture
def reed(small_reed, tmp_path):
    return shutil.copytree(small_reed, tmp_path / "ds")


def _first(reed, kind="images"):
    if kind == "images":
        return sorted((reed / "images").glob("*.png"))[0]
    return sorted((reed / "text_c10").rglob("*.txt"))[0]


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_image(reed, tmp_path, damage):
    img = _first(reed)
    data = img.read_bytes()
    img.write_bytes({"garbage": b"not an image at all", "truncated": data[: len(data) // 2], "empty": b""}[damage])
    with pytest.raises(T2IError) as e:
        prepare_cache(reed, sizes=(16,), out=tmp_path / "c", progress=False)
    assert img.name in _one_line(e) and "--skip-bad" in str(e.value)
    assert not (tmp_path / "c").exists()  # nothing half-written left looking complete
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".c")]
    with pytest.warns(UserWarning) as caught:
        out = prepare_cache(reed, sizes=(16,), out=tmp_path / "c", skip_bad=True, progress=False)
    messages = [str(w.message) for w in caught]
    assert any(img.name in m for m in messages) and any("1 bad item(s) skipped" in m for m in messages)
    c = PreparedCache.open(out)
    assert c.n == 7 and c.meta["source"]["skipped"] == 1 and img.stem not in c.names
    assert len(c.captions) == 7 and c.images(16).shape[0] == 7


def test_missing_caption_file(reed, tmp_path):
    txt = _first(reed, "text")
    txt.unlink()
    with pytest.raises(T2IError, match="has no caption file") as e:
        prepare_cache(reed, sizes=(16,), out=tmp_path / "c", progress=False)
    assert txt.stem in _one_line(e)
    with pytest.warns(UserWarning):
        c = PreparedCache.open(prepare_cache(reed, sizes=(16,), out=tmp_path / "c", skip_bad=True, progress=False))
    assert c.n == 7


@pytest.mark.parametrize("content", [b"", b"\n  \n\n"])
def test_empty_caption(reed, tmp_path, content):
    txt = _first(reed, "text")
    txt.write_bytes(content)
    with pytest.raises(T2IError, match="empty caption") as e:
        prepare_cache(reed, sizes=(16,), out=tmp_path / "c", progress=False)
    assert txt.name in _one_line(e)


def test_non_utf8_caption(reed, tmp_path):
    txt = _first(reed, "text")
    txt.write_bytes("a flower with pétals\n".encode("latin1"))
    with pytest.raises(T2IError, match="not UTF-8") as e:
        prepare_cache(reed, sizes=(16,), out=tmp_path / "c", progress=False)
    assert txt.name in _one_line(e) and "iconv" in str(e.value)


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "I;16", "P", "LA", "1"])
def test_odd_image_modes_are_converted(reed, tmp_path, mode):
    img = _first(reed)
    rgb = np.asarray(Image.open(img).convert("RGB"))
    if mode == "I;16":
        im = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
        assert im.mode.startswith("I;16")
    else:
        im = Image.fromarray(rgb).convert(mode)
    if mode == "CMYK":
        img.unlink()
        img = img.with_suffix(".jpg")
        im.save(img, quality=95)
    else:
        im.save(img)
    c = PreparedCache.open(prepare_cache(reed, sizes=(16,), out=tmp_path / "c", progress=False))
    k = c.names.index(img.stem)
    got = c.images(16)[k]
    assert got.shape == (16, 16, 3) and got.dtype == np.uint8
    if mode == "I;16":  # 16-bit scaled down, not clipped to white
        assert np.abs(got[..., 0].astype(int) - rgb[..., 0]).max() <= 1
    if mode == "RGBA":
        assert np.array_equal(got, rgb)


@pytest.mark.parametrize("name", ["trainvalclasses.txt", "testclasses.txt"])
def test_missing_split_file(reed, tmp_path, name):
    (reed / name).unlink()
    with pytest.raises(T2IError, match="split file missing") as e:
        prepare_cache(reed, sizes=(16,), out=tmp_path / "c", progress=False)
    assert name in _one_line(e)


def test_empty_dataset(reed, tmp_path):
    for t in (reed / "text_c10").rglob("*.txt"):
        t.unlink()
    for p in (reed / "images").glob("*"):
        p.unlink()
    with pytest.raises(T2IError, match="empty dataset") as e:
        prepare_cache(reed, sizes=(16,), out=tmp_path / "c", progress=False)
    assert str(reed) in _one_line(e)


def test_everything_bad_with_skip_bad(reed, tmp_path):
    for p in (reed / "images").glob("*.png"):
        p.write_bytes(b"junk")
    with pytest.warns(UserWarning), pytest.raises(T2IError, match="every item was bad"):
        prepare_cache(reed, sizes=(16,), out=tmp_path / "c", skip_bad=True, progress=False)


def test_missing_image_for_caption(reed, tmp_path):
    img = _first(reed)
    img.unlink()
    with pytest.raises(T2IError, match="no image for caption file") as e:
        prepare_cache(reed, sizes=(16,), out=tmp_path / "c", progress=False)
    assert img.stem in _one_line(e)


def test_cli_skip_bad_warns_and_counts(reed, tmp_path):
    from t2igan.apps.cli_data import data

    _first(reed).write_bytes(b"junk")
    sorted((reed / "text_c10").rglob("*.txt"))[-1].write_bytes(b"\xff\xfe bad")
    res = CliRunner().invoke(data, ["prepare", str(reed), "--size", "16", "--out", str(tmp_path / "c"), "--skip-bad"])
    assert res.exit_code == 0, res.output
    assert res.output.count("warning:") == 2 and "skipped 2 bad item(s)" in res.output
    res = CliRunner().invoke(data, ["prepare", str(reed), "--size", "16", "--out", str(tmp_path / "d")])
    assert isinstance(res.exception, T2IError)


def test_cli_error_is_one_line(tmp_path, capsys):
    from t2igan.apps.cli import main

    with pytest.raises(SystemExit) as e:
        main(["data", "prepare", str(tmp_path / "missing")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
