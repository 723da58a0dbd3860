"""encode_captions (fingerprinted, deduplicated, no work the second time) and the `t2igan encode` commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import t2igan.apps.cli_encode as cli_encode
from t2igan.apps.cli import cli
from t2igan.text import CharCnnRnn, embedding_key, encode_captions, load_text_encoder


def test_encode_captions_fingerprinted_and_deduplicated(fake_cache, tiny_encoder: CharCnnRnn, monkeypatch) -> None:
    calls: list[int] = []
    real = tiny_encoder.encode
    monkeypatch.setattr(tiny_encoder, "encode", lambda caps, **kw: calls.append(len(caps)) or real(caps, **kw))
    key = encode_captions(fake_cache, tiny_encoder)
    assert key == embedding_key(fake_cache, tiny_encoder) and key.startswith("char-cnn-rnn-")
    emb = fake_cache.embeddings(key)
    flat = fake_cache.flat_captions
    assert emb.shape == (len(flat), tiny_encoder.dim) and emb.dtype == np.float32
    assert sum(calls) == len(set(flat)) < len(flat)  # each distinct caption encoded once
    j = flat.index(flat[-1])
    np.testing.assert_array_equal(emb[j], emb[len(flat) - 1])
    np.testing.assert_allclose(emb[5], real([flat[5]])[0].numpy(), rtol=1e-5, atol=1e-6)
    assert fake_cache.embedding_meta(key)["dim"] == tiny_encoder.dim

    calls.clear()
    assert encode_captions(fake_cache, tiny_encoder) == key  # unchanged: no work
    assert calls == []

    with torch.no_grad():
        tiny_encoder.proj.bias.add_(1.0)  # new weights → new key
    assert encode_captions(fake_cache, tiny_encoder) != key


def test_encoder_that_made_the_embeddings(fake_cache, tiny_encoder: CharCnnRnn, tmp_path: Path) -> None:
    """The cache's metadata leads back to the encoder folder while it holds the same weights, and to nothing after."""
    from t2igan.text.cache import encoder_that_made

    tiny_encoder.save_pretrained(tmp_path / "enc")
    key = encode_captions(fake_cache, load_text_encoder(tmp_path / "enc"))
    meta = fake_cache.embedding_meta(key)
    found = encoder_that_made(meta)
    assert found is not None and found.fingerprint() == tiny_encoder.fingerprint()
    with torch.no_grad():
        tiny_encoder.proj.bias.add_(1.0)
    tiny_encoder.save_pretrained(tmp_path / "enc")  # same folder, other weights
    assert encoder_that_made(meta) is None
    assert encoder_that_made({}) is None


@pytest.fixture
def patched_data(fake_cache, monkeypatch):
    monkeypatch.setattr(cli_encode, "open_cache", lambda data: fake_cache)
    return fake_cache


def test_cli_train_captions_text(patched_data, tmp_path: Path, monkeypatch) -> None:
    from t2igan.text import sje_trainer

    monkeypatch.setitem(sje_trainer.TRAIN_PRESETS, "tiny", sje_trainer.make_train_config("tiny", steps=4))
    runner = CliRunner()
    out = tmp_path / "enc"
    r = runner.invoke(cli, ["encode", "train", "DATA", "--out", str(out), "--preset", "tiny", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "zero-shot top-1: unseen classes" in r.output and (out / "config.json").exists()

    r = runner.invoke(cli, ["encode", "captions", "DATA", "--encoder", str(out)])
    assert r.exit_code == 0, r.output
    key = r.stdout.strip().splitlines()[-1]
    assert patched_data.has_embeddings(key)
    r = runner.invoke(cli, ["encode", "captions", "DATA", "--encoder", str(out)])
    assert "already stored" in r.output

    r = runner.invoke(cli, ["encode", "text", "a flower with red petals", "--encoder", str(out), "--data", "D"])
    assert r.exit_code == 0, r.output
    assert "norm" in r.output and len(r.output.strip().splitlines()) == 6
    r = runner.invoke(cli, ["encode", "text", "pink", "--encoder", str(out), "--data", "D", "--json", "--top", "2"])
    res = json.loads(r.output)
    assert res["dim"] == 16 and len(res["nearest"]) == 2
    assert res["nearest"][0]["caption"] != res["nearest"][1]["caption"]


def test_cli_train_set_overrides_a_setting(patched_data, tmp_path: Path, capsys) -> None:
    from t2igan.apps.cli import main

    out = tmp_path / "enc"
    main(["encode", "train", "DATA", "--out", str(out), "--preset", "tiny", "--steps", "2", "--quiet",
          "--set", "image_size=8", "-s", "classes_per_batch=3"])  # fmt: skip
    cfg = json.loads((out / "train_config.json").read_text())
    assert (cfg["image_size"], cfg["classes_per_batch"], cfg["steps"]) == (8, 3, 2)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["encode", "train", "DATA", "--out", str(tmp_path / "e2"), "--preset", "tiny", "--set", "imagesize=8"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "unknown config key 'sje.imagesize'" in err and "image_size" in err
    assert "\n" not in err and not (tmp_path / "e2" / "checkpoints").exists()


def test_cli_errors_are_one_line(tmp_path: Path, capsys) -> None:
    from t2igan.apps.cli import main

    with pytest.raises(SystemExit) as e:
        main(["encode", "text", "pink petals", "--encoder", str(tmp_path / "nope")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "no such text encoder" in err and "\n" not in err
    with pytest.raises(SystemExit) as e:
        main(["encode", "text", "  ", "--encoder", "minilm"])
    assert e.value.code == 2 and "empty" in capsys.readouterr().err


def test_real_cache_encode_captions_and_cli(tiny_cache, tiny_encoder: CharCnnRnn, tmp_path: Path) -> None:
    key = encode_captions(tiny_cache, tiny_encoder)
    assert tiny_cache.has_embeddings(key)
    emb = tiny_cache.embeddings(key)
    assert emb.shape == (tiny_cache.n_captions, tiny_encoder.dim)
    meta = tiny_cache.embedding_meta(key)
    assert meta["encoder"] == "char-cnn-rnn" and meta["unique_captions"] <= tiny_cache.n_captions
    mtime = (tiny_cache.root / "embeddings" / f"{key}.npy").stat().st_mtime_ns
    assert encode_captions(tiny_cache, tiny_encoder) == key
    assert (tiny_cache.root / "embeddings" / f"{key}.npy").stat().st_mtime_ns == mtime  # not rewritten

    tiny_encoder.save_pretrained(tmp_path / "enc")
    runner = CliRunner()
    r = runner.invoke(cli, ["encode", "captions", str(tiny_cache.root), "--encoder", str(tmp_path / "enc")])
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().splitlines()[-1].startswith(f"{key} ")  # same encoder → same key, already stored
    r = runner.invoke(
        cli,
        ["encode", "text", "pink petals", "--encoder", str(tmp_path / "enc"), "--data", str(tiny_cache.root), "--json"],
    )
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)["nearest"]) == 5


def test_real_cache_training(tiny_cache, tmp_path: Path) -> None:
    from t2igan.text import load_sje, make_train_config, train_sje

    m = train_sje(tiny_cache, tmp_path / "sje", make_train_config("tiny", steps=4), progress=False)
    assert m["unseen_classes"] == 20 and m["seen_classes"] == 82
    text, image = load_sje(tmp_path / "sje")
    v = image.encode_images(tiny_cache.images(32)[:3])
    assert v.shape == (3, text.dim)


def test_ensure_char_cnn_rnn_trains_once(tiny_cache, tmp_path: Path, monkeypatch) -> None:
    from t2igan.text import ensure_char_cnn_rnn, sje_trainer

    key, m = ensure_char_cnn_rnn(tiny_cache, tmp_path / "demo", "tiny", progress=False, steps=3)
    assert tiny_cache.embeddings(key).shape[0] == tiny_cache.n_captions and m["steps"] == 3
    meta = tiny_cache.embedding_meta(key)  # how an exporter finds the encoder again
    again = load_text_encoder(meta["encoder_source"])
    assert meta["encoder_source"] == str((tmp_path / "demo").resolve())
    assert again.fingerprint() == meta["encoder_fingerprint"]
    monkeypatch.setattr(sje_trainer, "train_sje", lambda *a, **k: pytest.fail("retrained"))
    assert ensure_char_cnn_rnn(tiny_cache, tmp_path / "demo", "tiny", progress=False, steps=3) == (key, m)


def test_cli_prepares_a_dataset_folder(tiny_synth_dir: Path, tiny_encoder: CharCnnRnn, tmp_path: Path) -> None:
    import shutil

    src = tmp_path / "flowers"
    shutil.copytree(tiny_synth_dir, src)
    tiny_encoder.save_pretrained(tmp_path / "enc")
    r = CliRunner().invoke(cli, ["encode", "captions", str(src), "--encoder", str(tmp_path / "enc")])
    assert r.exit_code == 0, r.output
    key = r.stdout.strip().splitlines()[-1]
    from t2igan.data.cache import PreparedCache

    assert PreparedCache.open(src / ".t2igan_cache").has_embeddings(key)
