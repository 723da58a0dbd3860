"""benchmarks/text_probe.py: the linear probe reads an attribute the embedding carries and not one it lacks."""

from __future__ import annotations

import numpy as np
import pytest

from t2igan.data.synthetic import ATTRIBUTES
from t2igan.data.synthetic_captions import caption_attributes, make_captions


def test_probe_reads_what_the_embedding_carries_on_unseen_classes(load_benchmark) -> None:
    rng = np.random.default_rng(0)
    names = list(ATTRIBUTES)
    captions, is_test, rows = [], [], []
    for i in range(240):
        vals = [str(rng.choice(ATTRIBUTES[a])) for a in names]
        caps = make_captions(rng, *vals, k=3)
        captions.append(caps)
        is_test.append(i >= 180)
        for c in caps:
            named = caption_attributes(c)
            # the embedding: a one-hot of the petal colour the caption names (zeros if it names none) + noise;
            # nothing about the count
            code = np.zeros(len(ATTRIBUTES["petal_colour"]) + 4, np.float32)
            if "petal_colour" in named:
                code[ATTRIBUTES["petal_colour"].index(named["petal_colour"])] = 3.0
            rows.append(code + rng.normal(0, 0.3, code.shape).astype(np.float32))
    out = load_benchmark("text_probe").probe(np.stack(rows), captions, np.array(is_test), steps=200)
    assert set(out) == set(names)
    assert out["petal_colour"]["unseen"] > 0.95 and out["petal_colour"]["n_unseen"] > 0
    assert out["petal_count"]["unseen"] < 0.6  # chance is 0.25: the embedding holds no count


def test_probe_refuses_a_folder_without_cache_or_embeddings(tmp_path, load_benchmark, capsys) -> None:
    bench = load_benchmark("text_probe")
    assert bench.main([str(tmp_path)]) == 2
    assert "no prepared cache here" in capsys.readouterr().err
    cache = tmp_path / ".t2igan_cache"
    (cache / "embeddings").mkdir(parents=True)
    (cache / "captions.json").write_text('{"captions": [], "names": []}')
    assert bench.main([str(tmp_path)]) == 2
    assert "no caption embeddings" in capsys.readouterr().err


def test_stackgan_ca_codes_are_the_stage1_ca_mean_and_a_seeded_draw(tmp_path, load_benchmark, capsys) -> None:
    import torch

    from t2igan.models.stackgan import StackGanGenerator, stackgan_config
    from t2igan.training.export import export_pretrained

    torch.manual_seed(0)
    g = StackGanGenerator(stackgan_config("tiny", text_dim=12)).eval()
    folder = export_pretrained(g, tmp_path / "run" / "pretrained", model_name="stackgan")
    bench = load_benchmark("text_probe")
    emb = np.random.default_rng(0).normal(size=(50, 12)).astype(np.float32)
    codes = bench.ca_codes(tmp_path / "run", emb)  # the run folder or its export
    with torch.no_grad():
        _, mu, logvar = g.stage1.ca(torch.from_numpy(emb), eps=torch.zeros(50, g.config.condition_dim))
    assert np.allclose(codes["mu0"], mu.numpy(), atol=1e-6)
    noise = (codes["c0"] - codes["mu0"]) / np.exp(0.5 * logvar.numpy())  # ε, seeded: the same on a second call
    assert np.std(noise) > 0.5 and np.allclose(bench.ca_codes(folder, emb)["c0"], codes["c0"])
    assert codes["sigma_mean"] == round(float(torch.exp(0.5 * logvar).mean()), 4)
    with pytest.raises(ValueError, match="its CA reads 12-d embeddings, these are 7-d"):
        bench.ca_codes(folder, emb[:, :7])


def test_stackgan_probe_refuses_a_generator_without_a_stage1_ca(tmp_path, load_benchmark, capsys) -> None:
    import json

    from t2igan.models.stackganpp import StackGanPPGenerator, stackganpp_config
    from t2igan.training.export import export_pretrained

    g = StackGanPPGenerator(stackganpp_config("tiny", text_dim=12)).eval()
    folder = export_pretrained(g, tmp_path / "sgpp", model_name="stackgan++")
    bench = load_benchmark("text_probe")
    emb = np.zeros((4, 12), np.float32)
    with pytest.raises(ValueError, match="not a StackGAN generator"):
        bench.ca_codes(folder, emb)
    # through the script: a prepared cache with embeddings, then a one-line error and exit code 2
    rng = np.random.default_rng(0)
    cache = tmp_path / "data" / ".t2igan_cache"
    (cache / "embeddings").mkdir(parents=True)
    captions = [make_captions(rng, "red", "yellow", "round", "5", k=2) for _ in range(6)]
    (cache / "captions.json").write_text(json.dumps({"captions": captions, "names": [str(i) for i in range(6)]}))
    np.save(cache / "is_test.npy", np.array([False] * 4 + [True] * 2))
    np.save(cache / "embeddings" / "k.npy", rng.normal(size=(12, 12)).astype(np.float32))
    assert bench.main([str(tmp_path / "data"), "--stackgan", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "not a StackGAN generator" in err and "\n" not in err
