"""The word-level encoder (Reed et al. 2016's word-LSTM): words, padding, persistence and DS-SJE training."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from t2igan.text import CaptionTruncatedWarning, WordRnn, load_text_encoder
from t2igan.text.word_rnn import PAD, UNK, split_words
from t2igan.utils.errors import T2IError

CAPTIONS = ["Pink, pointed petals.", "a flower with five round yellow petals", "yellow centre"]


def _encoder(**kw) -> WordRnn:
    torch.manual_seed(0)
    return WordRnn.build(CAPTIONS, "tiny", **kw).eval()


def test_words_vocabulary_and_unknown_words() -> None:
    assert split_words("Pétales – Pink, pointed!") == ["petales", "-", "pink", ",", "pointed", "!"]
    enc = _encoder()
    assert enc.config.vocab == sorted(set(w for c in CAPTIONS for w in split_words(c)))
    tok = enc.tokenize(["pink petals", "pink zebra petals"])
    assert tok.shape == (2, 3) and tok[0, 2] == PAD and tok[1, 1] == UNK
    assert tok[0, 0] == tok[1, 0] == enc.index["pink"] and tok[0, 1] == tok[1, 2] == enc.index["petals"]
    assert enc.tokenize(["!!!?"]).tolist() == [[UNK] * 4]  # punctuation outside the vocabulary is still a word
    assert enc.tokenize(["  "], warn=False).tolist() == [[UNK]]  # nothing left: one unknown word, never an empty row


def test_padding_does_not_change_a_caption_and_long_captions_warn() -> None:
    enc = _encoder(max_words=8)
    alone = enc.encode(["pink petals"])
    beside_long = enc.encode(["pink petals", "a flower with five round yellow petals"])
    enc = _encoder(max_words=6)
    torch.testing.assert_close(alone[0], beside_long[0], rtol=0, atol=1e-6)
    assert not torch.allclose(beside_long[0], beside_long[1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        enc.encode(["a flower with five round yellow petals"])
    assert any(issubclass(w.category, CaptionTruncatedWarning) and "6 words" in str(w.message) for w in caught)


def test_save_load_roundtrip(tmp_path: Path) -> None:
    enc = _encoder()
    enc.save_pretrained(tmp_path / "enc")
    again = load_text_encoder(tmp_path / "enc")
    assert isinstance(again, WordRnn) and again.config == enc.config
    assert again.fingerprint() == enc.fingerprint()
    torch.testing.assert_close(again.encode(CAPTIONS), enc.encode(CAPTIONS), rtol=0, atol=0)


def test_config_errors_are_clear() -> None:
    with pytest.raises(T2IError, match="rnn_type must be 'lstm' or 'gru'"):
        _encoder(rnn_type="transformer")
    with pytest.raises(T2IError, match="unknown word-rnn preset 'huge'"):
        WordRnn.build(CAPTIONS, "huge")
    with pytest.raises(T2IError, match="no words"):
        WordRnn.build(["", " "], "tiny")
    with pytest.raises(T2IError, match="max_words, word_dim, rnn_dim and embed_dim must be ≥ 1"):
        _encoder(max_words=0)
    with pytest.raises(T2IError, match="lists a word twice"):
        WordRnn.from_config({"vocab": ["a", "a"]})
    with pytest.raises(T2IError, match="unknown text preset 'huge'"):
        from t2igan.text import make_train_config

        make_train_config("tiny", text_model="word-rnn", text_preset="huge")
    with pytest.raises(T2IError, match="unknown word-rnn config keys"):
        WordRnn.from_config({"vocab": ["a"], "alphabet": "abc"})


def test_ds_sje_trains_a_word_model(tiny_cache, tmp_path: Path) -> None:
    from t2igan.text import load_sje, make_train_config, train_sje

    cfg = make_train_config("tiny", steps=4, text_model="word-rnn")
    m = train_sje(tiny_cache, tmp_path / "sje", cfg, progress=False)
    assert m["unseen_classes"] == 20 and m["steps"] == 4
    text, image = load_sje(tmp_path / "sje")
    assert isinstance(text, WordRnn) and "petals" in text.index
    assert text.encode(["pink pointed petals"]).shape == (1, image.config.embed_dim)
    # resume refuses a different text model; the same options continue the run
    with pytest.raises(T2IError):
        train_sje(tiny_cache, tmp_path / "sje", make_train_config("tiny", steps=6), resume=True, progress=False)
    m6 = train_sje(tiny_cache, tmp_path / "sje", make_train_config("tiny", steps=6, text_model="word-rnn"), resume=True)
    assert m6["steps"] == 6
    with pytest.raises(T2IError, match="unknown text model 'bert'"):
        make_train_config("tiny", text_model="bert")
