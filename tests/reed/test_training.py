import json
import logging
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from t2igan.training.export import load_generator
from t2igan.training.reed_system import ReedSystem
from t2igan.training.trainer import Trainer
from t2igan.utils.checkpoint import flatten_state, list_checkpoints, load_latest, unflatten_state
from t2igan.utils.errors import T2IError


def _metrics(run_dir):
    return [json.loads(ln) for ln in (run_dir / "logs" / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("variant", ["gan", "gan-cls", "gan-int", "gan-int-cls"])
def test_each_variant_trains(variant, tiny_config, fake_dataset):
    cfg = tiny_config(f"loss.variant={variant}", "train.steps=12", "train.export=false")
    out = Trainer(cfg, fake_dataset).fit()
    rows = _metrics(Path(cfg.run_dir))
    assert out["step"] == 12 and len(rows) == 12
    d = [r["loss_d"] for r in rows]
    assert all(np.isfinite(d)) and all(np.isfinite([r["loss_g"] for r in rows]))
    assert np.mean(d[-4:]) < d[0]  # D learns the easy fake data
    assert ("d_wrong" in rows[0]) == variant.endswith("cls")
    assert ("g_int" in rows[0]) == variant.startswith("gan-int")


def test_gan_int_extra_half_batch_in_g_step_only(tiny_config, fake_dataset):
    cfg = tiny_config("loss.variant=gan-int-cls")
    system = ReedSystem(cfg, 12, torch.device("cpu"))
    g_sizes, d_sizes = [], []
    system.G.register_forward_hook(lambda m, i, o: g_sizes.append(i[0].shape[0]))
    system.D.trunk.register_forward_hook(lambda m, i, o: d_sizes.append(i[0].shape[0]))
    system.train_step(fake_dataset.batch(np.arange(8), 0), 0)
    assert g_sizes == [8, 4]  # fake batch + half batch of interpolated embeddings
    assert d_sizes == [8, 8, 4]  # real (shared by right/wrong), fake (reused for G), interpolated (G loss only)


@pytest.mark.parametrize(
    "extra",
    [
        ["loss.reuse_d_fake=false"],
        ["loss.kind=hinge", "loss.ma_gp=2"],
        ["train.precision=bf16", "optim.ema=0.9", "train.channels_last=false"],
    ],
)
def test_options_train_finite(extra, tiny_config, fake_dataset):
    cfg = tiny_config(*extra, "train.steps=3", "train.export=false")
    out = Trainer(cfg, fake_dataset).fit()
    assert np.isfinite(out["last"]["loss_d"]) and "nonfinite" not in out["last"]


def test_bf16_step_follows_the_fp32_step(tiny_config, fake_dataset):
    """One GAN-INT-CLS step under bf16 autocast from the fp32 step's exact state: the same losses (to bf16's
    precision) and the same gradient and update directions."""

    def system(precision: str) -> ReedSystem:
        cfg = tiny_config("loss.variant=gan-int-cls", f"train.precision={precision}", "train.channels_last=false")
        return ReedSystem(cfg, 12, torch.device("cpu"))

    fp32, bf16 = system("fp32"), system("bf16")
    assert fp32.amp_dtype is None and bf16.amp_dtype == torch.bfloat16
    bf16.load_state_dict(fp32.state_dict())
    before = {n: torch.cat([p.detach().flatten() for p in getattr(fp32, n).parameters()]) for n in ("G", "D")}
    batch = fake_dataset.batch(np.arange(8), 0)
    la, lb = fp32.train_step(batch, 0), bf16.train_step(batch, 0)
    assert la.keys() == lb.keys()
    for k in la:
        assert lb[k] == pytest.approx(la[k], abs=1e-2), k
    assert la != lb  # bf16 did run: not bit-identical
    cos = torch.nn.functional.cosine_similarity
    for net, opt in (("G", "opt_g"), ("D", "opt_d")):
        # Adam's first moment after one step is (1 − β1)·g: the gradient itself, up to a constant
        ga, gb = (torch.cat([st["exp_avg"].flatten() for st in getattr(s, opt).state.values()]) for s in (fp32, bf16))
        assert cos(ga, gb, dim=0) > 0.95, net
        # Adam's first update is ≈ lr·sign(g): small gradients flip sign under bf16, so the bound is looser
        ua, ub = (
            torch.cat([p.detach().flatten() for p in getattr(s, net).parameters()]) - before[net] for s in (fp32, bf16)
        )
        assert cos(ua, ub, dim=0) > 0.8, net


def _state(trainer):
    s = trainer.system.state_dict()
    t: dict = {}
    flatten_state(s, t)
    return t


def test_resume_is_exact(tiny_config, fake_dataset):
    opts = [
        "loss.variant=gan-int-cls",
        "optim.ema=0.5",
        "train.steps=6",
        "train.ckpt_every=3",
        "optim.decay_every_epochs=1",
    ]  # 4 steps per epoch: the lr decays mid-run
    full = Trainer(tiny_config(*opts, run="full"), fake_dataset)
    full.fit()
    cfg = tiny_config(*opts, run="split")
    first = Trainer(cfg, fake_dataset)
    first.total_steps = 3  # "stopped" after 3 steps
    first.fit()
    second = Trainer(cfg, fake_dataset, resume=True)
    second.fit()
    assert second.step == 6
    a, b = _state(full), _state(second)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    la, lb = _metrics(full.run_dir), _metrics(second.run_dir)
    assert [r["step"] for r in lb] == list(range(1, 7))
    assert [r["loss_d"] for r in la] == [r["loss_d"] for r in lb]


def test_sigterm_checkpoints_and_stops(tiny_config, fake_dataset):
    cfg = tiny_config("train.steps=50")
    trainer = Trainer(cfg, fake_dataset)
    fake_dataset.on_batch = lambda idx, epoch: os.kill(os.getpid(), signal.SIGTERM) if trainer.step == 2 else None
    out = trainer.fit()
    assert out["stopped"] and out["step"] == 3
    assert [p.name for p in list_checkpoints(trainer.run_dir / "checkpoints")] == ["step_0000003"]


def test_checkpoint_corruption_falls_back(tiny_config, fake_dataset, caplog):
    cfg = tiny_config("train.steps=6", "train.ckpt_every=2", "train.keep_ckpts=2", "train.export=false")
    trainer = Trainer(cfg, fake_dataset)
    trainer.fit()
    root = trainer.run_dir / "checkpoints"
    assert [p.name for p in list_checkpoints(root)] == ["step_0000004", "step_0000006"]  # rotated
    blob = root / "step_0000006" / "state.safetensors"
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    caplog.set_level(logging.WARNING, logger="t2igan")
    ckpt = load_latest(root)
    warnings = caplog.messages
    assert ckpt["step"] == 4 and "sha256 mismatch" in warnings[0]
    (root / "step_0000004" / "state.json").write_text("{")  # truncated
    with pytest.raises(T2IError, match="no valid checkpoint"):
        load_latest(root)
    assert "truncated" in caplog.messages[-1]
    resumed = Trainer(cfg, fake_dataset, resume=True)
    with pytest.raises(T2IError, match="no valid checkpoint"):
        resumed.fit()


def test_nan_guard(tiny_config, fake_dataset):
    cfg = tiny_config("train.steps=4", "debug.nan_steps=[1]", "train.export=false")
    trainer = Trainer(cfg, fake_dataset)
    trainer.fit()
    rows = _metrics(trainer.run_dir)
    assert rows[1].get("nonfinite") == 1.0 and "nonfinite" not in rows[2]
    assert trainer.system.all_finite()
    cfg = tiny_config("train.steps=10", "debug.nan_steps=[2,3,4,5]", "train.max_bad_steps=3", run="bad")
    trainer = Trainer(cfg, fake_dataset)
    with pytest.raises(T2IError, match="3 consecutive non-finite steps"):
        trainer.fit()
    assert trainer.system.all_finite()
    with torch.no_grad():
        trainer.system.G.to_rgb[0].weight.fill_(float("nan"))
    trainer.step = 99
    assert trainer._checkpoint() is None  # never save a NaN model
    assert not (trainer.run_dir / "checkpoints" / "step_0000099").exists()


def test_export_and_sample_grid(tiny_config, fake_dataset):
    cfg = tiny_config("train.steps=2", "train.sample_every=2", "optim.ema=0.9")
    trainer = Trainer(cfg, fake_dataset)
    trainer.fit()
    run = trainer.run_dir
    assert (run / "samples" / "step_0000002.png").is_file() and (run / "config.yaml").is_file()
    index = json.loads((run / "pretrained" / "model_index.json").read_text())
    assert index["generator"] == ["t2igan.models.reed", "ReedGenerator"] and index["ema"] is True
    assert json.loads((run / "pretrained" / "text_encoder" / "precomputed.json").read_text())["type"] == "precomputed"
    g = load_generator(run / "pretrained")
    z, h = torch.randn(3, 8), torch.randn(3, 12)
    with torch.no_grad():  # channels_last in training vs contiguous after loading: same maths, other rounding
        assert torch.allclose(g(z, h), trainer.system.sample(z, h), atol=1e-5)


def test_data_order_and_sharding(tiny_config, fake_dataset):
    cfg = tiny_config()
    t0 = Trainer(cfg, fake_dataset)
    assert np.array_equal(t0.epoch_permutation(3), Trainer(cfg, fake_dataset).epoch_permutation(3))
    assert not np.array_equal(t0.epoch_permutation(0), t0.epoch_permutation(1))
    glob, _ = t0.batch_indices(5)
    assert len(glob) == 8 and len(set(glob)) == 8
    seen = np.concatenate([t0.batch_indices(s)[0] for s in range(t0.steps_per_epoch)])
    assert len(set(seen)) == len(seen) == t0.steps_per_epoch * 8  # an epoch visits each sample at most once


def test_state_flatten_round_trip():
    opt_state = {
        "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(2)}},
        "param_groups": [{"lr": 1e-4, "betas": (0.5, 0.999), "params": [0], "foreach": None}],
    }
    tensors: dict = {}
    skeleton = flatten_state(opt_state, tensors)
    json.dumps(skeleton)
    back = unflatten_state(json.loads(json.dumps(skeleton)), tensors)
    assert back["param_groups"][0]["betas"] == (0.5, 0.999) and 0 in back["state"]
    assert torch.equal(back["state"][0]["exp_avg"], torch.ones(2))


def test_trains_on_the_prepared_cache(tiny_config, tiny_cache):
    cfg = tiny_config(
        f"data.cache={tiny_cache.root}", "data.embeddings=attributes-onehot", "train.steps=2", "train.sample_every=2"
    )
    trainer = Trainer(cfg)
    out = trainer.fit()
    assert out["step"] == 2 and trainer.text_dim == 21
    assert (trainer.run_dir / "samples" / "step_0000002.png").is_file()
    marker = json.loads((trainer.run_dir / "pretrained" / "text_encoder" / "precomputed.json").read_text())
    assert marker["key"] == "attributes-onehot" and marker["dim"] == 21


def test_load_run_system(tiny_config, fake_dataset):
    from t2igan.training.trainer import load_run_system

    trainer = Trainer(tiny_config("train.steps=2", "train.export=false"), fake_dataset)
    trainer.fit()
    system = load_run_system(trainer.run_dir)
    assert torch.equal(system.D.to_logit.weight, trainer.system.D.to_logit.weight)


def test_time_budget_ends_like_a_normal_run(tiny_config, fake_dataset):
    cfg = tiny_config("train.steps=1000", "train.max_minutes=0.00001")
    out = Trainer(cfg, fake_dataset).fit()
    assert out["budget_reached"] and not out["stopped"] and out["step"] < 1000
    assert (Path(cfg.run_dir) / "pretrained" / "model_index.json").is_file()


def test_export_with_the_encoder_object(tiny_config, fake_dataset):
    class Enc:  # any TextEncoderLike: name, dim, encode, save_pretrained
        name, dim = "fake", 12

        def encode(self, captions):
            return torch.zeros(len(captions), 12)

        def save_pretrained(self, folder):
            Path(folder).mkdir(parents=True)
            (Path(folder) / "config.json").write_text('{"type": "fake"}')

    trainer = Trainer(tiny_config("train.steps=1"), fake_dataset, text_encoder=Enc())
    trainer.fit()
    index = json.loads((trainer.run_dir / "pretrained" / "model_index.json").read_text())
    assert (trainer.run_dir / "pretrained" / "text_encoder" / "config.json").is_file()
    assert index["text_encoder"][1] == "Enc"


def test_ema_warms_up(tiny_config, fake_dataset):
    cfg = tiny_config("optim.ema=0.999", "optim.ema_start=0")
    system = ReedSystem(cfg, 12, torch.device("cpu"))
    start = [p.detach().clone() for p in system.G.parameters()]
    for step in range(4):
        system.train_step(fake_dataset.batch(np.arange(8), 0), step)
    moved = sum((p - s).norm() for p, s in zip(system.G.parameters(), start, strict=True))
    lag = sum((p - e).norm() for p, e in zip(system.G.parameters(), system.G_ema.parameters(), strict=True))
    assert lag < 0.5 * moved  # d = min(0.999, (1+n)/(10+n)): the average follows G early on, not the init


def test_tensorboard_optional(tiny_config, fake_dataset, monkeypatch, caplog):
    cfg = tiny_config("train.steps=2", "train.tensorboard=true", "train.sample_every=2", "train.export=false")
    trainer = Trainer(cfg, fake_dataset)
    trainer.fit()
    assert list((trainer.run_dir / "logs").glob("events.out.tfevents.*"))
    monkeypatch.setitem(__import__("sys").modules, "torch.utils.tensorboard", None)  # as if not installed
    caplog.set_level(logging.INFO, logger="t2igan")
    Trainer(tiny_config("train.steps=1", "train.tensorboard=true", run="no_tb"), fake_dataset).fit()
    assert any("tensorboard is not installed" in n for n in caplog.messages)


def test_lean_step_gradients_equal_the_textbook_step(tiny_config, fake_dataset):
    """reuse_d_fake + shared trunk give D the gradient of L_D with a detached fake, and G the gradient of L_G through
    the (pre-update) D — exactly what separate, textbook passes give."""
    import copy

    import torch.nn.functional as F

    cfg = tiny_config("loss.variant=gan-cls", "train.channels_last=false")
    system = ReedSystem(cfg, 12, torch.device("cpu"))
    G, D = copy.deepcopy(system.G), copy.deepcopy(system.D)
    batch = fake_dataset.batch(np.arange(8), 0)
    grads = {}
    system.opt_d.step = lambda: grads.update(d=[p.grad.clone() for p in system.D.parameters()])  # type: ignore[method-assign]
    system.opt_g.step = lambda: grads.update(g=[p.grad.clone() for p in system.G.parameters()])  # type: ignore[method-assign]
    system.train_step(batch, 0)

    z = torch.randn(8, system.z_dim, generator=system.step_generator(0))
    x, h, hw = batch["image"], batch["text_emb"], batch["wrong_emb"]
    fake = G(z, h)
    bce = F.binary_cross_entropy_with_logits
    real_l, wrong_l, fake_l = D(x, h), D(x, hw), D(fake.detach(), h)
    loss_d = bce(real_l, torch.ones(8)) + 0.5 * bce(wrong_l, torch.zeros(8)) + 0.5 * bce(fake_l, torch.zeros(8))
    ref_d = torch.autograd.grad(loss_d, list(D.parameters()))
    loss_g = bce(D(fake, h), torch.ones(8))
    ref_g = torch.autograd.grad(loss_g, list(G.parameters()))
    for a, b in zip(grads["d"], ref_d, strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)
    for a, b in zip(grads["g"], ref_g, strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)


def test_export_finds_the_encoder_that_made_the_embeddings(tiny_config, tiny_cache, tmp_path):
    """Embeddings from `t2igan encode captions --encoder DIR`: the export carries that encoder (typed captions work)
    while DIR still holds it, and falls back to the precomputed marker once it is gone or changed."""
    import shutil

    from t2igan.sampling import T2IPipeline
    from t2igan.text import CharCnnRnn, CharCnnRnnConfig, encode_captions, load_text_encoder

    torch.manual_seed(0)
    CharCnnRnn(CharCnnRnnConfig(conv_channels=(8, 8, 8), rnn_dim=8, embed_dim=12)).save_pretrained(tmp_path / "enc")
    key = encode_captions(tiny_cache, load_text_encoder(tmp_path / "enc"), progress=False)
    sets = [f"data.cache={tiny_cache.root}", f"data.embeddings={key}", "train.steps=1"]

    run = Trainer(tiny_config(*sets, run="with"))
    run.fit()
    index = json.loads((run.run_dir / "pretrained" / "model_index.json").read_text())
    assert index["text_encoder"] == ["t2igan.text.char_cnn_rnn", "CharCnnRnn"]
    pipe = T2IPipeline.from_pretrained(run.run_dir / "pretrained")
    assert pipe(["a flower with blue petals"], seeds=[0], output_type="pt").images.shape[-1] == 16

    shutil.rmtree(tmp_path / "enc")
    gone = Trainer(tiny_config(*sets, run="without"))
    gone.fit()
    assert json.loads((gone.run_dir / "pretrained" / "model_index.json").read_text())["text_encoder"] is None
    assert (gone.run_dir / "pretrained" / "text_encoder" / "precomputed.json").is_file()
