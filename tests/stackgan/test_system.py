"""StackGAN / StackGAN++ as GanSystems under the shared Trainer: train, export, Stage-II from Stage-I, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from t2igan.models.stackgan import StackGanGenerator
from t2igan.models.stackganpp import StackGanPPGenerator
from t2igan.training.export import load_generator
from t2igan.training.trainer import Trainer
from t2igan.utils.checkpoint import flatten_state
from t2igan.utils.errors import T2IError


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run_dir / "logs" / "metrics.jsonl").read_text().splitlines()]


def _state(trainer: Trainer) -> dict[str, torch.Tensor]:
    flat: dict[str, torch.Tensor] = {}
    flatten_state(trainer.system.state_dict(), flat)
    return flat


def test_stage1_then_stage2_export_all_stages(sg_config, blobs16, blobs32, tmp_path) -> None:
    cfg1 = sg_config("model.name=stackgan", "model.stage=1", "data.size=16", run="s1")
    out1 = Trainer(cfg1, blobs16).fit()
    assert out1["step"] == 4 and np.isfinite(out1["last"]["loss_d"])
    g1 = load_generator(Path(cfg1.run_dir) / "pretrained")
    assert isinstance(g1, StackGanGenerator) and g1.config.stage == 1

    cfg2 = sg_config("model.name=stackgan", "model.stage=2", f"model.stage1={cfg1.run_dir}", "data.size=32", run="s2")
    trainer = Trainer(cfg2, blobs32)
    stage1_before = {k: v.clone() for k, v in trainer.system.G.stage1.state_dict().items()}
    for k, v in g1.stage1.state_dict().items():
        assert torch.equal(stage1_before[k], v), k  # Stage-I loaded from the Stage-I run
    trainer.fit()
    rows = _metrics(Path(cfg2.run_dir))
    assert all(np.isfinite(r["loss_d"]) and np.isfinite(r["loss_g"]) for r in rows)
    for k, v in trainer.system.G.stage1.state_dict().items():
        assert torch.equal(stage1_before[k], v), k  # …and left frozen
    g2 = load_generator(Path(cfg2.run_dir) / "pretrained")
    imgs = g2(torch.randn(2, g2.z_dim), torch.randn(2, 12))
    assert [x.shape[-1] for x in imgs] == [16, 32]

    # the pipeline returns every stage; a caption + seed is reproducible; the stage grid renders
    from t2igan.sampling import T2IPipeline
    from t2igan.sampling.stages import stage_grid

    pipe = T2IPipeline.from_pretrained(cfg2.run_dir)
    emb = torch.from_numpy(blobs32.emb[:2])
    out = pipe(["a", "b"], num_images_per_prompt=2, seeds=[0, 1], output_type="pt", text_embeddings=emb)
    assert out.stages is not None and [s.shape[-1] for s in out.stages] == [16, 32]
    again = pipe(["b"], num_images_per_prompt=1, seeds=[1], output_type="pt", text_embeddings=emb[1:])
    torch.testing.assert_close(again.images[0], out.images[3])
    grid = stage_grid(cfg2.run_dir, ["a", "b"], seeds=[0, 1], text_embeddings=emb, ca_mean=True)
    assert grid.width > 4 * 32 and grid.height > 2 * 32


def test_stage2_without_stage1_is_a_user_error(sg_config, blobs32) -> None:
    with pytest.raises(T2IError, match="stage1"):
        Trainer(sg_config("model.name=stackgan", "model.stage=2", "data.size=32"), blobs32)
    with pytest.raises(T2IError, match=r"data\.size"):
        Trainer(sg_config("model.name=stackgan", "model.stage=1", "data.size=32"), blobs32)


@pytest.mark.parametrize("family", ["stackgan", "stackgan++"])
def test_resume_through_the_trainer_is_exact(sg_config, blobs16, blobs32, family: str) -> None:
    model = ["model.name=stackgan", "model.stage=1", "data.size=16"] if family == "stackgan" else [
        "model.name=stackgan++", "data.size=32", "optim.ema=0.9", "loss.r1=1", "loss.r1_every=2"]  # fmt: skip
    data = blobs16 if family == "stackgan" else blobs32
    opts = [*model, "train.steps=6", "train.ckpt_every=3", "train.export=false", "optim.decay_every_epochs=1"]
    full = Trainer(sg_config(*opts, run="full"), data)
    full.fit()
    cfg = sg_config(*opts, run="split")
    first = Trainer(cfg, data)
    first.total_steps = 3
    first.fit()
    second = Trainer(cfg, data, resume=True)
    second.fit()
    a, b = _state(full), _state(second)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [r["loss_d"] for r in _metrics(full.run_dir)] == [r["loss_d"] for r in _metrics(second.run_dir)]


@pytest.mark.parametrize("conditional", [True, False])
def test_stackganpp_trains_and_exports(sg_config, blobs32, conditional: bool) -> None:
    cfg = sg_config("model.name=stackgan++", f"model.conditional={str(conditional).lower()}", "loss.color_lambda=1",
                    "data.size=32", "optim.ema=0.9", run=f"pp{conditional}")  # fmt: skip
    trainer = Trainer(cfg, blobs32)
    out = trainer.fit()
    assert np.isfinite(out["last"]["loss_d"]) and "nonfinite" not in out["last"]
    assert "G_ema" in trainer.system.nets()
    g = load_generator(Path(cfg.run_dir) / "pretrained")
    assert isinstance(g, StackGanPPGenerator) and g.config.conditional == conditional
    imgs = g(torch.randn(2, g.z_dim), torch.randn(2, 12) if conditional else None)
    assert [x.shape[-1] for x in imgs] == [16, 32]
    assert sorted(Path(cfg.run_dir, "samples").glob("*.png"))


def test_nan_batch_is_skipped(sg_config, blobs16) -> None:
    cfg = sg_config("model.name=stackgan", "model.stage=1", "data.size=16", "debug.nan_steps=[1]",
                    "train.export=false")  # fmt: skip
    trainer = Trainer(cfg, blobs16)
    trainer.fit()
    rows = _metrics(trainer.run_dir)
    assert rows[1].get("nonfinite") == 1.0 and "nonfinite" not in rows[2]
    assert trainer.system.all_finite()


def test_unconditional_export_has_no_text_side(sg_config, blobs32) -> None:
    """Trained next to a text encoder (the cache's embeddings), an unconditional model still exports without one,
    so the pipeline loads and samples it (it failed with "encoder gives 12-d … generator expects 0-d")."""
    from t2igan.sampling import T2IPipeline

    class Enc:  # any TextEncoderLike: name, dim, encode, save_pretrained
        name, dim = "fake", 12

        def encode(self, captions):
            return torch.zeros(len(captions), 12)

        def save_pretrained(self, folder):
            Path(folder).mkdir(parents=True)
            (Path(folder) / "config.json").write_text('{"type": "fake"}')

    cfg = sg_config("model.name=stackgan++", "model.conditional=false", "data.size=32", "train.steps=1", run="ppu")
    Trainer(cfg, blobs32, text_encoder=Enc()).fit()
    index = json.loads(Path(cfg.run_dir, "pretrained", "model_index.json").read_text())
    assert index["embeddings"]["type"] == "unconditional"
    pipe = T2IPipeline.from_pretrained(cfg.run_dir)
    out = pipe(["any words"], num_images_per_prompt=2, seeds=[0, 1], output_type="pt")
    assert out.images.shape[-1] == 32 and not torch.equal(out.images[0], out.images[1])
    from t2igan.apps.cli import main

    for extra in ([], ["--stages"]):  # no caption needed
        out_png = Path(cfg.run_dir) / f"grid{len(extra)}.png"
        main(["sample", str(cfg.run_dir), "--seeds", "0-1", *extra, "--out", str(out_png)])
        assert out_png.is_file()
    from t2igan.metrics.sources import pipeline_generate

    generate, _ = pipeline_generate(cfg.run_dir, cache=None)  # evaluation needs no embeddings for it either
    assert generate(["a", "b"], [0, 1]).shape == (2, 3, 32, 32)
