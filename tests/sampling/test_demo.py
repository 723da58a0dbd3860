"""`t2igan demo --quick`: the whole chain (data → encoder → GAN-INT-CLS → figures → attribute accuracy) in < 60 s."""

import json
import time

import pytest
from PIL import Image

from t2igan.apps.cli import main
from t2igan.apps.demo_report import loss_plot, smooth
from t2igan.sampling import T2IPipeline


@pytest.mark.slow
def test_demo_quick_end_to_end_and_idempotent(tmp_path, capsys):
    out = tmp_path / "demo"
    t = time.perf_counter()
    main(["demo", "--out", str(out), "--quick"])
    first = time.perf_counter() - t
    text = capsys.readouterr().out
    assert "demo finished" in text and "attribute accuracy:" in text
    for name in (
        "index.html",
        "heldout_samples.png",
        "interpolation.png",
        "interpolation_z.png",
        "losses.png",
        "summary.json",
        "pretrained/model_index.json",
    ):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    attr = summary["attribute_accuracy"]
    assert 0.0 <= attr["unseen"]["overall"] <= 1.0 and 0.0 <= attr["seen"]["overall"] <= 1.0
    page = (out / "index.html").read_text()
    assert "heldout_samples.png" in page and "losses.png" in page and "[unseen class]" in page
    assert Image.open(out / "heldout_samples.png").height > 8 * 64
    # the exported folder encodes new text: the encoder travelled with the generator
    pipe = T2IPipeline.from_pretrained(out)
    assert pipe("a flower with twelve thin blue petals", output_type="pt").images.shape == (1, 3, 32, 32)
    assert first < 90  # < 60 s on a quiet machine; headroom for a loaded CI box
    # second run reuses data, cache and encoder
    main(["demo", "--out", str(out), "--quick"])
    notes = json.loads((out / "summary.json").read_text())["notes"]
    assert notes["data"].startswith("reused") and notes["encoder"].startswith("reused")


def test_loss_plot_and_smoothing(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.write_text(
        "".join(json.dumps({"step": i, "loss_d": 1.0 + i % 3, "loss_g": 2.0}) + "\n" for i in range(1, 40))
        + "not json\n"
    )
    fig = loss_plot(log, tmp_path / "losses.png")
    assert fig is not None and Image.open(tmp_path / "losses.png").size == (700, 360)
    assert loss_plot(tmp_path / "missing.jsonl", tmp_path / "x.png") is None
    import numpy as np

    assert np.allclose(smooth(np.full(5, 3.0)), 3.0)
