"""`t2igan data synth | prepare | show` end to end on tiny inputs."""

from __future__ import annotations

from click.testing import CliRunner
from PIL import Image

from t2igan.apps.cli_data import data


def test_help_has_worked_examples():
    r = CliRunner()
    for cmd in ([], ["synth"], ["prepare"], ["show"]):
        res = r.invoke(data, [*cmd, "--help"])
        assert res.exit_code == 0 and "Example" in res.output and "t2igan data" in res.output


def test_synth_prepare_show(tmp_path):
    r = CliRunner()
    out = tmp_path / "flowers"
    res = r.invoke(data, ["synth", "--out", str(out), "--n", "24", "--size", "32", "--seed", "1"])
    assert res.exit_code == 0, res.output
    assert (out / "preview.png").is_file() and len(list((out / "images").glob("*.png"))) == 24
    res = r.invoke(data, ["prepare", str(out), "--size", "16", "--size", "32"])
    assert res.exit_code == 0, res.output
    assert "24 images" in res.output and "sizes [16, 32]" in res.output
    res = r.invoke(data, ["show", str(out), "--out", str(tmp_path / "g.png"), "--n", "8", "--nrow", "4"])
    assert res.exit_code == 0, res.output
    im = Image.open(tmp_path / "g.png")
    assert im.width >= 4 * 32 and im.height > 2 * 32  # two rows plus caption lines
    res = r.invoke(data, ["show", str(out / ".t2igan_cache"), "--out", str(tmp_path / "h.png"), "--split", "test"])
    assert res.exit_code == 0, res.output


def test_synth_is_byte_identical(tmp_path):
    from t2igan.data.synthetic import write_synthetic_dataset

    a = write_synthetic_dataset(tmp_path / "a", n=4, size=16, seed=7)
    b = write_synthetic_dataset(tmp_path / "b", n=4, size=16, seed=7)
    for p in sorted(a.rglob("*")):
        if p.is_file():
            assert p.read_bytes() == (b / p.relative_to(a)).read_bytes(), p
