"""What the demo page shows besides images: the seed of each image, the model's own training captions as examples,
and (for the HTML reports) a layout that fits a phone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from t2igan.apps.serve import create_app
from t2igan.apps.serve_examples import GENERIC, example_captions
from t2igan.data.cache import PreparedCache, prepare_cache
from t2igan.data.synthetic import write_synthetic_dataset

LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/x with config.yaml naming its cache relative to where training ran (`train --data flowers --out runs/x`),
    read from another working directory."""
    base = tmp_path_factory.mktemp("page")
    prepare_cache(write_synthetic_dataset(base / "flowers", n=12, size=16, seed=0), sizes=(16,), progress=False)
    run = base / "runs" / "x"
    (run / "pretrained").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"data": {"cache": "flowers/.t2igan_cache"}}))
    return run


def _training_first_captions(run: Path) -> set[str]:
    cache = PreparedCache.open(run.parent.parent / "flowers")
    return {cache.captions[int(i)][0] for i in cache.train_indices()}


def test_examples_are_the_models_training_captions(run_folder: Path) -> None:
    examples = example_captions(run_folder / "pretrained")
    assert len(examples) == 6 and len(set(examples)) == 6
    assert set(examples) <= _training_first_captions(run_folder)  # training split only, never test captions


def test_examples_file_wins_and_bad_sources_fall_back(run_folder: Path, tmp_path: Path) -> None:
    chosen = tmp_path / "pretrained"
    chosen.mkdir()
    (chosen / "examples.json").write_text(json.dumps(["a red bird", "  a blue   bird ", 3]))
    assert example_captions(chosen) == ["a red bird", "a blue bird"]
    (tmp_path / "config.yaml").write_text("data: [unclosed")  # broken run config → generic, no error
    (chosen / "examples.json").unlink()
    assert example_captions(chosen) == GENERIC
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"data": {"cache": str(tmp_path / "gone")}}))
    assert example_captions(chosen) == GENERIC
    assert example_captions(None, k=2) == GENERIC[:2]


def test_info_and_generate_report_examples_and_seeds(tiny_pipe: Any, run_folder: Path) -> None:
    tiny_pipe.path = run_folder / "pretrained"
    client = TestClient(create_app(tiny_pipe), base_url=LOCAL)
    info = client.get("/api/info").json()
    assert set(info["examples"]) <= _training_first_captions(run_folder) and info["examples"]
    r = client.post("/api/generate", json={"caption": info["examples"][0], "n": 3, "seed": 40}).json()
    assert r["seeds"] == [40, 41, 42] and len(r["images"]) == 3


def test_style_images_have_no_seed(tiny_pipe: Any) -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (20, 20), (10, 200, 10)).save(buf, format="PNG")
    client = TestClient(create_app(tiny_pipe), base_url=LOCAL)
    r = client.post("/api/style", data={"caption": "a"}, files={"image": ("a.png", buf.getvalue(), "image/png")})
    assert r.status_code == 200 and r.json()["seeds"] is None


def test_page_has_download_seed_and_example_hooks(tiny_pipe: Any) -> None:
    client = TestClient(create_app(tiny_pipe), base_url=LOCAL)
    page, script = client.get("/").text, client.get("/static/app.js").text
    assert 'name="viewport"' in page and 'id="examples"' in page
    assert "link.download" in script and "seed ${seed}" in script and "info.examples" in script


def test_html_reports_have_a_viewport(tmp_path: Path) -> None:
    from t2igan.apps.demo_report import write_index
    from t2igan.metrics.report import write_report

    _, page = write_report(tmp_path / "cmp", ["a", "b"], [{}, {}])
    index = write_index(tmp_path / "index.html", [], {"steps": 3}, "intro", "t2igan demo")
    for html in (page.read_text(), index.read_text()):
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html.replace("'", '"')
