"""The demo over a real `T2IPipeline` loaded from a pretrained folder (not the stand-in)."""

from __future__ import annotations

import io
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from t2igan.apps.serve import create_app, load_serve_pipeline, model_info


def test_real_pipeline_generate_interpolate_style(tiny_pretrained: Path) -> None:
    model = load_serve_pipeline(tiny_pretrained.parent)  # a run-like folder holding pretrained/ works too
    info = model_info(model)
    examples = info.pop("examples")
    assert info == {"interpolation": True, "style_transfer": True, "image_size": 32, "model": "ReedGenerator"}
    assert len(examples) == 6 and all(isinstance(e, str) and e for e in examples)
    c = TestClient(create_app(model), base_url="http://127.0.0.1")
    r = c.post("/api/generate", json={"caption": "this flower has pink petals", "n": 3, "seed": 1})
    assert r.status_code == 200, r.text
    imgs = r.json()["images"]
    assert len(imgs) == 3 and len(set(imgs)) == 3  # different seeds, different images
    one = c.post("/api/generate", json={"caption": "this flower has pink petals", "n": 1, "seed": 2}).json()
    assert one["images"][0] == imgs[1]  # caption + seed → same image whatever n
    mid = c.post(
        "/api/generate",
        json={"caption": "this flower has pink petals", "caption2": "a white lily", "mix": 0.5, "n": 1, "seed": 1},
    )
    assert mid.status_code == 200 and len(mid.json()["images"]) == 1  # (an untrained φ barely tells captions apart)
    buf = io.BytesIO()
    Image.new("RGB", (50, 70), (10, 200, 30)).save(buf, format="JPEG")
    st = c.post(
        "/api/style", data={"caption": "a red flower"}, files={"image": ("x.jpg", buf.getvalue(), "image/jpeg")}
    )
    assert st.status_code == 200, st.text
    assert len(st.json()["images"]) == 1
