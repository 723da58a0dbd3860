"""ONNX export: every exported graph against PyTorch in onnxruntime (≤ 1e-4), dynamic batch, the numpy tokenisation
of the example against t2igan's, and examples/onnx_sample.py running with torch unavailable."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from t2igan.apps.cli import main
from t2igan.models.reed import ReedGenerator, reed_config
from t2igan.models.stackgan import StackGanGenerator, stackgan_config
from t2igan.models.stackganpp import StackGanPPGenerator, stackganpp_config
from t2igan.sampling import T2IPipeline
from t2igan.sampling.onnx_export import export_onnx
from t2igan.text.char_cnn_rnn import CharCnnRnn
from t2igan.text.word_rnn import WordRnn
from t2igan.utils.errors import T2IError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "onnx_sample.py"
CAPTIONS = [
    "this flower has five pink petals and a yellow center",
    "A flower with “curly” BLUE petals — and a white centre…",  # folded to ASCII
    "a very long caption " * 15,  # cut at max_len
    "x",
]


def _pipe(generator: torch.nn.Module, text_dim: int) -> T2IPipeline:
    torch.manual_seed(0)
    enc = CharCnnRnn.from_preset("tiny", embed_dim=text_dim) if text_dim else None
    return T2IPipeline(generator.eval(), enc)


def _save(pipe: T2IPipeline, tmp_path: Path) -> Path:
    return pipe.save_pretrained(tmp_path / "pretrained")


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _generators() -> dict[str, tuple[torch.nn.Module, int]]:
    torch.manual_seed(0)
    return {
        "reed": (ReedGenerator(reed_config("tiny", text_dim=16)), 16),
        "stackgan2": (StackGanGenerator(stackgan_config("tiny", stage=2, text_dim=16)), 16),
        "stackganpp": (StackGanPPGenerator(stackganpp_config("tiny", text_dim=16)), 16),
        "stackganpp_uncond": (StackGanPPGenerator(stackganpp_config("tiny", text_dim=16, conditional=False)), 0),
    }


@pytest.mark.parametrize("name", ["reed", "stackgan2", "stackganpp", "stackganpp_uncond"])
def test_generator_graph_matches_pytorch_for_any_batch(tmp_path, name: str) -> None:
    generator, text_dim = _generators()[name]
    pipe = _pipe(generator, text_dim)
    info = export_onnx(_save(pipe, tmp_path), tmp_path / "onnx")
    g = info["generator"]
    model = onnx.load(str(tmp_path / "onnx" / "generator.onnx"))
    assert model.opset_import[0].version >= 17
    assert all(i.type.tensor_type.shape.dim[0].dim_param == "batch" for i in model.graph.input)
    n = 5  # not the traced batch size
    z = pipe.prepare_latents(n, seeds=list(range(n)))
    emb = torch.randn(n, text_dim)
    eps = pipe.prepare_ca_noise(n, seeds=list(range(n))) or []
    assert g["eps_dims"] == [int(e.shape[1]) for e in eps]
    assert len(eps) == {"reed": 0, "stackgan2": 2, "stackganpp": 1, "stackganpp_uncond": 0}[name]
    want = pipe.generate(z, emb, ca_noise=eps or None)  # the pipeline's own forward, coarse → fine
    feeds = {"z": z.numpy(), **({"text_emb": emb.numpy()} if text_dim else {})}
    feeds.update({f"eps_{k}": e.numpy() for k, e in enumerate(eps)})
    assert sorted(feeds) == sorted(g["inputs"])
    got = _session(tmp_path / "onnx" / "generator.onnx").run(None, feeds)
    assert len(got) == len(want) == len(g["outputs"])
    for a, b in zip(got, want, strict=True):
        assert a.shape == tuple(b.shape) and np.abs(a - b.numpy()).max() <= 1e-4
    assert g["max_abs_diff_vs_torch"] <= 1e-4
    assert (info["text_encoder"]["file"] is not None) == bool(text_dim)


def test_text_encoder_graph_with_the_examples_numpy_tokenisation_matches_encode(tmp_path) -> None:
    generator, text_dim = _generators()["reed"]
    pipe = _pipe(generator, text_dim)
    info = export_onnx(_save(pipe, tmp_path), tmp_path / "onnx")
    assert info["text_encoder"]["max_abs_diff_vs_torch"] <= 1e-4
    spec = json.loads((tmp_path / "onnx" / "text_encoder.json").read_text())
    example = runpy.run_path(str(EXAMPLE))  # its functions only (no __main__)
    tokens = example["tokenize"](CAPTIONS, spec)
    from t2igan.text.char_cnn_rnn import tokenize

    assert np.array_equal(tokens, tokenize(CAPTIONS, spec["max_len"])[0].numpy())
    got = _session(tmp_path / "onnx" / "text_encoder.onnx").run(None, {"tokens": tokens})[0]
    with pytest.warns(UserWarning, match="truncated"):
        want = pipe.text_encoder.encode(CAPTIONS).numpy()
    assert got.shape == (4, text_dim) and np.abs(got - want).max() <= 1e-4


def test_word_lstm_graph_with_the_examples_word_tokenisation_matches_encode(tmp_path) -> None:
    generator, text_dim = _generators()["reed"]
    torch.manual_seed(0)
    words = WordRnn.build([*CAPTIONS[:2], "pink petals, pointed"], preset="tiny", embed_dim=text_dim, max_words=12)
    pipe = T2IPipeline(generator.eval(), words.eval())
    info = export_onnx(_save(pipe, tmp_path), tmp_path / "onnx")
    te = info["text_encoder"]
    assert te["type"] == "word-rnn" and te["inputs"]["tokens"] == ["batch", "words"]
    assert te["max_abs_diff_vs_torch"] <= 1e-4
    spec = json.loads((tmp_path / "onnx" / "text_encoder.json").read_text())
    example = runpy.run_path(str(EXAMPLE))
    captions = [*CAPTIONS, "petals of an unheard-of colour", "!!"]  # unknown words, a long caption cut at 12 words
    tokens = example["tokenize"](captions, spec)
    with pytest.warns(UserWarning, match="truncated"):
        assert np.array_equal(tokens, words.tokenize(captions).numpy())
    assert tokens.shape == (6, 12) and (tokens == 1).any()  # unknown words map to index 1
    session = _session(tmp_path / "onnx" / "text_encoder.onnx")
    got = session.run(None, {"tokens": tokens})[0]
    with pytest.warns(UserWarning, match="truncated"):
        want = pipe.text_encoder.encode(captions).numpy()
    assert got.shape == (6, text_dim) and np.abs(got - want).max() <= 1e-4
    short = example["tokenize"](["pink petals"], spec)  # another length: the word axis is dynamic
    assert short.shape == (1, 2)
    assert np.abs(session.run(None, {"tokens": short})[0] - words.encode(["pink petals"]).numpy()).max() <= 1e-4


def test_ca_mean_export_has_no_eps_inputs_and_the_pipeline_is_left_as_it_was(tmp_path) -> None:
    generator, text_dim = _generators()["stackgan2"]
    pipe = _pipe(generator, text_dim)
    info = export_onnx(pipe, tmp_path / "onnx", ca_mean=True)
    assert info["generator"]["eps_dims"] == [] and sorted(info["generator"]["inputs"]) == ["text_emb", "z"]
    assert info["generator"]["ca_mean"] and not pipe.generator.use_ca_mean
    with pytest.raises(T2IError, match="no conditioning augmentation"):
        export_onnx(_pipe(*_generators()["reed"]), tmp_path / "reed", ca_mean=True)


def test_cli_export_and_the_example_runs_without_torch(tmp_path) -> None:
    generator, text_dim = _generators()["stackgan2"]
    model = _save(_pipe(generator, text_dim), tmp_path)
    (model / "README.md").write_text("---\nlibrary_name: t2igan\n---\n# card\n")
    out = tmp_path / "onnx"
    main(["export", str(model), "--format", "onnx", "--out", str(out)])
    assert {p.name for p in out.iterdir()} >= {
        "generator.onnx", "text_encoder.onnx", "text_encoder.json", "onnx_model.json", "README.md"
    }  # fmt: skip
    main(["export", str(model), "--out", str(out), "--opset", "18"])  # an earlier export is replaced
    assert json.loads((out / "onnx_model.json").read_text())["opset"] == 18
    png = tmp_path / "grid.png"
    code = (
        "import sys; sys.modules['torch'] = None; import runpy; "
        f"sys.argv = ['onnx_sample.py', {str(out)!r}, 'red petals', 'blue petals', '--seeds', '0-2', "
        f"'--out', {str(png)!r}]; runpy.run_path({str(EXAMPLE)!r}, run_name='__main__'); "
        "assert sys.modules['torch'] is None and 't2igan' not in sys.modules"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "2 caption(s) × 3 seed(s), 32 px" in res.stdout
    with Image.open(png) as im:
        assert im.size == (3 * 34 + 2, 2 * 34 + 2)
        arr = np.asarray(im)
    assert arr[2:34, 2:34].std() > 0 and not np.array_equal(arr[2:34, 2:34], arr[2:34, 36:68])  # seeds differ


def test_export_refuses_a_foreign_folder_and_models_without_sje_encoder(tmp_path) -> None:
    generator, _ = _generators()["reed"]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(T2IError, match="refusing to replace"):
        export_onnx(T2IPipeline(generator.eval(), None), foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    info = export_onnx(T2IPipeline(generator.eval(), None), tmp_path / "pre")  # precomputed embeddings
    assert info["text_encoder"]["file"] is None and not (tmp_path / "pre" / "text_encoder.onnx").exists()
