"""One save/load mechanism for every component (t2igan.utils.pretrained): round trips, and a one-line error naming the
file for a missing, truncated or non-safetensors weights file or a broken config.json — for the generators, the
discriminator, the style encoder, the text encoder, the DS-SJE image encoder and the attribute evaluator."""

from __future__ import annotations

import json
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from t2igan.utils.errors import T2IError


def _reed_g() -> Any:
    from t2igan.models.reed import ReedGenerator, reed_config

    return ReedGenerator(reed_config("tiny", text_dim=12))


def _reed_d() -> Any:
    from t2igan.models.reed import ReedDiscriminator, reed_config

    return ReedDiscriminator(reed_config("tiny", text_dim=12))


def _stackgan() -> Any:
    from t2igan.models.stackgan import StackGanConfig, StackGanGenerator

    return StackGanGenerator(StackGanConfig(text_dim=12, z_dim=8, condition_dim=4, gf_dim=8, stage1_size=16))


def _style() -> Any:
    from t2igan.models.style import StyleEncoder, StyleEncoderConfig

    return StyleEncoder(StyleEncoderConfig(image_size=16, z_dim=8, width=4))


def _text() -> Any:
    from t2igan.text import CharCnnRnn, CharCnnRnnConfig

    return CharCnnRnn(CharCnnRnnConfig(conv_channels=(8, 8, 8), rnn_dim=8, embed_dim=12))


def _sje_image() -> Any:
    from t2igan.text.sje_image import SjeImageConfig, SjeImageEncoder

    return SjeImageEncoder(SjeImageConfig(embed_dim=12, image_size=16, channels=(4, 4)))


def _evaluator() -> Any:
    from t2igan.metrics.evaluator import AttributeEvaluator, EvaluatorConfig

    cfg = EvaluatorConfig(image_size=16, attribute_names=["c"], attribute_values=[["r", "b"]], class_names=["x", "y"])
    return AttributeEvaluator(cfg)


def _load(kind: str) -> Callable[[Path], Any]:
    from t2igan.metrics.evaluator import load_evaluator
    from t2igan.models.reed import ReedDiscriminator, ReedGenerator
    from t2igan.models.stackgan import StackGanGenerator
    from t2igan.models.style import StyleEncoder
    from t2igan.text import load_text_encoder
    from t2igan.text.sje_image import load_sje_image_encoder

    return {
        "reed-g": ReedGenerator.from_pretrained,
        "reed-d": ReedDiscriminator.from_pretrained,
        "stackgan": StackGanGenerator.from_pretrained,
        "style": StyleEncoder.from_pretrained,
        "text": load_text_encoder,
        "sje-image": load_sje_image_encoder,
        "evaluator": load_evaluator,
    }[kind]


BUILD = {
    "reed-g": _reed_g,
    "reed-d": _reed_d,
    "stackgan": _stackgan,
    "style": _style,
    "text": _text,
    "sje-image": _sje_image,
    "evaluator": _evaluator,
}


@pytest.fixture(params=sorted(BUILD))
def saved(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Any, Path]:
    torch.manual_seed(0)
    module = BUILD[request.param]().eval()
    folder = module.save_pretrained(tmp_path / request.param)
    return request.param, module, Path(folder)


def test_round_trip_and_relocatable(saved: tuple[str, Any, Path], tmp_path: Path) -> None:
    kind, module, folder = saved
    moved = folder.rename(tmp_path / "moved")  # no absolute path inside: works after a move
    loaded = _load(kind)(moved)
    a, b = module.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    doc = json.loads((moved / "config.json").read_text())
    assert doc["_class_name"] == type(module).__name__ and "_t2igan_version" in doc
    assert str(tmp_path) not in (moved / "config.json").read_text()
    assert [p.name for p in moved.iterdir() if p.name.endswith(".tmp")] == []


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


DAMAGE: dict[str, tuple[Callable[[Path], Any], str, str]] = {
    "weights-missing": (lambda f: (f / "model.safetensors").unlink(), "model.safetensors", "weights not found"),
    "weights-truncated": (lambda f: _truncate(f / "model.safetensors"), "model.safetensors", "truncated"),
    "weights-pickle": (
        lambda f: (f / "model.safetensors").write_bytes(pickle.dumps({"w": [1.0]})),
        "model.safetensors",
        "it is a Python pickle",
    ),
    "weights-empty": (lambda f: (f / "model.safetensors").write_bytes(b""), "model.safetensors", "safetensors"),
    "config-not-json": (lambda f: (f / "config.json").write_text("{oops"), "config.json", "JSON"),
    "config-missing": (lambda f: (f / "config.json").unlink(), "", "config.json missing"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_files_are_one_line_errors(saved: tuple[str, Any, Path], damage: str) -> None:
    kind, _, folder = saved
    hurt, filename, message = DAMAGE[damage]
    hurt(folder)
    with pytest.raises(T2IError) as e:
        _load(kind)(folder)
    text = str(e.value)
    assert "\n" not in text and message in text, text
    assert str(folder / filename) in text, text  # names the file (or the folder for a missing config.json)


def test_a_broken_style_encoder_does_not_stop_sampling(tmp_path: Path, capsys: Any) -> None:
    """sample (and serve) do not need S: its damaged weights are a warning, and images are still written."""
    from t2igan.apps.cli import main
    from t2igan.sampling import T2IPipeline

    torch.manual_seed(0)
    folder = T2IPipeline(_reed_g(), _text(), _style()).save_pretrained(tmp_path / "model")
    _truncate(folder / "style_encoder" / "model.safetensors")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipe = T2IPipeline.from_pretrained(folder)
        assert pipe.style_encoder is None  # read on first use: the warning comes now
    assert any("style encoder not loaded" in str(w.message) and "truncated" in str(w.message) for w in caught)
    main(["sample", str(folder), "red petals", "-n", "2", "--out", str(tmp_path / "grid.png")])  # S is never read
    assert (tmp_path / "grid.png").is_file()


def test_model_index_holds_no_absolute_paths(tmp_path: Path) -> None:
    from t2igan.training.export import export_pretrained

    outside = str(tmp_path / "somewhere" / "encoder")
    folder = export_pretrained(
        _reed_g(),
        tmp_path / "pretrained",
        model_name="reed",
        embeddings={"type": "precomputed", "key": "k", "dim": 12, "meta": {"encoder_source": outside}},
    )
    for name in ("model_index.json", "text_encoder/precomputed.json"):
        text = (folder / name).read_text()
        assert str(tmp_path) not in text, (name, text)
    index = json.loads((folder / "model_index.json").read_text())
    assert index["embeddings"]["meta"]["encoder_source"] == "encoder"
    assert index["generator"] == ["t2igan.models.reed", "ReedGenerator"]
