"""DS-SJE loss (Reed et al. 2016, eq. 4–6) by hand, and the joint trainer: learning, checkpoints, exact resume."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from t2igan.text import ds_sje_loss, load_sje, load_text_encoder, make_train_config, train_sje
from t2igan.text.sje_image import SjeImageConfig, SjeImageEncoder
from t2igan.utils.checkpoint import list_checkpoints
from t2igan.utils.errors import T2IError


def test_ds_sje_loss_hand_computed() -> None:
    img = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    txt = torch.tensor([[2.0, 0.0], [0.0, 0.5]])
    labels = torch.tensor([0, 1])
    # image → classes: scores [[2, 0], [2, .5]] → hinge terms 0 and 1 + 2 − .5 = 2.5
    # text → classes:  scores [[2, 2], [0, .5]] → hinge terms 1 + 2 − 2 = 1 and 1 + 0 − .5 = .5
    loss, stats = ds_sje_loss(img, txt, labels)
    assert float(loss) == pytest.approx((2.5 + 1.5) / (2 * 2))
    assert stats["loss_img"] == pytest.approx(2.5 / 4) and stats["loss_txt"] == pytest.approx(1.5 / 4)
    assert stats["acc_img"] == 0.5


def test_ds_sje_loss_uses_class_means() -> None:
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    labels = torch.tensor([3, 3, 7, 9, 7])
    loss, _ = ds_sje_loss(img, txt, labels)
    classes = [3, 7, 9]
    t_mean = torch.stack([txt[labels == c].mean(0) for c in classes])
    v_mean = torch.stack([img[labels == c].mean(0) for c in classes])
    total = 0.0
    for n in range(5):
        y = classes.index(int(labels[n]))
        for k in range(3):
            if k != y:
                total += max(0.0, 1 + float(img[n] @ t_mean[k]) - float(img[n] @ t_mean[y]))
                total += max(0.0, 1 + float(txt[n] @ v_mean[k]) - float(txt[n] @ v_mean[y]))
    assert float(loss) == pytest.approx(total / (5 * 3), rel=1e-5)


def test_perfect_embedding_has_zero_loss() -> None:
    e = torch.eye(4) * 3
    loss, stats = ds_sje_loss(e, e, torch.arange(4))
    assert float(loss) == 0.0 and stats["acc_txt"] == 1.0


def test_image_encoder_any_size_and_uint8() -> None:
    torch.manual_seed(0)
    enc = SjeImageEncoder(SjeImageConfig(embed_dim=16, image_size=16, channels=(8, 8)))
    u8 = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    a = enc.encode_images(u8)
    assert a.shape == (3, 16)
    f = torch.as_tensor(u8).permute(0, 3, 1, 2).float() / 127.5 - 1
    torch.testing.assert_close(enc.encode_images(f), a)


def test_training_reduces_loss_checkpoints_and_resumes_exactly(fake_cache, tmp_path: Path) -> None:
    cfg = make_train_config("tiny", steps=40, checkpoint_every=20, lr=3e-3)
    m = train_sje(fake_cache, tmp_path / "a", cfg, progress=False)
    hist = [json.loads(line) for line in (tmp_path / "a" / "history.jsonl").read_text().splitlines()]
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert 0.0 <= m["zero_shot_unseen_top1"] <= 1.0 and m["unseen_classes"] == 6
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["steps"] == 40
    text, image = load_sje(tmp_path / "a")
    assert text.dim == image.dim == m["text_dim"]
    assert load_text_encoder(tmp_path / "a").encode(["red petals"]).shape == (1, text.dim)

    # stop at step 20, then resume to 40: bit-identical to the uninterrupted run
    train_sje(
        fake_cache, tmp_path / "b", make_train_config("tiny", steps=20, checkpoint_every=20, lr=3e-3), progress=False
    )
    assert [p.name for p in list_checkpoints(tmp_path / "b" / "checkpoints")] == ["step_0000020"]
    train_sje(fake_cache, tmp_path / "b", cfg, resume=True, progress=False)  # same run, longer horizon (RESUMABLE)
    a = load_text_encoder(tmp_path / "a").encode(["a flower with red petals"])
    b = load_text_encoder(tmp_path / "b").encode(["a flower with red petals"])
    assert torch.equal(a, b)


def test_refuses_to_overwrite_or_resume_with_other_options(fake_cache, tmp_path: Path) -> None:
    cfg = make_train_config("tiny", steps=3)
    train_sje(fake_cache, tmp_path / "r", cfg, progress=False)
    with pytest.raises(T2IError, match="--resume"):
        train_sje(fake_cache, tmp_path / "r", cfg, progress=False)
    with pytest.raises(T2IError, match="different training options"):
        train_sje(fake_cache, tmp_path / "r", make_train_config("tiny", steps=3, lr=0.1), resume=True, progress=False)


def test_precomputed_image_features(fake_cache, tmp_path: Path) -> None:
    feats = np.random.default_rng(0).normal(size=(fake_cache.n, 12)).astype(np.float32)
    m = train_sje(fake_cache, tmp_path / "f", make_train_config("tiny", steps=3), image_features=feats, progress=False)
    assert m["steps"] == 3
    _, image = load_sje(tmp_path / "f")
    assert image.encode_features(feats[:2]).shape == (2, m["text_dim"])
    with pytest.raises(T2IError, match="precomputed image features"):
        image.encode_images(np.zeros((1, 16, 16, 3), np.uint8))


def test_interrupt_writes_a_checkpoint(fake_cache, tmp_path: Path, monkeypatch) -> None:
    from t2igan.text import sje_trainer

    real = sje_trainer._TrainData.batch

    def batch(self, cfg, step):
        if step == 4:
            raise KeyboardInterrupt
        return real(self, cfg, step)

    monkeypatch.setattr(sje_trainer._TrainData, "batch", batch)
    with pytest.raises(KeyboardInterrupt):
        train_sje(fake_cache, tmp_path / "i", make_train_config("tiny", steps=10, checkpoint_every=100), progress=False)
    assert [p.name for p in list_checkpoints(tmp_path / "i" / "checkpoints")] == ["step_0000004"]
    assert torch.get_num_threads() == 1  # restored


def test_sigterm_finishes_the_step_checkpoints_and_stops(fake_cache, tmp_path: Path, monkeypatch, caplog) -> None:
    """The GAN trainer's signal handler (utils/signals.py): the step finishes, a checkpoint is written, then it stops;
    --resume continues to the same weights as an uninterrupted run."""
    import os
    import signal

    from t2igan.text import sje_trainer

    real = sje_trainer._TrainData.batch

    def batch(self, cfg, step):
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, cfg, step)

    cfg = make_train_config("tiny", steps=8, checkpoint_every=100)
    monkeypatch.setattr(sje_trainer._TrainData, "batch", batch)
    caplog.set_level(logging.INFO, logger="t2igan")
    with pytest.raises(KeyboardInterrupt):
        train_sje(fake_cache, tmp_path / "s", cfg, progress=False)
    notes = caplog.messages
    assert [p.name for p in list_checkpoints(tmp_path / "s" / "checkpoints")] == ["step_0000004"]
    assert any(n.startswith("SIGTERM: checkpoint at step 4 saved") for n in notes), notes
    monkeypatch.setattr(sje_trainer._TrainData, "batch", real)
    train_sje(fake_cache, tmp_path / "s", cfg, resume=True, progress=False)
    train_sje(fake_cache, tmp_path / "u", cfg, progress=False)
    a, b = load_text_encoder(tmp_path / "s"), load_text_encoder(tmp_path / "u")
    assert torch.equal(a.encode(["red petals"]), b.encode(["red petals"]))


def test_damaged_checkpoints_are_reported_never_skipped_silently(fake_cache, tmp_path: Path, caplog) -> None:
    cfg = make_train_config("tiny", steps=6, checkpoint_every=3, keep_checkpoints=2)
    train_sje(fake_cache, tmp_path / "d", cfg, progress=False)
    root = tmp_path / "d" / "checkpoints"
    newest = list_checkpoints(root)[-1]
    blob = newest / "state.safetensors"
    blob.write_bytes(blob.read_bytes()[:100])  # truncated
    caplog.set_level(logging.INFO, logger="t2igan")
    longer = make_train_config("tiny", steps=9, checkpoint_every=3, keep_checkpoints=2)
    train_sje(fake_cache, tmp_path / "d", longer, resume=True, progress=False)
    notes = caplog.messages
    assert any("skipping bad checkpoint" in n and "truncated" in n for n in notes), notes
    assert any(n == "resumed from step 3" for n in notes), notes
    for p in list_checkpoints(root):
        (p / "state.json").write_text("{")
    with pytest.raises(T2IError, match="no valid checkpoint"):
        train_sje(fake_cache, tmp_path / "d", longer, resume=True, progress=False)


def test_sje_out_must_be_new_empty_or_its_own(fake_cache, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.json").write_text('{"my": "settings"}')
    with pytest.raises(T2IError, match="is not empty and is not a t2igan sje-run"):
        train_sje(fake_cache, mine, make_train_config("tiny", steps=2), progress=False)
    assert (mine / "config.json").read_text() == '{"my": "settings"}'


def test_options_go_through_the_typed_config_loader() -> None:
    cfg = make_train_config("tiny", steps=12.0, image_channels=[4, 4], lr="0.01")
    assert cfg.steps == 12 and cfg.image_channels == (4, 4) and cfg.lr == 0.01
    with pytest.raises(T2IError, match=r"sje\.steps must be an integer"):
        make_train_config("tiny", steps=2.5)
    with pytest.raises(T2IError, match=r"unknown config key 'sje\.step'"):
        make_train_config("tiny", step=5)


def test_training_leaves_the_global_rng_alone(fake_cache, tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_sje(fake_cache, tmp_path / "g", make_train_config("tiny", steps=2), progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_zero_shot_accuracy_with_perfect_encoders(tmp_path: Path) -> None:
    """The metric itself: encoders that read the two colours exactly must score 100 % on seen and unseen classes."""
    from text_fake_cache import COLOURS, FakeCache

    from t2igan.text.base import TextEncoder
    from t2igan.text.zero_shot import zero_shot_accuracy

    names = list(COLOURS)
    rgb = torch.tensor(list(COLOURS.values()), dtype=torch.float32)

    def code(petal: int, centre: int) -> torch.Tensor:
        v = torch.zeros(2 * len(names))
        v[petal], v[len(names) + centre] = 1.0, 1.0
        return v

    class ColourText(TextEncoder):
        type_name = name = "colour-text"
        dim = 2 * len(names)

        def get_config(self):
            return {}

        def _encode_batch(self, captions):
            out = []
            for c in captions:  # every template names the petal colour first, the centre colour second
                petal, centre = (names.index(w) for w in c.split() if w in names)
                out.append(code(petal, centre))
            return torch.stack(out)

    class ColourImage(SjeImageEncoder):
        def encode_images(self, images, batch_size=256):
            x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
            s = x.shape[1]
            centre, petal = x[:, s // 2, s // 2], x[:, s // 2, s // 2 + int(0.55 * s / 2)]
            near = lambda px: torch.cdist(px, rgb).argmin(1)  # noqa: E731
            return torch.stack([code(int(p), int(c)) for p, c in zip(near(petal), near(centre), strict=True)])

    cache = FakeCache(tmp_path, per_class=3, size=32)
    image = ColourImage(SjeImageConfig(embed_dim=14, channels=(4,)))
    for split in ("test", "train"):
        r = zero_shot_accuracy(ColourText(), image, cache, split)
        assert r["top1"] == 1.0, (split, r)
    assert zero_shot_accuracy(ColourText(), image, cache, "test")["classes"] == 6
