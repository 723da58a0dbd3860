"""`t2igan convert stackgan | stackgan-v2`: official-layout checkpoints load and reproduce the official forward pass.

The official files are made by `official_reference` at tiny widths with the releases' key names and shapes; their
outputs come from the plain-function forward passes there (the releases' concatenation orders included).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import stackgan_official_reference as ref
import torch

from t2igan.apps.cli import main
from t2igan.models.stackgan import StackGanGenerator
from t2igan.models.stackgan_official import stackgan_from_official, stackganpp_from_official
from t2igan.models.stackganpp import PRESETS, StackGanPPGenerator
from t2igan.sampling import T2IPipeline
from t2igan.training.config import load_config
from t2igan.training.convert import convert_official
from t2igan.utils.errors import T2IError

TEXT, COND, Z = 10, 8, 6


def _save(state: dict, path: Path, *, data_parallel: bool = False) -> Path:
    torch.save({(f"module.{k}" if data_parallel else k): v for k, v in state.items()}, path)
    return path


def _inputs(n: int = 3, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, TEXT, generator=g), torch.randn(n, Z, generator=g)


def _pipe(folder: Path) -> T2IPipeline:
    pipe = T2IPipeline.from_pretrained(folder)
    pipe.generator.use_ca_mean = True  # ĉ = μ, as the reference
    return pipe


def test_stage1_g_reproduces_the_official_output(tmp_path) -> None:
    sd = ref.stage1_g(gf=4, cond=COND, z=Z, text=TEXT)
    assert len(sd) == 33  # the release's STAGE1_G tensor count
    out = convert_official("stackgan", _save(sd, tmp_path / "netG.pth"), tmp_path / "sg1")
    emb, z = _inputs()
    got = _pipe(out)(text_embeddings=emb, latents=z, output_type="pt", denormalize=False)
    want = ref.stage1_forward(sd, emb, z)
    assert got.images.shape == (3, 3, 64, 64) and got.stages is None
    torch.testing.assert_close(got.images, want, atol=1e-4, rtol=0)
    index = json.loads((out / "model_index.json").read_text())
    assert index["model"] == "stackgan" and index["converted_from"]["files"][0]["file"] == "netG.pth"
    assert str(tmp_path) not in (out / "model_index.json").read_text()  # no absolute paths


def test_stage2_g_holds_its_stage1_and_reproduces_both_stages(tmp_path) -> None:
    sd = ref.stage2_g(gf=8, cond=COND, z=Z, text=TEXT, r_num=2)
    out = convert_official("stackgan", _save(sd, tmp_path / "netG.pth"), tmp_path / "sg2")
    emb, z = _inputs()
    got = _pipe(out)(text_embeddings=emb, latents=z, output_type="pt", denormalize=False)
    want1, want2 = ref.stage2_forward(sd, emb, z)
    assert got.images.shape == (3, 3, 256, 256)
    torch.testing.assert_close(got.stages[0], want1, atol=1e-4, rtol=0)
    torch.testing.assert_close(got.images, want2, atol=1e-4, rtol=0)
    g = _pipe(out).generator
    assert isinstance(g, StackGanGenerator) and g.config.stage == 2 and g.config.r_num == 2


@pytest.mark.parametrize("branches", [1, 2, 3])
def test_g_net_any_branch_count_with_module_prefix(tmp_path, branches: int) -> None:
    sd = ref.g_net(gf=4, ef=COND, z=Z, text=TEXT, r_num=2, branches=branches)
    path = _save(sd, tmp_path / "netG_2000.pth", data_parallel=True)
    out = convert_official("stackgan-v2", path, tmp_path / "pp")
    emb, z = _inputs()
    got = _pipe(out)(text_embeddings=emb, latents=z, output_type="pt", denormalize=False)
    want = ref.g_net_forward(sd, z, emb)
    stages = got.stages if branches > 1 else [got.images]
    assert [s.shape[-1] for s in stages] == [64, 128, 256][:branches]
    for a, b in zip(stages, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_unconditional_g_net(tmp_path) -> None:
    sd = ref.g_net(gf=4, ef=COND, z=Z, text=TEXT, r_num=1, branches=2, conditional=False)
    out = convert_official("stackgan-v2", _save(sd, tmp_path / "netG.pth"), tmp_path / "pp")
    _, z = _inputs()
    got = T2IPipeline.from_pretrained(out)(num_images_per_prompt=3, latents=z, output_type="pt", denormalize=False)
    for a, b in zip(got.stages, ref.g_net_forward(sd, z, None), strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_three_branch_paper_g_net_has_the_release_tensor_count_and_our_preset() -> None:
    sd = ref.g_net(gf=64, ef=128, z=100, text=1024, r_num=2, branches=3)
    assert len(sd) == 107  # the release's birds_3stages G_NET
    g, _ = stackganpp_from_official(sd)
    cfg = load_config("stackganpp_cub")
    preset = {**PRESETS["paper"], **cfg.model.params}
    for key, value in preset.items():
        if hasattr(g.config, key):
            assert getattr(g.config, key) == value, key


def test_paper_stage2_g_and_d_match_the_cub_preset(tmp_path) -> None:
    sd = ref.stage2_g(gf=128, cond=128, z=100, text=1024, r_num=4)
    assert len(sd) == 127  # the release's STAGE2_G tensor count
    g, d = stackgan_from_official(sd, ref.stackgan_d(df=64, cond=128, stage=2))
    cfg = load_config("stackgan_stage2_cub")
    for key, value in cfg.model.params.items():
        if hasattr(g.config, key) and key != "stage1":
            assert getattr(g.config, key) == value, key
    assert g.config.gf_dim == 128 and g.config.df_dim == 64 and g.config.image_size == 256
    assert d is not None and d.uncond_head is not None


@pytest.mark.parametrize("stage", [1, 2])
def test_stackgan_discriminator_reproduces_the_official_logits(stage: int) -> None:
    g_sd = ref.stage1_g(4, COND, Z, TEXT) if stage == 1 else ref.stage2_g(4, COND, Z, TEXT, r_num=1)
    d_sd = ref.stackgan_d(df=2, cond=COND, stage=stage)
    _, d = stackgan_from_official(g_sd, d_sd)
    assert d is not None
    d.eval()
    size = 64 if stage == 1 else 256
    img, mu = torch.randn(2, 3, size, size), torch.randn(2, COND)
    want_cond, want_uncond = ref.stackgan_d_forward(d_sd, img, mu)
    with torch.no_grad():
        torch.testing.assert_close(d(img, mu), want_cond, atol=1e-4, rtol=1e-4)
        if stage == 2:
            torch.testing.assert_close(d(img), want_uncond, atol=1e-4, rtol=1e-4)
        else:
            assert d.uncond_head is None and want_uncond is None


@pytest.mark.parametrize("conditional", [True, False])
def test_d_nets_reproduce_the_official_logits(conditional: bool) -> None:
    g_sd = ref.g_net(gf=4, ef=COND, z=Z, text=TEXT, r_num=1, branches=3, conditional=conditional)
    d_sds = [ref.d_net(s, df=2, ef=COND, conditional=conditional, seed=s) for s in (64, 128, 256)]
    _, ds = stackganpp_from_official(g_sd, d_sds)
    assert ds is not None
    ds.eval()
    mu = torch.randn(2, COND) if conditional else None
    with torch.no_grad():
        for d, sd in zip(ds, d_sds, strict=True):
            img = torch.randn(2, 3, d.image_size, d.image_size)
            want = ref.d_net_forward(sd, img, mu)
            if conditional:
                torch.testing.assert_close(d(img, mu), want[0], atol=1e-4, rtol=1e-4)
                torch.testing.assert_close(d(img), want[1], atol=1e-4, rtol=1e-4)
            else:
                torch.testing.assert_close(d(img), want[0], atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------------------------- bad files
def _cli(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as e:
        main(["convert", *args])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda sd: sd.update({"upsample2.1.weight": torch.zeros(8, 15, 3, 3)}), "'upsample2.1.weight' of"),
        (lambda sd: sd.pop("upsample3.2.running_var"), "missing key 'upsample3.2.running_var'"),
        (lambda sd: sd.update({"extra.weight": torch.zeros(2)}), "unexpected key 'extra.weight'"),
        (lambda sd: sd.pop("fc.0.weight"), "missing key 'fc.0.weight'"),
    ],
)
def test_bad_keys_are_one_line_errors_naming_the_key(tmp_path, capsys, edit, message) -> None:
    sd = ref.stage1_g(gf=4, cond=COND, z=Z, text=TEXT)
    edit(sd)
    err = _cli(capsys, "stackgan", str(_save(sd, tmp_path / "netG.pth")), "--out", str(tmp_path / "out"))
    assert message in err
    assert not (tmp_path / "out").exists()


def test_d_net_wrong_shape_is_named(tmp_path) -> None:
    g_sd = ref.g_net(gf=4, ef=COND, z=Z, text=TEXT, r_num=1, branches=2)
    d_sds = [ref.d_net(64, 2, COND), ref.d_net(128, 2, COND)]
    d_sds[1]["img_code_s32_1.0.weight"] = torch.zeros(16, 33, 3, 3)
    with pytest.raises(T2IError, match=r"'img_code_s32_1\.0\.weight' of the StackGAN-v2 D_NET128"):
        stackganpp_from_official(g_sd, d_sds)
    with pytest.raises(T2IError, match="2 branches but 1 discriminators"):
        stackganpp_from_official(g_sd, d_sds[:1])


def test_missing_batchnorm_counters_are_accepted() -> None:
    """Files written by PyTorch < 0.4.1 (the releases' era) have no ``num_batches_tracked``."""
    sd = {k: v for k, v in ref.stage1_g(4, COND, Z, TEXT).items() if not k.endswith("num_batches_tracked")}
    g, _ = stackgan_from_official(sd)
    emb, z = _inputs()
    g.use_ca_mean = True
    with torch.no_grad():
        torch.testing.assert_close(g(z, emb)[0], ref.stage1_forward(sd, emb, z), atol=1e-4, rtol=0)


class _Payload:
    """Any class: pickling it into a .pth makes the file need code to load."""


def test_pickle_bearing_file_is_refused(tmp_path, capsys) -> None:
    path = tmp_path / "netG.pth"
    torch.save({**ref.stage1_g(4, COND, Z, TEXT), "payload": _Payload()}, path)
    err = _cli(capsys, "stackgan", str(path), "--out", str(tmp_path / "out"))
    assert "refused" in err and "weights_only" in err


def test_the_other_release_is_named(tmp_path, capsys) -> None:
    v1 = _save(ref.stage1_g(4, COND, Z, TEXT), tmp_path / "v1.pth")
    v2 = _save(ref.g_net(4, COND, Z, TEXT, r_num=1, branches=1), tmp_path / "v2.pth", data_parallel=True)
    assert "use: t2igan convert stackgan …" in _cli(capsys, "stackgan-v2", str(v1), "--out", str(tmp_path / "a"))
    assert "use: t2igan convert stackgan-v2" in _cli(capsys, "stackgan", str(v2), "--out", str(tmp_path / "b"))


def test_not_a_state_dict_and_existing_out_are_refused(tmp_path, capsys) -> None:
    torch.save([torch.zeros(2)], tmp_path / "list.pth")
    assert "not a state_dict" in _cli(capsys, "stackgan", str(tmp_path / "list.pth"), "--out", str(tmp_path / "o"))
    (tmp_path / "junk.pth").write_bytes(b"not torch")
    assert "not a readable PyTorch file" in _cli(capsys, "stackgan-v2", str(tmp_path / "junk.pth"), "--out", "o")
    netg = _save(ref.stage1_g(4, COND, Z, TEXT), tmp_path / "netG.pth")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert "already exists" in _cli(capsys, "stackgan", str(netg), "--out", str(mine))
    assert (mine / "notes.txt").read_text() == "keep me"


def test_cli_converts_generator_and_discriminator(tmp_path, capsys) -> None:
    netg = _save(ref.g_net(4, COND, Z, TEXT, r_num=1, branches=2), tmp_path / "netG_100.pth", data_parallel=True)
    netd = [
        _save(ref.d_net(s, 2, COND), tmp_path / f"netD{i}.pth", data_parallel=True) for i, s in enumerate((64, 128))
    ]
    out = tmp_path / "converted"
    main(["convert", "stackgan-v2", str(netg), "--out", str(out), "--netd", str(netd[0]), "--netd", str(netd[1])])
    said = capsys.readouterr().out
    assert "StackGanPPGenerator 64 → 128 px" in said and str(out) in said
    assert (out / "discriminator" / "model.safetensors").is_file()
    assert isinstance(T2IPipeline.from_pretrained(out).generator, StackGanPPGenerator)


# ------------------------------------------------------------------------------------------------- fine-tuning
def test_converted_stage1_fine_tunes_from_both_networks(tmp_path, sg_config, make_blobs) -> None:
    from t2igan.training.trainer import Trainer

    g_sd, d_sd = ref.stage1_g(4, COND, Z, 12), ref.stackgan_d(df=2, cond=COND, stage=1)
    netg, netd = _save(g_sd, tmp_path / "netG.pth"), _save(d_sd, tmp_path / "netD.pth")
    folder = convert_official("stackgan", netg, tmp_path / "sg1", netd=[netd])
    arch = ["model.gf_dim=4", "model.df_dim=2", f"model.condition_dim={COND}", f"model.z_dim={Z}"]
    cfg = sg_config(
        "model.name=stackgan",
        "model.stage=1",
        "model.stage1_size=64",
        "model.stage2_size=128",
        "data.size=64",
        *arch,
        f"model.init={folder}",
    )
    trainer = Trainer(cfg, make_blobs(n=16, size=64))
    g, d = trainer.system.nets()["G"], trainer.system.nets()["D"]
    torch.testing.assert_close(g.stage1.upsample[1][0].weight, g_sd["upsample2.1.weight"])
    torch.testing.assert_close(d.encode[5].weight, d_sd["encode_img.5.weight"])
    out = trainer.fit()
    assert out["step"] == 4 and not torch.equal(g.stage1.upsample[1][0].weight, g_sd["upsample2.1.weight"])

    bad = sg_config(
        "model.name=stackgan", "model.stage1_size=64", "model.stage2_size=128", "data.size=64", f"model.init={folder}"
    )
    with pytest.raises(T2IError, match=r"model\.init does not fit .*model\.gf_dim 4 there, 8 here"):
        Trainer(bad, make_blobs(n=16, size=64))


def test_converted_g_net_fine_tunes_with_its_ema_and_discriminators(tmp_path, sg_config, make_blobs) -> None:
    from t2igan.training.trainer import Trainer

    g_sd = ref.g_net(gf=4, ef=COND, z=Z, text=12, r_num=1, branches=2)
    d_sds = [ref.d_net(64, 2, COND), ref.d_net(128, 2, COND)]
    netd = [_save(s, tmp_path / f"netD{i}.pth", data_parallel=True) for i, s in enumerate(d_sds)]
    folder = convert_official("stackgan-v2", _save(g_sd, tmp_path / "netG.pth"), tmp_path / "pp", netd=netd)
    arch = ["model.gf_dim=4", "model.df_dim=2", f"model.condition_dim={COND}", f"model.z_dim={Z}", "model.r_num=1"]
    cfg = sg_config(
        "model.name=stackgan++", "model.base_size=64", "model.branch_num=2", "data.size=128", "optim.ema=0.999",
        *arch, f"model.init={folder}",
    )  # fmt: skip
    trainer = Trainer(cfg, make_blobs(n=16, size=128))
    nets = trainer.system.nets()
    for name in ("G", "G_ema"):
        torch.testing.assert_close(nets[name].stages[0].joint[0].weight, g_sd["h_net2.jointConv.0.weight"])
    torch.testing.assert_close(nets["D"][1].encode[14].weight, d_sds[1]["img_code_s32_1.0.weight"])
    assert trainer.fit()["step"] == 4
