import json

import numpy as np
import pytest
import torch
from PIL import Image

from t2igan.sampling import T2IPipeline, T2IPipelineOutput
from t2igan.utils.errors import T2IError

from .conftest import TinyConfig, TinyGenerator, make_pipe

CAPS = ["a flower with red petals", "this flower has blue petals and a yellow center"]


def test_call_shapes_and_output_types(pipe):
    out = pipe(CAPS, num_images_per_prompt=3)
    assert isinstance(out, T2IPipelineOutput)
    assert len(out.images) == 6 and all(isinstance(im, Image.Image) and im.size == (16, 16) for im in out.images)
    assert out.captions == [CAPS[0]] * 3 + [CAPS[1]] * 3
    assert out.seeds == [0, 1, 2, 0, 1, 2] and out.stages is None
    # "pt" / "np" are in [0, 1] as in diffusers; denormalize=False keeps G's [-1, 1]
    pt = pipe(CAPS, num_images_per_prompt=3, output_type="pt").images
    raw = pipe(CAPS, num_images_per_prompt=3, output_type="pt", denormalize=False).images
    assert pt.shape == raw.shape == (6, 3, 16, 16) and pt.min() >= 0 and pt.max() <= 1
    assert raw.min() < 0 and torch.allclose(pt, (raw + 1) / 2)
    arr = pipe(CAPS, 3, output_type="np").images
    assert arr.shape == (6, 16, 16, 3) and arr.dtype == np.float32 and arr.min() >= 0 and arr.max() <= 1
    assert np.abs(np.round(arr[4] * 255) - np.asarray(out.images[4], dtype=np.float32)).max() <= 1
    raw_np = pipe(CAPS, 3, output_type="np", denormalize=False).images
    assert np.allclose(raw_np, raw.permute(0, 2, 3, 1).numpy())
    assert pipe.image_size == 16
    with pytest.raises(T2IError, match="output_type must be"):
        pipe(CAPS, output_type="latent")


def test_prompt_keyword_like_diffusers(pipe):
    positional = pipe(CAPS, 2, output_type="pt").images
    assert torch.equal(pipe(prompt=CAPS, num_images_per_prompt=2, output_type="pt").images, positional)
    assert torch.equal(pipe(captions=CAPS, num_images_per_prompt=2, output_type="pt").images, positional)
    one = pipe(prompt=CAPS[1], output_type="pt")  # a str is one prompt
    assert one.captions == [CAPS[1]] and torch.allclose(one.images[0], positional[2], atol=1e-5)
    with pytest.raises(T2IError, match="prompt or captions, not both"):
        pipe(CAPS, captions=CAPS)


def test_caption_and_seed_give_the_same_image_whatever_the_batch(pipe):
    big = pipe(CAPS * 2, num_images_per_prompt=4, seeds=[5, 6, 7, 8], output_type="pt").images
    alone = pipe(CAPS[1], seeds=[7], output_type="pt").images
    assert torch.allclose(big[6], alone[0], atol=1e-5)  # caption 1, seed 7 (3rd of 4)
    assert torch.allclose(big[6], big[14], atol=1e-6)  # the repeated caption
    assert not torch.allclose(big[4], big[5])
    # seeds per output image
    per = pipe(CAPS, 1, seeds=[7, 3], output_type="pt").images
    assert torch.allclose(per[0], big[2], atol=1e-5)
    # a different batch size inside generate does not change the result
    small = pipe(CAPS * 2, num_images_per_prompt=4, seeds=[5, 6, 7, 8], output_type="pt", batch_size=3).images
    assert torch.allclose(small, big, atol=1e-5)


def test_generator_and_latents(pipe):
    a = pipe(CAPS, 2, generator=torch.Generator().manual_seed(1), output_type="pt")
    b = pipe(CAPS, 2, generator=torch.Generator().manual_seed(1), output_type="pt")
    assert a.seeds is None and torch.equal(a.images, b.images)
    z = pipe.prepare_latents(4, seeds=[0, 1, 0, 1])
    c = pipe(CAPS, 2, latents=z, output_type="pt")
    assert torch.allclose(c.images, pipe(CAPS, 2, output_type="pt").images, atol=1e-6)
    with pytest.raises(T2IError, match="latents must have shape"):
        pipe(CAPS, 2, latents=z[:3])


def test_truncation_bounds_z(pipe):
    z = pipe.prepare_latents(16, seeds=list(range(16)), truncation=0.5)
    assert z.abs().max() <= 0.5
    assert torch.equal(z, pipe.prepare_latents(16, seeds=list(range(16)), truncation=0.5))


def test_save_and_load_roundtrip(pretrained, pipe):
    index = json.loads((pretrained / "model_index.json").read_text())
    assert index["generator"][-1] == "TinyGenerator" and index["z_dim"] == 8
    assert (pretrained / "generator" / "model.safetensors").is_file()
    loaded = T2IPipeline.from_pretrained(pretrained)
    assert loaded.path == pretrained
    assert torch.equal(loaded(CAPS, 2, output_type="pt").images, pipe(CAPS, 2, output_type="pt").images)
    # a run folder holding pretrained/ works too
    assert T2IPipeline.from_pretrained(pretrained.parent).path == pretrained


def test_multi_stage_generators_return_stages(tmp_path):
    pipe = make_pipe(two_stage=True)
    out = pipe(CAPS, 2, output_type="pt")
    assert [s.shape[-1] for s in out.stages] == [8, 16] and torch.equal(out.stages[-1], out.images)
    loaded = T2IPipeline.from_pretrained(pipe.save_pretrained(tmp_path / "p"))
    assert len(loaded(CAPS[0], output_type="pil").stages) == 2


def test_precomputed_embeddings_model(tmp_path):
    gen = TinyGenerator(TinyConfig())
    pipe = T2IPipeline(gen, None)
    loaded = T2IPipeline.from_pretrained(pipe.save_pretrained(tmp_path / "p"))
    assert loaded.text_encoder is None
    with pytest.raises(T2IError, match="precomputed embeddings and has no text encoder; pass text_embeddings"):
        loaded("a flower")
    emb = torch.randn(2, 6)
    out = loaded(text_embeddings=emb, num_images_per_prompt=2, output_type="pt")
    assert out.images.shape == (4, 3, 16, 16) and out.captions[0] == "embedding 0"
    same = loaded(["x", "y"], prompt_embeds=emb.numpy(), num_images_per_prompt=2, output_type="pt")
    assert torch.equal(same.images, out.images)
    with pytest.raises(T2IError, match=r"shape \[N, 6\]"):
        loaded(text_embeddings=torch.randn(2, 5))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"captions": ""}, "caption 1 is empty"),
        ({"captions": ["ok", "  "]}, "caption 2 is empty"),
        ({"captions": []}, "no caption given"),
        ({"captions": "x", "seeds": [1, 2, 3], "num_images_per_prompt": 2}, "3 seeds"),
        ({"captions": "x", "seeds": [-1]}, "non-negative"),
        ({"captions": "x", "seeds": [2**64]}, "below 2"),
        ({"captions": "x", "num_images_per_prompt": 0}, "must be ≥ 1"),
    ],
)
def test_bad_calls_raise_one_line_errors(pipe, kwargs, match):
    with pytest.raises(T2IError, match=match) as e:
        pipe(**kwargs)
    assert "\n" not in str(e.value)


def test_bad_folders(tmp_path, pretrained):
    with pytest.raises(T2IError, match="no such model folder"):
        T2IPipeline.from_pretrained(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(T2IError, match=r"model_index\.json missing"):
        T2IPipeline.from_pretrained(tmp_path / "empty")
    cfg = pretrained / "generator" / "config.json"
    data = json.loads(cfg.read_text())
    cfg.write_text(json.dumps({**data, "_class_name": "os.system"}))
    with pytest.raises(T2IError, match=r"unknown class 'os\.system'"):
        T2IPipeline.from_pretrained(pretrained)
    cfg.write_text(json.dumps({**data, "width": 4}))
    with pytest.raises(T2IError, match=r"weights do not fit config\.json"):
        T2IPipeline.from_pretrained(pretrained)
    cfg.write_text(json.dumps(data))
    (pretrained / "generator" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(T2IError, match=r"cannot read .*weights \(truncated"):
        T2IPipeline.from_pretrained(pretrained)
