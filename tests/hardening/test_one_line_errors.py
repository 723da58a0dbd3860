"""Bad options and files that used to end in a traceback (or a huge allocation): each is now a one-line
``error: …`` naming the option, key or file, with exit status 2, checked before any work starts and writing nothing.

Covered here: `sample` bounds (--seeds 0-300000, seeds ≥ 2^64 or negative, captions × seeds over the limit),
`sample --out x.txt`, `--captions` that is a FIFO, `--set` values that are non-finite or out of range.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import torch

from t2igan.apps.cli import main


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI in-process; assert exit 2 with a one-line `error: …`, the last thing printed; return it."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.endswith(errors[0]), err[-2000:]
    return errors[0]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real pretrained folder: untrained 32 px ReedGenerator + tiny char-CNN-RNN, saved by `save_pretrained`."""
    from t2igan.models.reed import ReedConfig, ReedGenerator
    from t2igan.sampling import T2IPipeline
    from t2igan.text import CharCnnRnn, CharCnnRnnConfig

    torch.manual_seed(0)
    gen = ReedGenerator(ReedConfig(image_size=32, z_dim=8, text_dim=16, proj_dim=8, ngf=8, ndf=8))
    text = CharCnnRnn(CharCnnRnnConfig(conv_channels=(8, 8, 8), rnn_dim=8, embed_dim=16))
    folder = tmp_path_factory.mktemp("model") / "pretrained"
    T2IPipeline(gen, text).save_pretrained(folder)
    return folder


# -- sample: bounds -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--seeds", "0-300000"], "--seeds: '0-300000' lists 300,001 seeds; at most 4,096 per call"),
        (["--seeds", "0-99999999999999999"], "at most 4,096 per call"),
        (["--seeds", "18446744073709551616"], "below 2^64"),
        (["--seeds", "5,18446744073709551616"], "below 2^64"),
        (["--seeds=-5"], "non-negative"),
        (["--seeds", "9-3"], "is empty"),
        (["--seed", "18446744073709551615", "-n", "2"], "pass 2^64"),
        (["-n", "200", "--captions", "CAPS"], "31 caption(s) × 200 seed(s) = 6,200 images; at most 4,096"),
    ],
)
def test_sample_bounds(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    caps = tmp_path / "caps.txt"
    caps.write_text("\n".join(f"a flower with {i} red petals" for i in range(30)) + "\n")
    args = [str(caps) if a == "CAPS" else a for a in args]
    out = tmp_path / "grid.png"
    err = _cli_error(["sample", str(model), "a red flower", *args, "--out", str(out)], capsys)
    assert fragment in err
    assert not out.exists()


def test_sample_pixel_bound_scales_with_the_model(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """4096 32-px images fit the pixel bound; ×5 upscaled (160 px each) they do not — refused before sampling."""
    import t2igan.apps.cli_sample as cs

    assert 4096 * 32**2 <= cs.MAX_SAMPLE_PIXELS < 4096 * 160**2
    out = tmp_path / "g.png"
    err = _cli_error(["sample", str(model), "x", "--seeds", "0-4095", "--scale", "5", "--out", str(out)], capsys)
    assert "160×160" in err and "--scale" in err
    assert not out.exists()


def test_split_advice_names_the_next_call(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _cli_error(["sample", str(model), "x", "--seeds", "0-10000"], capsys)
    assert "--seeds 0-4095 then --seeds 4096-8191" in err


@pytest.mark.parametrize("name", ["x.txt", "grid", "out.svg"])
def test_sample_out_with_unsupported_suffix(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    err = _cli_error(["sample", str(model), "a red flower", "--out", str(tmp_path / name)], capsys)
    assert name in err and "cannot write an image" in err and ".png" in err
    assert list(tmp_path.iterdir()) == []


def test_interpolate_and_style_check_out_suffix_first(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _cli_error(
        ["interpolate", str(model), "--text", "a", "--text", "b", "--out", str(tmp_path / "s.txt")], capsys
    )
    assert "s.txt" in err and "cannot write an image" in err


def test_sample_still_works(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "g.jpg"
    main(["sample", str(model), "a red flower", "--seeds", "0-3", "--out", str(out)])
    assert out.is_file() and out.read_bytes()[:2] == b"\xff\xd8"  # a JPEG, from the suffix


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this OS")
def test_sample_captions_fifo_does_not_hang(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "caps.txt"
    os.mkfifo(fifo)
    box: dict[str, str] = {}
    worker = threading.Thread(
        target=lambda: box.update(err=_cli_error(["sample", str(model), "--captions", str(fifo)], capsys)),
        daemon=True,
    )
    worker.start()
    worker.join(30)
    assert not worker.is_alive(), "sample blocked reading the FIFO"
    assert "caps.txt" in box["err"] and "not a regular file" in box["err"]


# -- --set values ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("train.steps=.inf", "train.steps must be an integer, got inf"),
        ("train.steps=-5", "train.steps=-5 is out of range"),
        ("train.steps=0", "train.steps=0 is out of range"),
        ("train.epochs=-3", "train.epochs=-3.0 is out of range"),
        ("train.epochs=.nan", "train.epochs=nan must be a finite number"),
        ("train.max_minutes=-1", "train.max_minutes=-1.0 is out of range"),
        ("optim.lr=-1", "optim.lr=-1.0 is out of range"),
        ("optim.lr=.inf", "optim.lr=inf must be a finite number"),
        ("optim.lr=1e999", "optim.lr=inf must be a finite number"),
        ("optim.beta1=1.5", "optim.beta1=1.5 is out of range"),
        ("data.k_avg=0", "data.k_avg=0 is out of range"),
        ("train.threads=-1", "train.threads=-1 is out of range"),
        ("train.device=tpu", "train.device='tpu' is unknown"),
        ("loss.cls_weight=2", "loss.cls_weight=2.0 is out of range"),
        ("seed=-1", "seed=-1 must be in"),
    ],
)
def test_set_values_out_of_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], override: str, fragment: str
) -> None:
    run = tmp_path / "run"
    err = _cli_error(["train", "-c", "reed_tiny", "--out", str(run), "--set", override, "--dry-run"], capsys)
    assert fragment in err
    assert not run.exists()
