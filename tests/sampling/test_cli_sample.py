import json

import pytest
import torch
from PIL import Image

from t2igan.apps.cli import main
from t2igan.models.style import StyleEncoder, StyleEncoderConfig
from t2igan.sampling import T2IPipeline
from t2igan.sampling.style_transfer import save_style_encoder


def run_ok(argv, capsys) -> str:
    main(argv)
    return capsys.readouterr().out


def run_err(argv, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    return err


def test_sample_grid(pretrained, tmp_path, capsys):
    out = tmp_path / "g.png"
    text = run_ok(
        ["sample", str(pretrained), "a flower with red petals", "blue petals", "-n", "3", "--out", str(out)], capsys
    )
    assert "2×3 grid" in text
    im = Image.open(out)
    assert im.width == 3 * 18 + 2 and im.height > 2 * 18  # 16 px cells + pad, captions under rows
    caps = tmp_path / "caps.txt"
    caps.write_text("# header\nwhite petals\n\npink petals\n")
    run_ok(
        [
            "sample",
            str(pretrained),
            "--captions",
            str(caps),
            "--seeds",
            "4-7",
            "--scale",
            "3",
            "--out",
            str(tmp_path / "h.png"),
        ],
        capsys,
    )
    assert Image.open(tmp_path / "h.png").width == 4 * 50 + 2


def test_same_seed_same_pixels_in_different_grids(pretrained, tmp_path, capsys):
    run_ok(["sample", str(pretrained), "red", "-n", "4", "--seed", "10", "--out", str(tmp_path / "a.png")], capsys)
    run_ok(["sample", str(pretrained), "red", "--seeds", "12", "--out", str(tmp_path / "b.png")], capsys)
    a = Image.open(tmp_path / "a.png").crop((2 + 2 * 18, 2, 2 + 2 * 18 + 16, 18))
    b = Image.open(tmp_path / "b.png").crop((2, 2, 18, 18))
    assert a.tobytes() == b.tobytes()


def test_interpolate_commands(pretrained, tmp_path, capsys):
    run_ok(
        [
            "interpolate",
            str(pretrained),
            "--text",
            "red petals",
            "--text",
            "blue petals",
            "--steps",
            "5",
            "--seeds",
            "0-2",
            "--out",
            str(tmp_path / "t.png"),
        ],
        capsys,
    )
    assert Image.open(tmp_path / "t.png").width == 5 * 18 + 2
    text = run_ok(
        [
            "interpolate",
            str(pretrained),
            "--z-interp",
            "--text",
            "red petals",
            "--seeds",
            "3,7",
            "--slerp",
            "--out",
            str(tmp_path / "z.png"),
        ],
        capsys,
    )
    assert "z interpolation strip" in text


def test_style_transfer_command(pretrained, tmp_path, capsys):
    pipe = T2IPipeline.from_pretrained(pretrained)
    torch.manual_seed(0)
    save_style_encoder(pipe, StyleEncoder(StyleEncoderConfig(image_size=16, z_dim=8, width=8)), {"z_mse": 1.0})
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (40, 30), (200, 30, 30)).save(photo)
    text = run_ok(
        [
            "style",
            "transfer",
            str(pretrained),
            "--image",
            str(photo),
            "--image",
            str(photo),
            "red petals",
            "blue petals",
            "--out",
            str(tmp_path / "s.png"),
        ],
        capsys,
    )
    assert "2×2 style-transfer grid" in text and Image.open(tmp_path / "s.png").width >= 3 * 18


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["sample", "{missing}", "red"], "no such model folder"),
        (["sample", "{p}", ""], "caption 1 is empty"),
        (["sample", "{p}"], "no caption given"),
        (["sample", "{p}", "red", "--seeds", "a-b"], "--seeds: bad seed list"),
        (["sample", "{p}", "red", "--seeds", "0-3", "-n", "2"], "-n 2 but --seeds lists 4"),
        (["sample", "{p}", "red", "--seeds", "1", "--seed", "2"], "either --seeds or --seed"),
        (["sample", "{p}", "--captions", "{missing}"], "cannot read captions file"),
        (["interpolate", "{p}", "--text", "only one"], "exactly two --text"),
        (["interpolate", "{p}", "--z-interp", "--text", "a", "--seeds", "1,2,3"], "exactly two seeds"),
        (["style", "transfer", "{p}", "--image", "{bad_image}", "red"], "cannot read image"),
        (["style", "transfer", "{p}", "--image", "{missing}", "red"], "no such image file"),
        (["style", "transfer", "{p}", "--image", "{missing}"], "no caption given"),
    ],
)
def test_bad_input_gives_one_line_errors(pretrained, tmp_path, capsys, argv, match):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    if argv[:2] == ["style", "transfer"]:  # needs S to get as far as reading images
        pipe = T2IPipeline.from_pretrained(pretrained)
        save_style_encoder(pipe, StyleEncoder(StyleEncoderConfig(image_size=16, z_dim=8, width=8)))
    fill = {"{p}": str(pretrained), "{missing}": str(tmp_path / "nope"), "{bad_image}": str(bad)}
    err = run_err([fill.get(a, a) for a in argv], capsys)
    assert err.startswith("error: ") and match in err


def test_style_transfer_without_style_encoder(pretrained, tmp_path, capsys):
    err = run_err(["style", "transfer", str(pretrained), "--image", "x.png", "red"], capsys)
    assert "no style encoder" in err and "t2igan style train" in err


def test_help_has_worked_examples(capfd):
    for cmd in (["sample"], ["interpolate"], ["style"], ["style", "train"], ["style", "transfer"]):
        main([*cmd, "--help"])
        assert "t2igan " in capfd.readouterr().out.split("xample", 1)[1]


def test_style_train_command_on_a_prepared_cache(pretrained, tmp_path, capsys):
    from t2igan.data.cache import prepare_cache
    from t2igan.data.synthetic import write_synthetic_dataset

    src = write_synthetic_dataset(tmp_path / "flowers", n=48, size=16, seed=0)
    cache = prepare_cache(src, sizes=(16,), progress=False)
    text = run_ok(["style", "train", str(pretrained), "--data", str(src), "--steps", "5", "--batch-size", "8"], capsys)
    metrics = json.loads(text.splitlines()[-2])
    assert {"z_mse", "random_z_mse", "zero_mse", "image_mse"} <= set(metrics)
    assert (pretrained / "style_encoder" / "metrics.json").is_file()
    assert T2IPipeline.from_pretrained(pretrained).style_encoder is not None
    err = run_err(["style", "train", str(pretrained), "--data", str(tmp_path / "nope")], capsys)
    assert "no such data folder" in err
    assert cache.is_dir()


def test_sample_stages_view_for_multi_stage_generators(tmp_path, capsys):
    from .conftest import make_pipe

    two = make_pipe(two_stage=True).save_pretrained(tmp_path / "two")
    text = run_ok(
        ["sample", str(two), "red petals", "--seeds", "0-1", "--stages", "--out", str(tmp_path / "s.png")], capsys
    )
    assert "stage grid" in text and Image.open(tmp_path / "s.png").width == 4 * 18 + 2
    err = run_err(["sample", str(two), "red petals", "--ca-mean"], capsys)
    assert "no conditioning augmentation" in err
