"""The model shipped inside the package: name resolution, `t2igan sample` / `serve` without a model argument, its
model card, the reproduction script, and the wheel that carries it (built and installed into a folder)."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from PIL import Image

from t2igan.apps.cli import main
from t2igan.apps.cli_sample import model_and_captions
from t2igan.pretrained import DEFAULT_MODEL, MAX_SHIPPED_MB, shipped_folder
from t2igan.sampling import T2IPipeline
from t2igan.text.char_cnn_rnn import CharCnnRnn
from t2igan.utils.errors import T2IError

ROOT = Path(__file__).resolve().parents[1]
CAPTION = "this flower has five pink petals and a yellow center"


def test_shipped_name_resolves_and_draws() -> None:
    pipe = T2IPipeline.from_pretrained(DEFAULT_MODEL)
    assert pipe.path == shipped_folder(DEFAULT_MODEL) and pipe.path.is_relative_to(ROOT / "src" / "t2igan")
    assert isinstance(pipe.text_encoder, CharCnnRnn) and pipe.image_size == 64
    out = pipe(prompt=CAPTION, num_images_per_prompt=2, output_type="pt")
    assert out.images.shape == (2, 3, 64, 64) and float(out.images.std()) > 0.01


def test_unknown_name_is_one_line_listing_the_shipped_models(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(T2IError, match="no such model folder or shipped model name") as e:
        T2IPipeline.from_pretrained("flowers-99")
    assert "flowers-64" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(SystemExit):
        main(["sample", "--model", "flowers-99", "red petals"])
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "shipped model: flowers-64" in err


def test_an_existing_folder_wins_over_a_shipped_name(tmp_path, monkeypatch) -> None:
    shipped = T2IPipeline.from_pretrained(DEFAULT_MODEL)
    monkeypatch.chdir(tmp_path)
    shipped.save_pretrained(tmp_path / DEFAULT_MODEL)
    assert T2IPipeline.from_pretrained(DEFAULT_MODEL).path == Path(DEFAULT_MODEL)


def test_which_sample_argument_is_the_model(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "demo").mkdir(parents=True)
    assert model_and_captions(("a red flower", "blue"), None) == (DEFAULT_MODEL, ["a red flower", "blue"])
    assert model_and_captions(("runs/demo", "a red flower"), None) == ("runs/demo", ["a red flower"])
    assert model_and_captions(("runs", "red"), None) == ("runs", ["red"])  # an existing folder
    assert model_and_captions(("flowers-64", "red"), None) == ("flowers-64", ["red"])
    assert model_and_captions(("runs/missing", "red"), None) == ("runs/missing", ["red"])  # a path: an error later
    assert model_and_captions(("runs/demo", "red"), "other") == ("other", ["runs/demo", "red"])  # --model: captions
    assert model_and_captions(("red/blue petals",), None) == (DEFAULT_MODEL, ["red/blue petals"])  # has a space


def test_sample_without_a_model_argument_uses_the_shipped_model(tmp_path, capsys) -> None:
    out = tmp_path / "pink.png"
    main(["sample", CAPTION, "--out", str(out), "-n", "2"])
    assert "1×2 grid" in capsys.readouterr().out
    with Image.open(out) as im:
        assert im.width >= 2 * 64
    main(["sample", "--model", DEFAULT_MODEL, CAPTION, "a flower with blue petals", "--out", str(out), "-n", "1"])
    assert "2×1 grid" in capsys.readouterr().out


def test_serve_without_a_model_starts_on_the_shipped_model(monkeypatch, capsys) -> None:
    pytest.importorskip("fastapi")
    import t2igan.apps.serve as serve

    started = {}
    monkeypatch.setattr(serve, "check_port_free", lambda host, port: None)
    monkeypatch.setattr(serve, "run_server", lambda app, host, port: started.update(app=app, port=port))
    real_load = serve.load_serve_pipeline
    monkeypatch.setattr(serve, "load_serve_pipeline", lambda p, device: started.update(model=p) or real_load(p, device))
    main(["serve", "--port", "7999"])
    assert started["model"] == DEFAULT_MODEL and started["port"] == 7999
    info = serve.model_info(real_load(DEFAULT_MODEL, "cpu"))
    assert (
        info["image_size"] == 64
        and info["examples"] == json.loads((shipped_folder(DEFAULT_MODEL) / "examples.json").read_text())[:6]
    )


def test_shipped_folder_card_size_and_no_absolute_paths() -> None:
    folder = shipped_folder(DEFAULT_MODEL)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size <= MAX_SHIPPED_MB * 2**20
    text = (folder / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(text[4:].split("\n---\n", 1)[0])
    assert front["library_name"] == "t2igan" and front["pipeline_tag"] == "text-to-image"
    assert any(m.startswith("attr_acc_") for m in front["metrics"])  # measured, by protocol name
    assert "## Reproduce" in text and "scripts/train_shipped_model.py" in text and (folder / "samples.png").is_file()
    for p in [*folder.rglob("*.json"), folder / "README.md"]:
        assert "/work/" not in p.read_text() and "/tmp/" not in p.read_text(), p  # no absolute paths


@pytest.mark.slow
def test_reproduction_script_writes_a_model_folder(tmp_path) -> None:
    script = runpy.run_path(str(ROOT / "scripts" / "train_shipped_model.py"))
    out = tmp_path / "model"
    result = script["main"](
        [
            "--out", str(out), "--work", str(tmp_path / "work"), "--images", "128", "--size", "32", "--steps", "2",
            "--batch", "8", "--sje-preset", "tiny", "--eval-steps", "4", "--eval-n", "12", "--threads", "1",
            "--set", "train.sample_every=1",
        ]
    )  # fmt: skip
    assert result["gan_steps"] == 2 and 0 <= result["attr_acc_unseen"] <= 1
    pipe = T2IPipeline.from_pretrained(out)
    assert isinstance(pipe.text_encoder, CharCnnRnn) and pipe.image_size == 32
    text = (out / "README.md").read_text()
    assert "--images 128" in text and "attr_acc_12_" in text and (out / "examples.json").is_file()


@pytest.mark.wheel
def test_the_wheel_carries_the_shipped_model_and_samples_without_training(tmp_path) -> None:
    """Build the wheel from a copy of the project, check its files and size, install it into a folder and run
    `python -m t2igan sample "…"` from there (no model argument, no training)."""
    import shutil

    src = tmp_path / "project"
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(tmp_path)], check=True)
    (wheel,) = tmp_path.glob("t2igan-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = [n for n in names if n.startswith("t2igan/pretrained/flowers-64/")]
    files = ("model_index.json", "README.md", "samples.png", "generator/model.safetensors", "text_encoder/config.json")
    for f in files:
        assert f"t2igan/pretrained/flowers-64/{f}" in shipped
    assert wheel.stat().st_size <= MAX_SHIPPED_MB * 2**20
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)], check=True)
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = "import t2igan, sys; sys.exit(0 if t2igan.__file__.startswith(sys.argv[1]) else 1)"
    subprocess.run([sys.executable, "-c", code, str(site)], env=env, check=True, cwd=tmp_path)  # the installed copy
    png = tmp_path / "pink.png"
    res = subprocess.run(
        [sys.executable, "-m", "t2igan", "sample", CAPTION, "--out", str(png), "-n", "2"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert png.is_file() and "1×2 grid" in res.stdout
