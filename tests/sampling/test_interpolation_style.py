import torch

from t2igan.models.style import StyleEncoder, StyleEncoderConfig
from t2igan.sampling import T2IPipeline
from t2igan.sampling.interpolation import interpolate_text, interpolate_z, slerp
from t2igan.sampling.style_transfer import style_transfer
from t2igan.training.style_trainer import StyleTrainConfig, evaluate_style, train_style_encoder

A, B = "a flower with red petals", "a flower with blue petals"


def test_text_interpolation_endpoints_are_the_captions(pipe):
    res = interpolate_text(pipe, A, B, steps=5, seeds=[3, 4])
    assert res.images.shape == (10, 3, 16, 16) and res.betas[0] == 0.0 and res.betas[-1] == 1.0
    ends = pipe([A, B], seeds=[3], output_type="pt", denormalize=False).images
    assert torch.allclose(res.images[0], ends[0], atol=1e-5)  # seed 3, β = 0 → caption A
    assert torch.allclose(res.images[4], ends[1], atol=1e-5)  # seed 3, β = 1 → caption B
    img = res.to_image(scale=3)
    assert img.width == 5 * (48 + 2) + 2 and img.height > 2 * 48


def test_z_interpolation_endpoints_are_the_seeds(pipe):
    res = interpolate_z(pipe, [A, B], seed_a=2, seed_b=9, steps=4)
    assert res.images.shape == (8, 3, 16, 16) and res.kind == "z"
    ends = pipe([A, B], 2, seeds=[2, 9], output_type="pt", denormalize=False).images
    assert torch.allclose(res.images[0], ends[0], atol=1e-5) and torch.allclose(res.images[3], ends[1], atol=1e-5)
    assert torch.allclose(res.images[7], ends[3], atol=1e-5)
    s = interpolate_z(pipe, [A], seed_a=2, seed_b=9, steps=4, mode="slerp")
    assert torch.allclose(s.images[0], ends[0], atol=1e-5) and torch.allclose(s.images[3], ends[1], atol=1e-5)


def test_slerp_keeps_the_norm_of_orthogonal_unit_vectors():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    path = slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path.norm(dim=1), torch.ones(5), atol=1e-6)


def test_style_encoder_learns_to_invert_g_and_transfers(pipe, tmp_path):
    with torch.no_grad():  # make the stand-in G depend strongly on z, as a trained G does
        pipe.generator.fc.weight.mul_(10)
    pool = pipe.encode_prompt([A, B, "white petals", "a purple center"])
    cfg = StyleTrainConfig(steps=60, batch_size=32, lr=3e-3, width=8, seed=1)
    res = train_style_encoder(pipe.generator, pool, cfg, progress=False)
    assert not any(p.requires_grad for p in pipe.generator.parameters())  # G frozen
    assert sum(res.losses[-10:]) / 10 < 0.8 * sum(res.losses[:10]) / 10
    m = evaluate_style(pipe.generator, res.encoder, pool, n=64)
    assert m["z_mse"] < m["random_z_mse"] and m["z_mse"] < m["zero_mse"]
    assert m["image_mse"] < m["random_image_mse"]
    # same seed → same S
    again = train_style_encoder(pipe.generator, pool, StyleTrainConfig(steps=3, width=8, seed=1), progress=False)
    again2 = train_style_encoder(pipe.generator, pool, StyleTrainConfig(steps=3, width=8, seed=1), progress=False)
    assert again.losses == again2.losses
    # transfer grid: rows = queries, columns = captions; S survives save/load with the pipeline
    pipe.style_encoder = res.encoder
    loaded = T2IPipeline.from_pretrained(pipe.save_pretrained(tmp_path / "p"))
    assert isinstance(loaded.style_encoder, StyleEncoder)
    queries = pipe([A, B, A], seeds=[0, 1, 2], output_type="pt", denormalize=False).images
    out = style_transfer(loaded, queries, [A, B])
    assert out.images.shape == (3, 2, 3, 16, 16) and out.styles.shape == (3, 8)
    img = out.to_image(scale=2)
    assert img.height > 3 * 32


def test_style_encoder_shapes():
    s = StyleEncoder(StyleEncoderConfig(image_size=64, z_dim=100, width=8))
    assert s(torch.randn(2, 3, 64, 64)).shape == (2, 100)
    assert len([m for m in s.features if isinstance(m, torch.nn.Conv2d)]) == 4  # 64 → 4
