import pytest
import torch

from t2igan.models.reed import PRESETS, ReedDiscriminator, ReedGenerator, reed_config
from t2igan.training.export import load_generator
from t2igan.utils.errors import T2IError


@pytest.mark.parametrize("size", [16, 32, 64])
def test_shapes(size):
    cfg = reed_config(image_size=size, ngf=8, ndf=8, text_dim=12, z_dim=10, proj_dim=6)
    g, d = ReedGenerator(cfg), ReedDiscriminator(cfg)
    z, h = torch.randn(3, 10), torch.randn(3, 12)
    x = g(z, h)
    assert x.shape == (3, 3, size, size)
    assert x.abs().max() <= 1.0
    assert d(x, h).shape == (3,)
    assert d.features(x).shape == (3, d.feature_dim, 4, 4)
    assert (g.config, g.z_dim, g.text_dim) == (cfg, 10, 12)


def test_paper_widths_and_text_replicated_at_4x4():
    cfg = reed_config("paper", text_dim=16)
    g = ReedGenerator(cfg)
    assert g.stages[0].conv.out_channels == 128 * 8  # ngf·8 at 4×4
    assert g.stages[1].conv.out_channels == 128 * 4  # ngf·4 at 8×8
    assert len(g.stages) == 4
    d = ReedDiscriminator(reed_config(image_size=16, ndf=8, text_dim=16, proj_dim=5))
    d.eval()
    h = torch.randn(2, 16)
    t = d.replicate_text(h)
    assert t.shape == (2, 5, 4, 4)
    assert torch.equal(t, t[:, :, :1, :1].expand_as(t))  # the same vector at every position
    assert d.joint[0].in_channels == d.feature_dim + 5  # depth-concatenated with the 4×4 features
    assert d.to_logit.kernel_size == (4, 4)


def test_residual_switch_and_init():
    with_res = ReedGenerator(reed_config(image_size=16, ngf=8, ndf=8, residual=True))
    without = ReedGenerator(reed_config(image_size=16, ngf=8, ndf=8, residual=False))
    assert sum(p.numel() for p in with_res.parameters()) > sum(p.numel() for p in without.parameters())
    w = ReedGenerator(reed_config("port", text_dim=32)).stages[1].conv.weight
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002


def test_presets_and_errors():
    assert set(PRESETS) >= {"paper", "port", "cpu", "tiny"}
    assert reed_config("port").residual is False
    with pytest.raises(T2IError, match="unknown Reed model option"):
        reed_config("cpu", widht=3)
    with pytest.raises(T2IError, match="not supported"):
        reed_config(image_size=48)
    with pytest.raises(T2IError, match="unknown Reed preset"):
        reed_config("huge")


def test_pretrained_round_trip(tmp_path):
    g = ReedGenerator(reed_config("tiny", text_dim=12)).eval()
    g.save_pretrained(tmp_path / "generator")
    g2 = load_generator(tmp_path)
    g3 = ReedGenerator.from_pretrained(tmp_path / "generator").eval()
    z, h = torch.randn(2, 8), torch.randn(2, 12)
    with torch.no_grad():
        assert torch.equal(g(z, h), g2(z, h))
        assert torch.equal(g(z, h), g3(z, h))
    (tmp_path / "generator" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(T2IError, match=r"cannot read .*weights \(truncated"):
        load_generator(tmp_path)


def test_matmul_layers_equal_the_convolutions():
    import torch.nn.functional as F

    from t2igan.models.blocks import Conv4x4ToLogit, ConvTranspose1x1To4x4

    up = ConvTranspose1x1To4x4(10, 6)
    x = torch.randn(3, 10, 1, 1)
    assert torch.allclose(up(x), F.conv_transpose2d(x, up.weight), atol=1e-6)
    head = Conv4x4ToLogit(6)
    y = torch.randn(3, 6, 4, 4).contiguous(memory_format=torch.channels_last)
    assert torch.allclose(head(y), F.conv2d(y, head.weight), atol=1e-6)
