"""The TextEncoder contract: shapes, determinism, save/load, truncation, unknown characters, empty captions."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from t2igan.text import CaptionTruncatedWarning, CharCnnRnn, fold_ascii, load_text_encoder
from t2igan.text.char_cnn_rnn import ALPHABET, PRESETS, tokenize
from t2igan.utils.errors import T2IError

CAPS = ["this flower has pink petals", "A yellow center with WHITE petals!", "petals: red; center: blue"]


def test_alphabet_is_the_papers_seventy_symbols() -> None:
    assert len(ALPHABET) == 70 and ALPHABET.endswith(" ")
    assert PRESETS["paper"].max_len == 201 and PRESETS["paper"].embed_dim == 1024


def test_shapes_and_determinism(tiny_encoder: CharCnnRnn) -> None:
    a = tiny_encoder.encode(CAPS)
    b = tiny_encoder.encode(CAPS)
    assert a.shape == (3, tiny_encoder.dim) and a.dtype == torch.float32
    assert torch.equal(a, b)
    one = tiny_encoder.encode(CAPS[1])
    torch.testing.assert_close(one[0], a[1], rtol=1e-5, atol=1e-6)  # independent of the batch it is in
    small_batches = tiny_encoder.encode(CAPS, batch_size=1)
    torch.testing.assert_close(small_batches, a, rtol=1e-5, atol=1e-6)


def test_encode_restores_training_mode(tiny_encoder: CharCnnRnn) -> None:
    tiny_encoder.train()
    tiny_encoder.encode(CAPS)
    assert tiny_encoder.training


def test_paper_shapes() -> None:
    enc = CharCnnRnn.from_preset("paper")
    tokens, _ = tokenize(CAPS[:1], 201)
    x = torch.nn.functional.one_hot(tokens, 71)[..., 1:].float().transpose(1, 2)
    assert enc.conv(x).shape == (1, 512, 8)  # ~8 timesteps into the GRU, as in the paper
    assert enc.encode(CAPS[:1]).shape == (1, 1024)


def test_save_load_round_trip(tiny_encoder: CharCnnRnn, tmp_path: Path) -> None:
    tiny_encoder.save_pretrained(tmp_path / "enc")
    cfg = json.loads((tmp_path / "enc" / "config.json").read_text())
    assert cfg["type"] == "char-cnn-rnn" and (tmp_path / "enc" / "model.safetensors").exists()
    loaded = load_text_encoder(tmp_path / "enc")
    assert isinstance(loaded, CharCnnRnn) and loaded.dim == tiny_encoder.dim
    assert torch.equal(loaded.encode(CAPS), tiny_encoder.encode(CAPS))
    assert loaded.fingerprint() == tiny_encoder.fingerprint()
    assert CharCnnRnn.from_pretrained(tmp_path / "enc").config == tiny_encoder.config


def test_truncation_warns_once(tiny_encoder: CharCnnRnn) -> None:
    long = "pink petals " * 30  # 360 characters > 201
    with pytest.warns(CaptionTruncatedWarning, match="201 characters"):
        e = tiny_encoder.encode([long, "short one"])
    # only the first 201 characters count
    torch.testing.assert_close(e[0], tiny_encoder.encode([long[:201]])[0], rtol=1e-5, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny_encoder.encode(["short one"])


def test_unknown_characters_are_folded_consistently(tiny_encoder: CharCnnRnn) -> None:
    assert fold_ascii("Pétales “Roses” – Jaune\tvif") == 'petales "roses" - jaune vif'
    a = tiny_encoder.encode(["Pétales ROSES\u200b"])
    b = tiny_encoder.encode(["petales roses"])
    assert torch.equal(a, b)
    tokens, _ = tokenize(["日本 flower"], 201)  # characters with no ASCII form are dropped
    ref, _ = tokenize(["flower"], 201)
    assert torch.equal(tokens, ref)


@pytest.mark.parametrize("bad", [[""], ["   "], ["ok", ""]])
def test_empty_caption_is_an_error(tiny_encoder: CharCnnRnn, bad: list[str]) -> None:
    with pytest.raises(T2IError, match="empty"):
        tiny_encoder.encode(bad)


def test_caption_only_unknown_chars_still_encodes(tiny_encoder: CharCnnRnn) -> None:
    assert tiny_encoder.encode(["日本"]).shape == (1, tiny_encoder.dim)  # all padding: defined, not an error


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(T2IError, match="no such text encoder"):
        load_text_encoder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(T2IError, match=r"config\.json missing"):
        load_text_encoder(tmp_path / "empty")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").write_text('{"type": "word2vec"}')
    with pytest.raises(T2IError, match="unknown text encoder type"):
        load_text_encoder(tmp_path / "odd")


def test_mismatched_weights_are_a_clear_error(tiny_encoder: CharCnnRnn, tmp_path: Path) -> None:
    tiny_encoder.save_pretrained(tmp_path / "enc")
    cfg = json.loads((tmp_path / "enc" / "config.json").read_text())
    cfg["rnn_dim"] = 12
    (tmp_path / "enc" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(T2IError, match=r"do not fit config\.json"):
        load_text_encoder(tmp_path / "enc")
