"""Odd files in a dataset folder: symlink loops, directories and FIFOs where files belong, decompression bombs and
oversized images, CUB boxes with nan/inf, a latin-1 images.txt, a cache meta.json with wrong types. Each is a one-line
`T2IError` naming the file (with ``--skip-bad`` a per-item problem is skipped with a warning), never a traceback or a
hang."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from t2igan.apps.cli import cli, main
from t2igan.data.cache import PreparedCache, prepare_cache
from t2igan.data.decode import MAX_DECODE_PIXELS
from t2igan.data.synthetic import write_synthetic_dataset
from t2igan.utils.errors import T2IError


@pytest.fixture(scope="module")
def small_reed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("odd") / "base", n=8, size=16, seed=0)


@pytest.fixture
def reed(small_reed: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(small_reed, tmp_path / "ds"))


def _first_image(reed: Path) -> Path:
    return sorted((reed / "images").glob("*.png"))[0]


def _first_caption(reed: Path) -> Path:
    return sorted((reed / "text_c10").rglob("*.txt"))[0]


def _huge_png(width: int, height: int) -> bytes:
    """A small PNG whose header says ``width × height`` (1-bit): what a decompression bomb looks like from outside.
    Its pixel data is one compressed row; anything that reads the header and decodes nothing sees the full size."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(row)) + chunk(b"IEND", b"")


def _prepare_error(reed: Path, out: Path) -> str:
    with pytest.raises(T2IError) as e:
        prepare_cache(reed, sizes=(16,), out=out, progress=False)
    msg = str(e.value)
    assert "\n" not in msg
    assert not out.exists()
    return msg


def _prepare_skipping(reed: Path, out: Path, bad: Path, fragment: str) -> None:
    with pytest.warns(UserWarning) as caught:
        prepare_cache(reed, sizes=(16,), out=out, skip_bad=True, progress=False)
    assert any(bad.name in str(w.message) and fragment in str(w.message) for w in caught)
    cache = PreparedCache.open(out)
    assert cache.n == 7 and bad.stem not in cache.names


def test_symlink_loop_image(reed: Path, tmp_path: Path) -> None:
    img = _first_image(reed)
    img.unlink()
    img.symlink_to(img.name)  # images/x.png → images/x.png
    msg = _prepare_error(reed, tmp_path / "c")
    assert img.name in msg and "symlink loop" in msg and "--skip-bad" in msg
    _prepare_skipping(reed, tmp_path / "c", img, "symlink loop")


def test_symlink_loop_caption(reed: Path, tmp_path: Path) -> None:
    txt = _first_caption(reed)
    txt.unlink()
    txt.symlink_to(txt.name)
    msg = _prepare_error(reed, tmp_path / "c")
    assert txt.name in msg and "symlink loop" in msg


def test_caption_path_that_is_a_directory(reed: Path, tmp_path: Path) -> None:
    txt = _first_caption(reed)
    txt.unlink()
    txt.mkdir()
    msg = _prepare_error(reed, tmp_path / "c")
    assert txt.name in msg and "is a directory" in msg
    _prepare_skipping(reed, tmp_path / "c", txt, "directory")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this OS")
def test_caption_fifo_does_not_hang(reed: Path, tmp_path: Path) -> None:
    txt = _first_caption(reed)
    txt.unlink()
    os.mkfifo(txt)
    result: dict[str, BaseException | None] = {}

    def run() -> None:
        try:
            prepare_cache(reed, sizes=(16,), out=tmp_path / "c", progress=False)
            result["error"] = None
        except BaseException as e:
            result["error"] = e

    worker = threading.Thread(target=run, daemon=True)  # a daemon: a hang fails the test, not the session
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "prepare blocked on the FIFO"
    err = result["error"]
    assert isinstance(err, T2IError) and txt.name in str(err) and "FIFO" in str(err)


@pytest.mark.parametrize("kind", ["bomb", "oversized"])
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's note; our error is the test
def test_huge_images_refused_and_skipped(reed: Path, tmp_path: Path, kind: str) -> None:
    """A decompression bomb (Pillow's own limit) and a 12000² PNG (over ours): refused from the header, by name."""
    img = _first_image(reed)
    side = 14000 if kind == "bomb" else 12000  # 196 M pixels > Pillow's 179 M; 144 M > MAX_DECODE_PIXELS
    img.write_bytes(_huge_png(side, side))
    if kind == "oversized":
        with Image.open(img) as im:  # a PNG Pillow opens (its header), under Pillow's own bomb limit
            assert im.size == (side, side)
    else:
        with pytest.raises(Image.DecompressionBombError):
            Image.open(img)
    assert side * side > MAX_DECODE_PIXELS
    msg = _prepare_error(reed, tmp_path / "c")
    assert img.name in msg
    assert ("decompression bomb" if kind == "bomb" else "12000×12000") in msg
    _prepare_skipping(reed, tmp_path / "c", img, "bomb" if kind == "bomb" else "pixels")


def test_cli_skip_bad_reports_the_bomb(reed: Path, tmp_path: Path) -> None:
    img = _first_image(reed)
    img.write_bytes(_huge_png(14000, 14000))
    result = CliRunner().invoke(cli, ["data", "prepare", str(reed), "--out", str(tmp_path / "c"), "--skip-bad"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "decompression bomb" in result.output
    assert PreparedCache.open(tmp_path / "c").n == 7


# -- CUB metadata ----------------------------------------------------------------------------------------------------
def _cub_files(reed: Path, boxes: str, images_txt: bytes | None = None) -> tuple[Path, Path]:
    names = sorted(p.name for p in (reed / "images").glob("*.png"))
    images = images_txt or "".join(f"{i} {n}\n" for i, n in enumerate(names, 1)).encode()
    (reed / "images.txt").write_bytes(images)
    lines = [f"{i} 1.0 1.0 8.0 8.0" for i in range(1, len(names) + 1)]
    lines[1] = f"2 {boxes}"
    (reed / "bounding_boxes.txt").write_text("\n".join(lines) + "\n")
    return reed / "images.txt", reed / "bounding_boxes.txt"


@pytest.mark.parametrize("box", ["nan 1.0 8.0 8.0", "1.0 1.0 inf 8.0", "1.0 -inf 8.0 8.0", "1.0 1.0 0 8.0"])
def test_cub_boxes_nan_inf(reed: Path, tmp_path: Path, box: str) -> None:
    _cub_files(reed, box)
    msg = _prepare_error(reed, tmp_path / "c")
    assert "bounding_boxes.txt" in msg and "line 2" in msg


def test_cub_latin1_images_txt(reed: Path, tmp_path: Path) -> None:
    _cub_files(reed, "1.0 1.0 8.0 8.0", images_txt="1 oiseau_café.png\n".encode("latin-1"))
    msg = _prepare_error(reed, tmp_path / "c")
    assert "images.txt" in msg and "not UTF-8" in msg


# -- a cache meta.json with wrong types -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value"),
    [("n", "eight"), ("n", -1), ("sizes", 16), ("sizes", ["x"]), ("class_names", 3), ("fingerprint", 7)],
)
def test_cache_meta_wrong_types(
    reed: Path, tmp_path: Path, key: str, value: object, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = prepare_cache(reed, sizes=(16,), out=tmp_path / "c", progress=False)
    meta_path = cache / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta[key] = value
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(T2IError, match=f"'{key}' must be") as e:
        PreparedCache.open(cache)
    assert "meta.json" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(SystemExit) as exit_:
        main(["data", "show", str(cache)])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and err.startswith("error: ") and "\n" not in err and "meta.json" in err


def test_cache_meta_not_an_object(reed: Path, tmp_path: Path) -> None:
    cache = prepare_cache(reed, sizes=(16,), out=tmp_path / "c", progress=False)
    (cache / "meta.json").write_text("[1, 2, 3]")
    with pytest.raises(T2IError, match="JSON object"):
        PreparedCache.open(cache)
