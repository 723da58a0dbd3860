"""Bad options and files that used to end in a traceback (or a huge allocation): each is now a one-line
``error: …`` naming the option, key or file, with exit status 2, checked before any work starts and writing nothing.

Covered here: `sample` bounds (--seeds 0-300000, seeds ≥ 2^64 or negative, captions × seeds over the limit),
`sample --out x.txt`, `--captions` that is a FIFO, `--set` values that are non-finite or out of range.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any

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


# -- damaged weight files -------------------------------------------------------------------------------------------
def _copy_model(model: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(model, tmp_path / "pretrained"))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _torch_save_instead(path: Path) -> None:
    torch.save({"weight": torch.zeros(3)}, path)  # a zip archive under a .safetensors name


@pytest.mark.parametrize("damage", [_truncate, _torch_save_instead], ids=["truncated", "torch-save"])
def test_damaged_text_encoder_weights(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: Any
) -> None:
    folder = _copy_model(model, tmp_path)
    weights = folder / "text_encoder" / "model.safetensors"
    damage(weights)
    out = tmp_path / "g.png"
    err = _cli_error(["sample", str(folder), "a red flower", "--out", str(out)], capsys)
    assert "text_encoder/model.safetensors" in err and "cannot read text encoder weights" in err
    assert not out.exists()


@pytest.fixture
def model_with_broken_style(model: Path, tmp_path: Path) -> Path:
    """The tiny model plus a style encoder whose weights are truncated."""
    from t2igan.models.style import StyleEncoder, StyleEncoderConfig

    folder = _copy_model(model, tmp_path)
    StyleEncoder(StyleEncoderConfig(image_size=32, z_dim=8, width=8)).save_pretrained(folder / "style_encoder")
    index = json.loads((folder / "model_index.json").read_text())
    index["style_encoder"] = ["t2igan.models.style", "StyleEncoder"]
    (folder / "model_index.json").write_text(json.dumps(index))
    _truncate(folder / "style_encoder" / "model.safetensors")
    return folder


def test_broken_style_encoder_does_not_stop_sample_or_serve(
    model_with_broken_style: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """S is read lazily: `sample` never touches it, `serve` starts without style transfer and says why once."""
    import t2igan.apps.serve as serve_mod

    folder = model_with_broken_style
    out = tmp_path / "g.png"
    main(["sample", str(folder), "a red flower", "--seeds", "0-1", "--out", str(out)])
    captured = capsys.readouterr()
    assert out.is_file() and "style" not in captured.err  # not even read
    seen: dict[str, Any] = {}
    monkeypatch.setattr(serve_mod, "run_server", lambda app, host, port: seen.update(app=app))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    main(["serve", str(folder), "--port", str(port)])
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning: style encoder not loaded")]
    assert len(warnings) == 1 and "style_encoder" in warnings[0] and "Traceback" not in err
    assert seen["app"].state.pipe.style_encoder is None


def test_broken_style_encoder_is_a_one_line_error_for_style_transfer(
    model_with_broken_style: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    image = tmp_path / "q.png"
    Image.new("RGB", (40, 40), (200, 10, 10)).save(image)
    out = tmp_path / "st.png"
    argv = [
        "style",
        "transfer",
        str(model_with_broken_style),
        "a blue flower",
        "--image",
        str(image),
        "--out",
        str(out),
    ]
    err = _cli_error(argv, capsys)
    assert "style_encoder/model.safetensors" in err and "cannot read style encoder weights" in err
    assert not out.exists()


def test_damaged_evaluator_weights(tmp_path: Path) -> None:
    from t2igan.metrics.evaluator import AttributeEvaluator, EvaluatorConfig, load_evaluator
    from t2igan.utils.errors import T2IError

    folder = tmp_path / "evaluator"
    cfg = EvaluatorConfig(
        image_size=16, attribute_names=["colour"], attribute_values=[["red", "blue"]], class_names=["a", "b"], width=4
    )
    AttributeEvaluator(cfg).save_pretrained(folder, report={})
    _truncate(folder / "model.safetensors")
    with pytest.raises(T2IError, match="cannot read evaluator weights") as e:
        load_evaluator(folder)
    assert "model.safetensors" in str(e.value) and "\n" not in str(e.value)
    _torch_save_instead(folder / "model.safetensors")
    with pytest.raises(T2IError, match=r"zip archive \(torch.save\)"):
        load_evaluator(folder)


@pytest.mark.parametrize("kind", ["plain-pickle", "code-pickle"])
def test_inception_weights_that_are_pickles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Refused before any run is read, with one line; the pickle's code never runs."""
    import pickle

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
            return (os.system, (f"touch {marker}",))

    weights = tmp_path / "inception.pth"
    if kind == "plain-pickle":
        weights.write_bytes(pickle.dumps({"fc.weight": [[0.0]]}))
    else:
        torch.save(Evil(), weights)
    err = _cli_error(["evaluate", str(tmp_path / "run"), "--inception-weights", str(weights)], capsys)
    assert "inception.pth" in err and "refusing to load Inception-v3 weights" in err
    assert not marker.exists()


def test_non_hdf5_h5_embedding_file(
    hardening_sandbox: Path, hx: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = hx.cache_of(hardening_sandbox)
    junk = tmp_path / "embeddings.h5"  # not in the shared sandbox, whose scratch folders must stay empty
    junk.write_bytes(b"this is not an HDF5 file\n" * 20)
    before = hx.tree_state(cache)
    err = _cli_error(["encode", "import", str(cache), "--embeddings", str(junk)], capsys)
    assert "embeddings.h5" in err and "not a readable HDF5 file" in err
    assert hx.tree_state(cache) == before


# -- devices --------------------------------------------------------------------------------------------------------
@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine as one without CUDA or MPS, whatever it really has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.mark.parametrize(
    ("device", "fragment"),
    [("mps", "--device mps: PyTorch has no MPS"), ("cuda", "PyTorch sees no GPU"), ("tpu", "'tpu' is not a device")],
)
@pytest.mark.usefixtures("no_gpu")
def test_unavailable_devices(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], device: str, fragment: str
) -> None:
    out = tmp_path / "g.png"
    assert fragment in _cli_error(["sample", str(model), "a", "--device", device, "--out", str(out)], capsys)
    assert fragment in _cli_error(["serve", str(model), "--device", device], capsys)
    run = tmp_path / "run"
    err = _cli_error(["train", "-c", "reed_tiny", "--out", str(run), "--device", device, "--dry-run"], capsys)
    assert fragment in err or "train.device='tpu' is unknown" in err
    assert not out.exists() and not run.exists()


@pytest.mark.usefixtures("no_gpu")
def test_train_device_key_is_checked_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _cli_error(["train", "-c", "reed_tiny", "--out", str(tmp_path / "r"), "--set", "train.device=mps"], capsys)
    assert "train.device mps: PyTorch has no MPS" in err


def test_device_names_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    from t2igan.utils.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("mps") == "mps" and resolve_device("auto") == "mps" and resolve_device("CPU") == "cpu"


# -- missing optional dependencies ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("module", "argv", "extra"),
    [
        ("matplotlib", ["demo", "--quick", "--out", "OUT"], "eval"),
        ("scipy", ["demo", "--quick", "--out", "OUT"], "eval"),
        ("scipy", ["evaluate", "OUT"], "eval"),
        ("matplotlib", ["evaluate", "OUT"], "eval"),
        ("uvicorn", ["serve", "OUT"], "web"),
    ],
)
def test_missing_optional_dependency_is_named_before_work(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    argv: list[str],
    extra: str,
) -> None:
    """A plain `pip install t2igan`: the module cannot be imported (``sys.modules[name] = None``)."""
    monkeypatch.setitem(sys.modules, module, None)
    out = tmp_path / "out"
    err = _cli_error([str(out) if a == "OUT" else a for a in argv], capsys)
    assert f"needs {module}" in err and f"pip install 't2igan[{extra}]'" in err
    assert not out.exists()  # checked before any work


def test_require_names_every_missing_module(monkeypatch: pytest.MonkeyPatch) -> None:
    from t2igan.utils.errors import T2IError
    from t2igan.utils.optional import missing, require

    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "h5py", None)
    assert missing("scipy", "numpy", "h5py") == ["scipy", "h5py"]
    with pytest.raises(T2IError, match=r"x needs scipy, h5py, which are not installed .*t2igan\[eval\]"):
        require("scipy", "h5py", extra="eval", what="x")
    require("numpy", extra="eval")
